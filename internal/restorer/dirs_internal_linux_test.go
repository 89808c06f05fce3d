package restorer

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The directory cache keeps at most its size of handles open, closes the
// least recently released first, never closes one that is held, and
// hands out the same handle while it stays open.
func TestDirCache(t *testing.T) {
	top := t.TempDir()
	root := &rdir{path: top}
	var dirs []*rdir
	for i := range 5 {
		name := fmt.Sprintf("d%d", i)
		if err := os.Mkdir(filepath.Join(top, name), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(top, name, "f"), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, &rdir{parent: root, name: name, path: filepath.Join(top, name)})
	}
	h, err := openTarget(top)
	if err != nil {
		t.Fatal(err)
	}
	c := newDirCache(root, h)
	c.size = 2
	defer c.close()
	// isDir checks that handle h is still open on directory i.
	isDir := func(h handle, i int) {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Fstatat(h, "f", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Size != int64(len(dirs[i].name)) {
			t.Fatalf("handle of %s: %v", dirs[i].name, err)
		}
	}
	get := func(i int) (handle, dirRef) {
		t.Helper()
		h, ref, err := c.get(dirs[i])
		if err != nil {
			t.Fatal(err)
		}
		isDir(h, i)
		return h, ref
	}

	held, heldRef := get(0) // held throughout
	for i := 1; i < 5; i++ {
		_, ref := get(i)
		ref.release()
		if c.n > c.size {
			t.Fatalf("%d handles open, the most is %d", c.n, c.size)
		}
	}
	isDir(held, 0)
	if dirs[0].open == nil || dirs[4].open == nil || dirs[1].open != nil || dirs[3].open != nil {
		t.Fatalf("open after the loop: want d0 (held) and d4 (last released) only")
	}
	h4 := dirs[4].open.h
	if again, ref := get(4); again != h4 {
		t.Errorf("d4 opened again while its handle was cached")
	} else {
		ref.release()
	}
	// Released last, d0 goes before d4 only once d4 is used after it.
	heldRef.release()
	_, ref := get(4)
	ref.release()
	_, ref2 := get(2)
	ref2.release()
	if dirs[0].open != nil || dirs[4].open == nil || dirs[2].open == nil {
		t.Errorf("the least recently released handle (d0) should have gone")
	}
}
