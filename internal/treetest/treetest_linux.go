//go:build linux

package treetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// SparseSize is the size of the sparse file Build makes.
const SparseSize = 10 << 30

// Options of Build.
type Options struct {
	Root    bool // make what needs root: device nodes, other owners, trusted.* xattrs
	Sparse  bool // make the 10 GiB sparse file
	Deep    bool // make a path deeper than 4096 bytes
	BigFile int  // size of a random multi-chunk file; 0 for 3 MiB
}

// Build makes the tree in dir (which must exist) and returns the number of
// entries it made.
func Build(t testing.TB, dir string, o Options) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := func(rel string) string { return dir + "/" + rel }
	write := func(rel string, n int, mode os.FileMode) {
		t.Helper()
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		must(os.WriteFile(p(rel), b, mode))
		must(os.Chmod(p(rel), mode))
	}
	must(os.MkdirAll(p("a/b"), 0o755))
	size := o.BigFile
	if size == 0 {
		size = 3 << 20
	}
	write("a/big", size, 0o644)
	write("a/small", 100, 0o600)
	write("a/empty", 0, 0o644)
	// Hard links: three names of one file across directories, and a pair.
	write("a/linked", 5000, 0o640)
	must(os.Link(p("a/linked"), p("a/b/linked-2")))
	must(os.Link(p("a/linked"), p("linked-3")))
	write("pair-1", 10, 0o644)
	must(os.Link(p("pair-1"), p("a/b/pair-2")))
	// Extended attributes and ACLs.
	must(unix.Setxattr(p("a/small"), "user.comment", []byte("kept"), 0))
	must(unix.Setxattr(p("a/b"), "user.binary", []byte{0, 1, 2, 255}, 0))
	write("acl.txt", 20, 0o640)
	run(t, "setfacl", "-m", "u:1234:rw,g:5678:r", p("acl.txt"))
	run(t, "setfacl", "-d", "-m", "u:1234:rwx", p("a/b"))
	run(t, "setfacl", "-m", "g:5678:rx", p("a/b"))
	// Special files and mode bits.
	must(unix.Mkfifo(p("fifo"), 0o640))
	must(os.Chmod(p("fifo"), 0o640))
	write("suid", 50, 0o755)
	must(os.Chmod(p("suid"), 0o755|os.ModeSetuid))
	must(os.Mkdir(p("sgid"), 0o775))
	must(os.Chmod(p("sgid"), 0o775|os.ModeSetgid))
	must(os.Mkdir(p("sticky"), 0o777))
	must(os.Chmod(p("sticky"), 0o777|os.ModeSticky))
	must(os.Symlink("a/small", p("sym")))
	must(os.Symlink("/nowhere/at/all", p("a/dangling")))
	// Odd names.
	write("new\nline", 7, 0o644)
	write("bad-\xff\xfe-utf8", 8, 0o644)
	write(strings.Repeat("n", 255), 9, 0o644)
	must(os.Mkdir(p(strings.Repeat("d", 255)), 0o755))
	write(strings.Repeat("d", 255)+"/"+strings.Repeat("f", 255), 10, 0o644)
	if o.Root {
		must(unix.Mknod(p("null-dev"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(os.Chmod(p("null-dev"), 0o666))
		must(unix.Mknod(p("blk-dev"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 200))))
		write("owned", 10, 0o644)
		must(os.Lchown(p("owned"), 1234, 5678))
		must(os.Lchown(p("sym"), 4321, 8765))
		must(os.Lchown(p("a/b"), 1, 1))
		write("suid-owned", 10, 0o755)
		must(os.Lchown(p("suid-owned"), 1234, 0))
		must(os.Chmod(p("suid-owned"), 0o755|os.ModeSetuid|os.ModeSetgid))
		must(unix.Setxattr(p("owned"), "trusted.note", []byte("root only"), 0))
	}
	if o.Sparse {
		f, err := os.Create(p("sparse.img"))
		must(err)
		data := make([]byte, 512<<10)
		for i := range data {
			data[i] = byte(rng.Uint32() | 1)
		}
		_, err = f.WriteAt(data, 0)
		must(err)
		_, err = f.WriteAt(data, 5<<30)
		must(err)
		must(f.Truncate(SparseSize))
		must(f.Close())
		f, err = os.Create(p("all-hole.img"))
		must(err)
		must(f.Truncate(1 << 30))
		must(f.Close())
	}
	if o.Deep {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		must(err)
		for i := 0; i < 22; i++ { // 22 × 201 bytes: deeper than PATH_MAX
			name := fmt.Sprintf("%03d", i) + strings.Repeat("x", 197)
			must(unix.Mkdirat(fd, name, 0o750))
			nfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			must(err)
			unix.Close(fd)
			fd = nfd
		}
		ffd, err := unix.Openat(fd, "deep-file", unix.O_WRONLY|unix.O_CREAT, 0o604)
		must(err)
		_, err = unix.Write(ffd, []byte("at the bottom"))
		must(err)
		unix.Close(ffd)
		must(unix.Fchmodat(fd, "deep-file", 0o604, 0))
		unix.Close(fd)
	}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s (scripts/install-test-deps.sh installs it)", name, args, err, out)
	}
}

