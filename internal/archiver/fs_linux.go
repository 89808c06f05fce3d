//go:build linux

package archiver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// fdDir is an open directory: a bare descriptor, read with getdents
// (no *os.File, whose set-up and finalizer cost a syscall and more per
// directory).
type fdDir struct {
	desc int
	name string // for messages
}

func openRoot(path string) (dir, error) {
	fd, err := openDirAt(unix.AT_FDCWD, path)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &fdDir{desc: fd, name: path}, nil
}

// openDirAt opens a directory for listing. O_NOATIME, where the kernel
// allows it (the owner, or CAP_FOWNER), keeps the listing from moving the
// directory's access time: with relatime a listing moves it at least once
// a day, so every directory's entry in its parent would change from one
// daily backup to the next, and no tree would be kept.
func openDirAt(at int, name string) (int, error) {
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	noatime := unix.O_NOATIME
	for {
		fd, err := unix.Openat(at, name, flags|noatime, 0)
		switch {
		case err == unix.EINTR:
		case err == unix.EPERM && noatime != 0:
			noatime = 0
		default:
			return fd, err
		}
	}
}

func (d *fdDir) fd() int { return d.desc }

// direntBufs are buffers for getdents: 64 KiB read most directories in
// one call.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// names lists the directory's entries but "." and "..". The names share
// one string: a directory costs a few allocations, not one per entry.
func (d *fdDir) names() ([]string, error) {
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	var all []byte // the names back to back
	var ends []int
	for {
		n, err := unix.Getdents(d.desc, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "readdirent", Path: d.name, Err: err}
		}
		if n <= 0 {
			break
		}
		if all == nil { // names take less than half the records
			all, ends = make([]byte, 0, n/2), make([]int, 0, n/24)
		}
		all, ends = appendDirents(all, ends, buf[:n])
	}
	s := string(all)
	names := make([]string, len(ends))
	start := 0
	for i, end := range ends {
		names[i] = s[start:end]
		start = end
	}
	return names, nil
}

// appendDirents appends the names of the linux_dirent64 records in buf
// (ino u64, off i64, reclen u16, type u8, name NUL-terminated) to all,
// and where each ends to ends; it skips ".", ".." and deleted entries.
func appendDirents(all []byte, ends []int, buf []byte) ([]byte, []int) {
	const nameOff = 19
	for len(buf) >= nameOff {
		ino := binary.NativeEndian.Uint64(buf)
		reclen := int(binary.NativeEndian.Uint16(buf[16:]))
		if reclen < nameOff || reclen > len(buf) {
			break // malformed: the kernel never sends it
		}
		name := buf[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		buf = buf[reclen:]
		if ino == 0 || string(name) == "." || string(name) == ".." || len(name) == 0 {
			continue
		}
		all = append(all, name...)
		ends = append(ends, len(all))
	}
	return all, ends
}

func (d *fdDir) lstat(name string) (fileStat, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(d.fd(), name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fileStat{}, &os.PathError{Op: "lstat", Path: name, Err: err}
		}
		break
	}
	return statFromUnix(&st), nil
}

func statFromUnix(st *unix.Stat_t) fileStat {
	fs := fileStat{
		perm:   st.Mode & 0o7777,
		uid:    st.Uid,
		gid:    st.Gid,
		size:   st.Size,
		mtime:  st.Mtim.Nano(),
		atime:  st.Atim.Nano(),
		ctime:  st.Ctim.Nano(),
		ino:    st.Ino,
		dev:    st.Dev,
		nlink:  uint32(st.Nlink),
		rdev:   st.Rdev,
		blocks: st.Blocks,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		fs.mode = os.ModeDir
	case unix.S_IFLNK:
		fs.mode = os.ModeSymlink
	case unix.S_IFIFO:
		fs.mode = os.ModeNamedPipe
	case unix.S_IFCHR:
		fs.mode = os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		fs.mode = os.ModeDevice
	case unix.S_IFSOCK:
		fs.mode = os.ModeSocket
	}
	return fs
}

func (d *fdDir) readlink(name string) ([]byte, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(d.fd(), name, buf)
		if err != nil {
			return nil, &os.PathError{Op: "readlink", Path: name, Err: err}
		}
		if n < size {
			return buf[:n], nil
		}
	}
}

// openFile opens a regular file for reading. O_NONBLOCK keeps a FIFO
// swapped in since the lstat from blocking the open; reads of regular
// files ignore it. The file is read through its descriptor directly, not
// an *os.File, which would register it with the network poller.
func (d *fdDir) openFile(name string) (sourceFile, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	fd, err := unix.Openat(d.fd(), name, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Openat(d.fd(), name, flags, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return rawFile(fd), nil
}

type rawFile int

func (f rawFile) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(f), p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, errors.New("not a regular file (it changed into a pipe or device)")
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f rawFile) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		k, err := unix.Pread(int(f), p[n:], off+int64(n))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return n, err
		case k == 0:
			return n, io.EOF
		}
		n += k
	}
	return n, nil
}

func (f rawFile) Seek(off int64, whence int) (int64, error) { return unix.Seek(int(f), off, whence) }

func (f rawFile) Close() error { return unix.Close(int(f)) }

func (f rawFile) stat() (fileStat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f), &st); err != nil {
		return fileStat{}, err
	}
	return statFromUnix(&st), nil
}

func (d *fdDir) openDir(name string) (dir, error) {
	fd, err := openDirAt(d.desc, name)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return &fdDir{desc: fd, name: name}, nil
}

func (d *fdDir) close() error { return unix.Close(d.desc) }
