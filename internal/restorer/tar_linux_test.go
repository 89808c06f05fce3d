package restorer_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/treetest"
	"golang.org/x/sys/unix"
)

// TestWriteTar dumps the fidelity tree (without the 10 GiB file) and reads
// the archive back: every entry, with its type, mode, owner, nanosecond
// mtime, link target, device number, content and extended attributes.
func TestWriteTar(t *testing.T) {
	root := os.Geteuid() == 0
	src := t.TempDir()
	treetest.Build(t, src, treetest.Options{Root: root, Deep: true})
	want := treetest.Scan(t, src)
	r := newRepo(t)
	rootID := backup(t, r, src)
	ctx := context.Background()
	n, err := r.Lookup(ctx, rootID, src)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := restorer.WriteTar(ctx, r, r.NewChunkCache(16<<20, 2), n, src, &buf); err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimPrefix(src, "/") + "/"
	tr := tar.NewReader(&buf)
	seen := map[string]bool{}
	firsts := map[string]string{} // link group (first path in the scan) → first path in the tar
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(h.Name, prefix), "/")
		w, ok := want[rel]
		if !ok {
			if h.Name != prefix {
				t.Errorf("%q: not in the source", h.Name)
			}
			continue
		}
		seen[rel] = true
		if got := uint32(h.Mode); got != w.Mode&0o7777 {
			t.Errorf("%q: mode %o, want %o", rel, got, w.Mode&0o7777)
		}
		if h.Uid != int(w.UID) || h.Gid != int(w.GID) {
			t.Errorf("%q: owner %d:%d, want %d:%d", rel, h.Uid, h.Gid, w.UID, w.GID)
		}
		if h.ModTime.UnixNano() != w.MTime {
			t.Errorf("%q: mtime %d, want %d", rel, h.ModTime.UnixNano(), w.MTime)
		}
		var xs []string
		for k, v := range h.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				xs = append(xs, name+"="+bytesHex(v))
			}
		}
		if got := sortedJoin(xs); got != w.Xattrs {
			t.Errorf("%q: xattrs %q, want %q", rel, got, w.Xattrs)
		}
		switch w.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if first, ok := firsts[w.LinkGroup]; ok {
				if h.Typeflag != tar.TypeLink || h.Linkname != first {
					t.Errorf("%q: type %c -> %q, want a hard link to %q", rel, h.Typeflag, h.Linkname, first)
				}
				continue
			}
			firsts[w.LinkGroup] = h.Name
			b, _ := io.ReadAll(tr)
			if int64(len(b)) != w.Size || !bytes.Equal(b, expected(t, src, rel)) {
				t.Errorf("%q: content differs (%d bytes)", rel, len(b))
			}
		case unix.S_IFLNK:
			if h.Typeflag != tar.TypeSymlink || h.Linkname != w.Target {
				t.Errorf("%q: symlink to %q, want %q", rel, h.Linkname, w.Target)
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			if uint32(h.Devmajor) != unix.Major(w.Rdev) || uint32(h.Devminor) != unix.Minor(w.Rdev) {
				t.Errorf("%q: device %d,%d", rel, h.Devmajor, h.Devminor)
			}
		case unix.S_IFIFO:
			if h.Typeflag != tar.TypeFifo {
				t.Errorf("%q: type %c, want a FIFO", rel, h.Typeflag)
			}
		}
	}
	for p := range want {
		if !seen[p] {
			t.Errorf("%q: missing from the archive", p)
		}
	}
}

// expected reads a source file relative to open directories (the deep one
// is past PATH_MAX).
func expected(t *testing.T, dir, rel string) []byte {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	els := strings.Split(rel, "/")
	for _, el := range els[:len(els)-1] {
		nfd, err := unix.Openat(fd, el, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = nfd
	}
	ffd, err := unix.Openat(fd, els[len(els)-1], unix.O_RDONLY, 0)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(ffd), filepath.Base(rel))
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
