//go:build linux

package restorer

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/coffer-backup/coffer/internal/format"
	"golang.org/x/sys/unix"
)

// handle is an open directory of the target. Every operation is relative
// to it and never follows a symlink, so paths of any depth work and
// nothing is written outside the target, whatever the target holds.
type handle = int

const cacheDirs = true

func retry(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

func openTarget(path string) (handle, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

func openDirAt(h handle, name string) (handle, error) {
	var fd int
	err := retry(func() (err error) {
		fd, err = unix.Openat(h, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return fd, nil
}

func closeHandle(h handle) { unix.Close(h) }

func lstatAt(h handle, name string) (stat, error) {
	var st unix.Stat_t
	if err := retry(func() error { return unix.Fstatat(h, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return stat{}, &os.PathError{Op: "lstat", Path: name, Err: err}
	}
	s := stat{perm: st.Mode & 0o7777, size: uint64(st.Size), mtime: st.Mtim.Nano(), dev: st.Dev, ino: st.Ino,
		nlink: uint64(st.Nlink), uid: st.Uid, gid: st.Gid, rdev: st.Rdev}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		s.typ = format.TypeFile
	case unix.S_IFDIR:
		s.typ = format.TypeDir
	case unix.S_IFLNK:
		s.typ = format.TypeSymlink
	case unix.S_IFIFO:
		s.typ = format.TypeFIFO
	case unix.S_IFCHR:
		s.typ = format.TypeCharDev
	case unix.S_IFBLK:
		s.typ = format.TypeBlockDev
	case unix.S_IFSOCK:
		s.typ = format.TypeSocket
	}
	return s, nil
}

func readlinkAt(h handle, name string) ([]byte, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(h, name, buf)
		if err != nil {
			return nil, &os.PathError{Op: "readlink", Path: name, Err: err}
		}
		if n < size {
			return buf[:n], nil
		}
	}
}

func mkdirAt(h handle, name string) error {
	if err := unix.Mkdirat(h, name, 0o700); err != nil {
		return &os.PathError{Op: "mkdir", Path: name, Err: err}
	}
	return nil
}

func openAt(h handle, name string, flags int) (*os.File, error) {
	var fd int
	err := retry(func() (err error) {
		fd, err = unix.Openat(h, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// outFile is a regular file being restored, held as a bare descriptor:
// an *os.File would cost an fcntl and a finalizer per file, and its
// metadata is set through the descriptor, without path lookups.
type outFile struct {
	fd   int
	name string
	meta metaOpts
	// owned and moded say the creation itself gave the file its final
	// owner or mode, so finish need not set it again.
	owned, moded bool
}

// creator is what the kernel gives a file on creation: the process's
// umask, read once per restore, and its effective IDs.
type creator struct {
	umask      uint32
	umaskKnown bool
	uid, gid   uint32
}

// newCreator reads the umask from the Umask line of /proc/self/status
// (Linux 4.7 and later), not with umask(2), which can only read it by
// setting it, racing with anything that creates files meanwhile. Without
// that line the umask is unknown and every mode is set explicitly.
func newCreator() *creator {
	c := &creator{uid: uint32(unix.Geteuid()), gid: uint32(unix.Getegid())}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return c
	}
	for line := range strings.Lines(string(b)) {
		v, ok := strings.CutPrefix(line, "Umask:")
		if !ok {
			continue
		}
		if u, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil && u <= 0o777 {
			c.umask, c.umaskKnown = uint32(u), true
		}
		break
	}
	return c
}

// dirInfo is what a directory of the target passes on to a file created
// in it, read the first time a file is created there. The restore sets a
// directory's own metadata only after all files, so it holds meanwhile.
type dirInfo struct {
	once   sync.Once
	known  bool   // read without error
	uid    uint32 // the directory's owner
	gid    uint32 // the directory's group
	setgid bool   // new files get gid, not the process's group
	defACL bool   // a default ACL, not the umask, masks new files' modes
}

func (di *dirInfo) load(h handle) {
	di.once.Do(func() {
		var st unix.Stat_t
		if err := unix.Fstat(h, &st); err != nil {
			return
		}
		di.uid, di.gid, di.setgid = st.Uid, st.Gid, st.Mode&unix.S_ISGID != 0
		_, err := unix.Fgetxattr(h, "system.posix_acl_default", nil)
		switch err {
		case nil:
			di.defACL = true
		case unix.ENODATA, unix.EOPNOTSUPP:
		default:
			return // unknown: never trust the creation
		}
		di.known = true
	})
}

// plan says how to create a file for n in directory di: with which mode,
// and whether that creation already gives it its final mode and owner.
//
// The mode passed to open is masked by the umask, or, where the directory
// has a default ACL, derived from that ACL; it holds no setuid, setgid or
// sticky bit, which a change of owner would clear and which need the
// explicit chmod after it. So the creation gives the final mode only for a
// stored mode without those bits, with a known umask that removes none of
// its bits, in a directory without a default ACL, and when no access ACL
// is set afterwards (setting one rewrites the group and other bits).
//
// The file's owner is the process's effective user, its group the
// directory's where the directory has the setgid bit, else the process's
// effective group; only when those are the owner to restore is the chown
// left out, and only in a directory that belongs to the effective user.
// A file system that gives new files another owner than asked (NFS with
// root squashing gives root's files to nobody) gives the directories this
// restore made that owner too, so there every file is still chowned, and a
// chown the server refuses is reported as before.
//
// A file created with its final mode is readable as such while its
// content is written. That is what it will be anyway once its owner is
// right; but while another owner's file still belongs to the restoring
// user (or the directory's group), a group or world bit would let others
// open it, keep the descriptor and read what its real owner may not want
// them to. So where the chown is still to come and the mode gives anything
// to group or others, the file is created 0600 as before, then chowned,
// then chmodded.
func (c *creator) plan(di *dirInfo, n *format.Node, m metaOpts) (mode uint32, owned, moded bool) {
	want := n.Mode & 0o7777
	if !c.umaskKnown || !di.known || di.defACL || want&0o7000 != 0 || want&c.umask != 0 ||
		m.xattrs && hasAccessACL(n) {
		return 0o600, false, false
	}
	owned = !m.owners
	if m.owners {
		gid := c.gid
		if di.setgid {
			gid = di.gid
		}
		owned = uint32(m.uid) == c.uid && uint32(m.gid) == gid && di.uid == c.uid
	}
	if !owned && want&0o077 != 0 {
		return 0o600, false, false
	}
	return want, owned, true
}

func hasAccessACL(n *format.Node) bool {
	for _, x := range n.Xattrs {
		if x.Name == "system.posix_acl_access" {
			return true
		}
	}
	return false
}

// create opens name in h (directory di) to write n's content into. A
// fresh file, one the plan found missing, is created exclusively, so that
// the restore knows it made it and may trust its creation mode and owner;
// if something is there after all, or the file is an existing one to
// update, it is opened as before, truncated if fresh, and all its metadata
// is set at the end.
func (c *creator) create(h handle, di *dirInfo, name string, fresh bool, n *format.Node, m metaOpts) (*outFile, error) {
	base := unix.O_WRONLY | unix.O_CREAT | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if fresh {
		di.load(h)
		mode, owned, moded := c.plan(di, n, m)
		fd, err := openFile(h, name, base|unix.O_EXCL, mode)
		if err == nil {
			return &outFile{fd: fd, name: name, meta: m, owned: owned, moded: moded}, nil
		}
		if err != unix.EEXIST {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		base |= unix.O_TRUNC
	}
	fd, err := openFile(h, name, base, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return &outFile{fd: fd, name: name, meta: m}, nil
}

func openFile(h handle, name string, flags int, mode uint32) (int, error) {
	var fd int
	err := retry(func() (err error) {
		fd, err = unix.Openat(h, name, flags, mode)
		return err
	})
	return fd, err
}

// WriteAt writes all of b at off.
func (f *outFile) WriteAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Pwrite(f.fd, b[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, &os.PathError{Op: "write", Path: f.name, Err: err}
		}
		if m == 0 {
			return n, &os.PathError{Op: "write", Path: f.name, Err: io.ErrShortWrite}
		}
		n += m
	}
	return n, nil
}

// Truncate sets the file's size.
func (f *outFile) Truncate(size int64) error {
	if err := retry(func() error { return unix.Ftruncate(f.fd, size) }); err != nil {
		return &os.PathError{Op: "truncate", Path: f.name, Err: err}
	}
	return nil
}

// Close closes the descriptor.
func (f *outFile) Close() error {
	if err := unix.Close(f.fd); err != nil {
		return &os.PathError{Op: "close", Path: f.name, Err: err}
	}
	return nil
}

// finish sets n's metadata through the descriptor, in setMetaAt's order,
// and closes the file. What the creation set already is left out.
func (f *outFile) finish(n *format.Node) error {
	err := f.setMeta(n, f.meta)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (f *outFile) setMeta(n *format.Node, m metaOpts) error {
	if m.owners && !f.owned {
		if err := unix.Fchown(f.fd, m.uid, m.gid); err != nil {
			return &os.PathError{Op: "set owner", Path: f.name, Err: err}
		}
	}
	if m.xattrs && len(n.Xattrs) > 0 {
		err := eachXattr(n, f.name, m.privileged, func(name string, value []byte) error {
			return unix.Fsetxattr(f.fd, name, value, 0)
		})
		if err != nil {
			return err
		}
	}
	if !f.moded {
		if err := unix.Fchmod(f.fd, n.Mode&0o7777); err != nil {
			return &os.PathError{Op: "set mode", Path: f.name, Err: err}
		}
	}
	// futimens: utimensat on the descriptor itself (a NULL path).
	ts := [2]unix.Timespec{unix.NsecToTimespec(n.ATime), unix.NsecToTimespec(n.MTime)}
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(f.fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); e != 0 {
		return &os.PathError{Op: "set times", Path: f.name, Err: e}
	}
	return nil
}

func openReadAt(h handle, name string) (*os.File, error) {
	return openAt(h, name, unix.O_RDONLY|unix.O_NONBLOCK)
}

func symlinkAt(target []byte, h handle, name string) error {
	if err := unix.Symlinkat(string(target), h, name); err != nil {
		return &os.PathError{Op: "symlink", Path: name, Err: err}
	}
	return nil
}

func mknodAt(h handle, name string, n *format.Node) error {
	var mode uint32
	switch n.Type {
	case format.TypeFIFO:
		mode = unix.S_IFIFO
	case format.TypeCharDev:
		mode = unix.S_IFCHR
	case format.TypeBlockDev:
		mode = unix.S_IFBLK
	default:
		return errors.New("cannot restore a " + n.Type.String())
	}
	if err := unix.Mknodat(h, name, mode|0o600, int(n.Rdev)); err != nil {
		return &os.PathError{Op: "mknod", Path: name, Err: err}
	}
	return nil
}

func linkAt(oh handle, oname string, h handle, name string) error {
	if err := unix.Linkat(oh, oname, h, name, 0); err != nil {
		return &os.PathError{Op: "link", Path: name, Err: err}
	}
	return nil
}

func removeAt(h handle, name string) error {
	if err := unix.Unlinkat(h, name, 0); err != nil {
		return &os.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

func privileged() bool { return unix.Geteuid() == 0 }

// setMetaAt sets owner, extended attributes, mode and times, in that
// order: a change of owner clears setuid bits and file capabilities, and
// times come last because the others change them.
func setMetaAt(h handle, name string, n *format.Node, m metaOpts) error {
	if m.owners {
		if err := unix.Fchownat(h, name, m.uid, m.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "set owner", Path: name, Err: err}
		}
	}
	if m.xattrs && len(n.Xattrs) > 0 {
		if err := setXattrs(h, name, n, m.privileged); err != nil {
			return err
		}
	}
	if n.Type != format.TypeSymlink {
		err := unix.Fchmodat(h, name, n.Mode&0o7777, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.EOPNOTSUPP) { // no fchmodat2: the entry was just checked not to be a symlink
			err = unix.Fchmodat(h, name, n.Mode&0o7777, 0)
		}
		if err != nil {
			return &os.PathError{Op: "set mode", Path: name, Err: err}
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(n.ATime), unix.NsecToTimespec(n.MTime)}
	if err := unix.UtimesNanoAt(h, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "set times", Path: name, Err: err}
	}
	return nil
}

func setXattrs(h handle, name string, n *format.Node, priv bool) error {
	p := "/proc/self/fd/" + strconv.Itoa(h) + "/" + name
	return eachXattr(n, name, priv, func(xname string, value []byte) error {
		return unix.Lsetxattr(p, xname, value, 0)
	})
}

// eachXattr sets n's extended attributes with set, leaving out those the
// process may not set (trusted.* and security.* unless privileged) and
// user.* on symlinks, which Linux refuses; it returns every failure.
func eachXattr(n *format.Node, path string, priv bool, set func(name string, value []byte) error) error {
	var errs []error
	for _, x := range n.Xattrs {
		if !priv && (strings.HasPrefix(x.Name, "trusted.") || strings.HasPrefix(x.Name, "security.")) {
			continue
		}
		if n.Type == format.TypeSymlink && strings.HasPrefix(x.Name, "user.") {
			continue // Linux allows no user attributes on symlinks
		}
		if err := set(x.Name, x.Value); err != nil {
			errs = append(errs, &os.PathError{Op: "set xattr " + x.Name, Path: path, Err: err})
		}
	}
	return errors.Join(errs...)
}

// maxDirHandles is n, or less where the process may open few files: a
// quarter of its limit of open files, so that the workers' files and the
// vault's packs always have room.
func maxDirHandles(n int) int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY {
		return n
	}
	return max(16, min(n, int(lim.Cur/4)))
}
