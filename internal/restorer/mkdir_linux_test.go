package restorer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// TestFolderNotMade restores a point with a folder the file system cannot
// make (its name is longer than Linux allows), holding a file, a symlink
// and a folder with a file. The restore neither hangs nor stops: every
// entry in that folder is reported, with the folder named, and the rest
// of the point restores exactly.
func TestFolderNotMade(t *testing.T) {
	r := newRepo(t)
	data := []byte("kept")
	chunk := store(t, r, vaultapi.KindData, data)[0]
	file := func(name string) format.Node { return fileNode(name, chunk, data) }
	dir := func(name string, sub vaultapi.ID) format.Node {
		return format.Node{Name: []byte(name), Type: format.TypeDir, Mode: 0o755, Subtree: sub}
	}
	long := strings.Repeat("x", 300) // NAME_MAX is 255
	inner := tree(t, r, file("deep"))
	bad := tree(t, r, file("f"), dir("sub", inner),
		format.Node{Name: []byte("link"), Type: format.TypeSymlink, Mode: 0o777, Target: []byte("f")})
	good := tree(t, r, file("g"), dir("sub", inner))
	root := tree(t, r, dir("a-good", good), dir(long, bad), file("top"))

	tgt := t.TempDir()
	var mu sync.Mutex
	probs := map[string]error{}
	res, err := restorer.Restore(context.Background(), r, root, restorer.Options{Target: tgt,
		Report: func(p restorer.Problem) { mu.Lock(); probs[p.Path] = p.Err; mu.Unlock() }})
	if err != nil {
		t.Fatalf("a folder that cannot be made ended the restore: %v", err)
	}
	badDir := filepath.Join(tgt, long)
	for _, p := range []string{badDir, filepath.Join(badDir, "f"), filepath.Join(badDir, "link"),
		filepath.Join(badDir, "sub"), filepath.Join(badDir, "sub", "deep")} {
		err, ok := probs[p]
		if !ok {
			t.Errorf("%s not reported (problems: %v)", p, probs)
			continue
		}
		if !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Errorf("%s: %v, want the folder's ENAMETOOLONG", p, err)
		}
	}
	if res.Problems != uint64(len(probs)) || len(probs) != 5 {
		t.Errorf("%d problems counted, %d reported: %v", res.Problems, len(probs), probs)
	}
	for _, p := range []string{"top", "a-good/g", "a-good/sub/deep"} {
		if got, err := os.ReadFile(filepath.Join(tgt, p)); err != nil || string(got) != string(data) {
			t.Errorf("%s: %q, %v", p, got, err)
		}
	}
}
