package restorer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"golang.org/x/sys/unix"
)

func setUserXattr(p string) error { return unix.Setxattr(p, "user.test", []byte("v"), 0) }

func hasUserXattr(p string) (bool, error) {
	_, err := unix.Getxattr(p, "user.test", make([]byte, 16))
	if err == unix.ENODATA {
		return false, nil
	}
	return err == nil, err
}

func owner(t *testing.T, p string) (int, int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

func bytesHex(s string) string { return fmt.Sprintf("%x", []byte(s)) }

func sortedJoin(xs []string) string {
	slices.Sort(xs)
	return strings.Join(xs, ";")
}

func TestNoXattrsNoOwner(t *testing.T) {
	src := t.TempDir()
	makeFiles(t, src, map[string]string{"f": "x"})
	if err := setUserXattr(filepath.Join(src, "f")); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Join(src, "f"), 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
	r := newRepo(t)
	root := backup(t, r, src)
	tgt := t.TempDir()
	run(t, r, root, restorer.Options{Target: tgt, NoXattrs: true, Owners: false})
	p := filepath.Join(tgt, src, "f")
	if has, err := hasUserXattr(p); err != nil || has {
		t.Errorf("--no-xattrs: xattr restored (%v, %v)", has, err)
	}
	uid, gid := owner(t, p)
	if uid != os.Geteuid() || gid != os.Getegid() {
		t.Errorf("--no-owner: owner %d:%d, want the restoring user %d:%d", uid, gid, os.Geteuid(), os.Getegid())
	}
	tgt2 := t.TempDir()
	run(t, r, root, restorer.Options{Target: tgt2, Owners: os.Geteuid() == 0, NumericOwner: true})
	p = filepath.Join(tgt2, src, "f")
	if has, err := hasUserXattr(p); err != nil || !has {
		t.Errorf("xattr not restored (%v, %v)", has, err)
	}
	if os.Geteuid() == 0 {
		if uid, gid := owner(t, p); uid != 1234 || gid != 5678 {
			t.Errorf("--numeric-owner: owner %d:%d, want 1234:5678", uid, gid)
		}
	}
}

// TestOwnerByName restores a node whose stored user name exists here with
// another number: by name it gets this system's number, with NumericOwner
// the stored one; an unknown name falls back to the number.
func TestOwnerByName(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setting owners needs root (CI runs as root)")
	}
	r := newRepo(t)
	data := []byte("x")
	chunk := store(t, r, vaultapi.KindData, data)[0]
	file := func(name, user string, uid uint32) format.Node {
		return format.Node{Name: []byte(name), Type: format.TypeFile, Mode: 0o644, Size: 1, UID: uid, GID: uid,
			User: user, Group: user, Chunks: []format.Chunk{{ID: chunk, Size: 1}}}
	}
	root := tree(t, r, file("by-name", "root", 4242), file("unknown", "no-such-user-coffer", 4343))
	tests := []struct {
		numeric bool
		name    string
		uid     int
	}{
		{false, "by-name", 0},
		{false, "unknown", 4343},
		{true, "by-name", 4242},
	}
	for _, tt := range tests {
		tgt := t.TempDir()
		if _, err := restorer.Restore(context.Background(), r, root, restorer.Options{Target: tgt, Owners: true,
			NumericOwner: tt.numeric}); err != nil {
			t.Fatal(err)
		}
		if uid, gid := owner(t, filepath.Join(tgt, tt.name)); uid != tt.uid || gid != tt.uid {
			t.Errorf("%s (numeric %v): owner %d:%d, want %d:%d", tt.name, tt.numeric, uid, gid, tt.uid, tt.uid)
		}
	}
}
