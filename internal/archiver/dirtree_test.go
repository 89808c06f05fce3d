package archiver_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/archiver"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/verify"
)

// reuseSource makes a tree of nested directories with files, an empty
// file, an empty directory, a symlink and two hard links; it returns the
// number of directories, the root included.
func reuseSource(t *testing.T, dir string) int {
	t.Helper()
	dirs := 1
	for i := range 4 {
		for j := range 3 {
			sub := filepath.Join(dir, fmt.Sprintf("d%d", i), fmt.Sprintf("e%d", j))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			for k := range 5 {
				name := filepath.Join(sub, fmt.Sprintf("f%d", k))
				if err := os.WriteFile(name, fmt.Appendf(nil, "file %d %d %d\n", i, j, k), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		dirs += 4
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600))
	must(os.Mkdir(filepath.Join(dir, "emptydir"), 0o700))
	must(os.Symlink("d0/e0/f0", filepath.Join(dir, "link")))
	must(os.Link(filepath.Join(dir, "d1", "e1", "f1"), filepath.Join(dir, "d1", "e1", "hard")))
	return dirs + 1
}

// freezeATimes sets the access time of every directory under dir an hour
// ahead, keeping its mtime. With relatime, listing a directory moves its
// access time only while that is not after its mtime and ctime, which a
// coarse clock tick can leave true for a while; an access time in the
// future keeps every listing of the test from changing what it backs up.
func freezeATimes(t *testing.T, dir string) {
	t.Helper()
	ahead := time.Now().Add(time.Hour)
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chtimes(p, ahead, fi.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
}

type reuseRun struct {
	t   *testing.T
	r   *repo.Repo
	src string
}

// backup backs src up on parent with tree reuse on or off and returns the
// result, its root tree and the number of trees reused.
func (rr reuseRun) backup(parent *vaultapi.Point, reuse bool) (archiver.Result, [32]byte, uint64) {
	rr.t.Helper()
	count, undo := archiver.CountReusedTrees(reuse)
	defer undo()
	res, err := archiver.Backup(context.Background(), rr.r, archiver.Options{Paths: []string{rr.src}, Rand: rand.Reader, Parent: parent})
	if err != nil {
		rr.t.Fatal(err)
	}
	return res, rr.srcTree(res), count()
}

// srcTree returns the tree ID of the source folder in the point. Not the
// root's: the root holds the folders above the source too, /tmp among
// them, whose times change whenever another test (of another package,
// run at the same time) makes or removes a folder there.
func (rr reuseRun) srcTree(res archiver.Result) [32]byte {
	rr.t.Helper()
	id := vaultapi.ID(mustRoot(rr.t, rr.r, res))
	for _, el := range strings.Split(strings.TrimPrefix(filepath.ToSlash(rr.src), "/"), "/") {
		tr, err := rr.r.Tree(context.Background(), id)
		if err != nil {
			rr.t.Fatal(err)
		}
		i := slices.IndexFunc(tr.Nodes, func(n format.Node) bool { return string(n.Name) == el })
		if i < 0 {
			rr.t.Fatalf("%s: %s is not in the point", rr.src, el)
		}
		id = tr.Nodes[i].Subtree
	}
	return id
}

// TestTreeReuse checks that a directory whose entries are unchanged keeps
// its tree ID unencoded, and that this ID is the one encoding would give:
// the same backup with reuse off has the same root tree.
func TestTreeReuse(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	dirs := reuseSource(t, src)
	_, r := open(t, t.TempDir(), nil)
	rr := reuseRun{t: t, r: r, src: src}

	freezeATimes(t, src)
	first, _, _ := rr.backup(nil, true)
	second, root2, reused2 := rr.backup(&first.Point, true)
	_, root2b, reused2b := rr.backup(&first.Point, false)
	if root2b != root2 {
		treeDiff(t, r, root2, root2b, src+"/")
	}
	if root2b != root2 || reused2b != 0 {
		t.Fatalf("with reuse off: source tree %x, %d reused; want source tree %x (as with reuse), 0 reused", root2b[:4], reused2b, root2[:4])
	}
	if reused2 == 0 {
		t.Errorf("no tree reused on an unchanged source")
	}
	third, root3, reused3 := rr.backup(&second.Point, true)
	if root3 != root2 || reused3 != uint64(dirs) {
		t.Fatalf("unchanged again: source tree %x, %d trees reused; want source tree %x, all %d", root3[:4], reused3, root2[:4], dirs)
	}
	if third.Stats.BytesAdded > 1024 || third.Stats.Files != second.Stats.Files {
		t.Errorf("unchanged again: %d bytes added, %d files; want only the manifest, %d", third.Stats.BytesAdded, third.Stats.Files, second.Stats.Files)
	}

	// A changed file: its directory and those above it are encoded anew.
	changed := filepath.Join(src, "d2", "e1", "f3")
	if err := os.WriteFile(changed, []byte("changed, and longer than before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fourth, root4, reused4 := rr.backup(&third.Point, true)
	if root4 == root3 || reused4 != uint64(dirs-3) {
		t.Fatalf("one file changed: source tree %x, %d trees reused; want a new one, %d reused", root4[:4], reused4, dirs-3)
	}

	// Entries removed and added: reuse on and off agree again.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(src, "d0", "e2", "f0")))
	must(os.Remove(filepath.Join(src, "d3", "e0", "f4")))
	must(os.WriteFile(filepath.Join(src, "d1", "e0", "new"), []byte("new\n"), 0o644))
	must(os.WriteFile(filepath.Join(src, "d3", "e0", "f9"), []byte("new too\n"), 0o644))
	must(os.Mkdir(filepath.Join(src, "d2", "e9"), 0o755))
	freezeATimes(t, src)
	fifth, root5, reused5 := rr.backup(&fourth.Point, true)
	_, root5b, _ := rr.backup(&fourth.Point, false)
	if root5 != root5b {
		treeDiff(t, r, root5, root5b, src+"/")
	}
	if root5 != root5b || reused5 == 0 || reused5 >= uint64(dirs) {
		t.Fatalf("entries removed and added: source trees %x (reuse) and %x (none), %d reused; want them equal, some reused", root5[:4], root5b[:4], reused5)
	}
	if want := fourth.Stats.Files; fifth.Stats.Files != want {
		t.Errorf("files: %d, want %d", fifth.Stats.Files, want)
	}

	target := t.TempDir()
	if _, err := restorer.Restore(ctx, r, mustRoot(t, r, fifth), restorer.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	sameContent(t, src, filepath.Join(target, src))
	points, err := r.Vault.Points(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := verify.Verify(ctx, r, points, verify.Options{}); err != nil || res.Damaged != 0 {
		t.Fatalf("verify: %+v, %v", res, err)
	}
}

// treeDiff logs where two trees that should be equal differ: the entries
// present in one only, and the fields of entries that differ, folder by
// folder, so that a failure names the entry that changed.
func treeDiff(t *testing.T, r *repo.Repo, a, b vaultapi.ID, at string) {
	t.Helper()
	ta, err := r.Tree(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := r.Tree(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*format.Node{}
	for i := range tb.Nodes {
		byName[string(tb.Nodes[i].Name)] = &tb.Nodes[i]
	}
	for i := range ta.Nodes {
		na := &ta.Nodes[i]
		nb := byName[string(na.Name)]
		delete(byName, string(na.Name))
		switch {
		case nb == nil:
			t.Logf("%s%s: only in the first tree", at, na.Name)
		case na.Type == format.TypeDir && nb.Type == format.TypeDir && na.Subtree != nb.Subtree:
			sa, sb := *na, *nb
			sa.Subtree, sb.Subtree = vaultapi.ID{}, vaultapi.ID{}
			if !sa.Equal(&sb) {
				t.Logf("%s%s: %+v\n  against %+v", at, na.Name, sa, sb)
			}
			treeDiff(t, r, na.Subtree, nb.Subtree, at+string(na.Name)+"/")
		case !na.Equal(nb):
			t.Logf("%s%s: %+v\n  against %+v", at, na.Name, *na, *nb)
		}
	}
	for name := range byName {
		t.Logf("%s%s: only in the second tree", at, name)
	}
}