// Entry is what Scan records of one entry.
type Entry struct {
	Mode      uint32
	UID, GID  uint32
	Size      int64
	MTime     int64
	Nlink     uint64
	Rdev      uint64
	Blocks    int64
	Ino       uint64
	Target    string
	Xattrs    string // name=value;… sorted
	Content   [32]byte
	LinkGroup string // the first path (in scan order) of the entry's inode
}

// Scan reads a tree entry by entry, relative to open directories so that
// any depth works. Keys are paths relative to dir.
func Scan(t testing.TB, dir string) map[string]Entry {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Entry{}
	inodes := map[uint64]string{}
	if err := scanDir(fd, "", out, inodes); err != nil {
		t.Fatal(err)
	}
	return out
}

func scanDir(fd int, rel string, out map[string]Entry, inodes map[uint64]string) error {
	defer unix.Close(fd)
	names, err := readNames(fd)
	if err != nil {
		return fmt.Errorf("list %q: %w", rel, err)
	}
	slices.Sort(names)
	for _, name := range names {
		path := name
		if rel != "" {
			path = rel + "/" + name
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		e := Entry{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size, MTime: st.Mtim.Nano(), Nlink: uint64(st.Nlink),
			Rdev: st.Rdev, Blocks: st.Blocks, Ino: st.Ino}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if first, ok := inodes[st.Ino]; ok {
				e.LinkGroup = first
			} else {
				inodes[st.Ino] = path
				e.LinkGroup = path
			}
		}
		e.Xattrs = xattrs("/proc/self/fd/" + strconv.Itoa(fd) + "/" + name)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			buf := make([]byte, 4096)
			n, err := unix.Readlinkat(fd, name, buf)
			if err != nil {
				return err
			}
			e.Target = string(buf[:n])
		case unix.S_IFREG:
			sum, err := contentSum(fd, name)
			if err != nil {
				return fmt.Errorf("read %q: %w", path, err)
			}
			e.Content = sum
		case unix.S_IFDIR:
			nfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
			if err != nil {
				return err
			}
			if err := scanDir(nfd, path, out, inodes); err != nil {
				return err
			}
		}
		out[path] = e
	}
	return nil
}

func readNames(fd int) ([]string, error) {
	dfd, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dfd), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

func xattrs(p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	var parts []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%x", name, v[:m]))
	}
	slices.Sort(parts)
	return strings.Join(parts, ";")
}

// contentSum hashes a file's non-zero 4 KiB blocks with their offsets,
// reading only its data regions, so that holes and written zeros hash
// alike and a 10 GiB sparse file is quick.
func contentSum(dirfd int, name string) ([32]byte, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return [32]byte{}, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return [32]byte{}, err
	}
	size := fi.Size()
	h := sha256.New()
	zero := make([]byte, 4096)
	buf := make([]byte, 4096)
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			return [32]byte{}, err
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return [32]byte{}, err
		}
		for b := data &^ 4095; b < hole; b += 4096 {
			n, err := f.ReadAt(buf, b)
			if err != nil && err != io.EOF {
				return [32]byte{}, err
			}
			if !bytes.Equal(buf[:n], zero[:n]) {
				fmt.Fprintf(h, "%d:", b)
				h.Write(buf[:n])
			}
		}
		off = hole
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s, nil
}

// Compare fails t for every difference between two scans, in content,
// type, mode, owner, size, nanosecond mtime, link count and grouping,
// device numbers, symlink targets, xattrs and ACLs. A sparse file must stay
// sparse: the copy may not use more than 1 MiB more space than the source.
// skip lists path prefixes left out of the comparison.
func Compare(t testing.TB, want, got map[string]Entry, skip ...string) {
	t.Helper()
	ignored := func(p string) bool {
		for _, s := range skip {
			if p == s || strings.HasPrefix(p, s+"/") {
				return true
			}
		}
		return false
	}
	for p, w := range want {
		if ignored(p) {
			continue
		}
		g, ok := got[p]
		if !ok {
			t.Errorf("%q: missing", p)
			continue
		}
		isDir := w.Mode&unix.S_IFMT == unix.S_IFDIR
		check := func(what string, gv, wv any) {
			t.Helper()
			if gv != wv {
				t.Errorf("%q: %s: got %v, want %v", p, what, gv, wv)
			}
		}
		check("mode", fmt.Sprintf("%o", g.Mode), fmt.Sprintf("%o", w.Mode))
		check("uid", g.UID, w.UID)
		check("gid", g.GID, w.GID)
		check("mtime", g.MTime, w.MTime)
		check("xattrs", g.Xattrs, w.Xattrs)
		if !isDir {
			check("size", g.Size, w.Size)
			check("nlink", g.Nlink, w.Nlink)
			check("link group", g.LinkGroup, w.LinkGroup)
			check("rdev", g.Rdev, w.Rdev)
			check("target", g.Target, w.Target)
			check("content", g.Content, w.Content)
			if g.Blocks > w.Blocks+2048 {
				t.Errorf("%q: uses %d blocks, the source %d: not sparse", p, g.Blocks, w.Blocks)
			}
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok && !ignored(p) {
			t.Errorf("%q: not in the source", p)
		}
	}
}
