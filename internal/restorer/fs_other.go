//go:build !linux

package restorer

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/coffer-backup/coffer/internal/format"
)

// handle is a directory of the target, by path, on systems without the
// Linux *at calls used elsewhere.
type handle = string

const cacheDirs = false

func openTarget(path string) (handle, error) { return path, nil }

func openDirAt(h handle, name string) (handle, error) { return filepath.Join(h, name), nil }

func closeHandle(h handle) {}

func lstatAt(h handle, name string) (stat, error) {
	fi, err := os.Lstat(filepath.Join(h, name))
	if err != nil {
		return stat{}, err
	}
	s := stat{perm: uint32(fi.Mode().Perm()), size: uint64(fi.Size()), mtime: fi.ModTime().UnixNano(), nlink: 1}
	switch m := fi.Mode(); {
	case m.IsRegular():
		s.typ = format.TypeFile
	case m.IsDir():
		s.typ = format.TypeDir
	case m&os.ModeSymlink != 0:
		s.typ = format.TypeSymlink
	case m&os.ModeNamedPipe != 0:
		s.typ = format.TypeFIFO
	case m&os.ModeSocket != 0:
		s.typ = format.TypeSocket
	case m&os.ModeCharDevice != 0:
		s.typ = format.TypeCharDev
	default:
		s.typ = format.TypeBlockDev
	}
	return s, nil
}

func readlinkAt(h handle, name string) ([]byte, error) {
	s, err := os.Readlink(filepath.Join(h, name))
	return []byte(s), err
}

func mkdirAt(h handle, name string) error { return os.Mkdir(filepath.Join(h, name), 0o700) }

// outFile is a regular file being restored.
type outFile struct {
	*os.File
	h    handle
	name string
	meta metaOpts
}

// creator would decide a new file's final mode and owner at creation;
// here every file gets all its metadata set explicitly.
type creator struct{}

func newCreator() *creator { return &creator{} }

// dirInfo would be what a directory passes on to files created in it.
type dirInfo struct{}

// create opens name in h to write n's content into, truncated if fresh.
func (c *creator) create(h handle, _ *dirInfo, name string, fresh bool, n *format.Node, m metaOpts) (*outFile, error) {
	flags := os.O_WRONLY | os.O_CREATE
	if fresh {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(filepath.Join(h, name), flags, 0o600)
	if err != nil {
		return nil, err
	}
	return &outFile{File: f, h: h, name: name, meta: m}, nil
}

// finish closes the file and sets n's metadata on it.
func (f *outFile) finish(n *format.Node) error {
	if err := f.Close(); err != nil {
		return err
	}
	return setMetaAt(f.h, f.name, n, f.meta)
}

func openReadAt(h handle, name string) (*os.File, error) { return os.Open(filepath.Join(h, name)) }

func symlinkAt(target []byte, h handle, name string) error {
	return os.Symlink(string(target), filepath.Join(h, name))
}

func mknodAt(h handle, name string, n *format.Node) error {
	return errors.New("cannot restore a " + n.Type.String() + " on this system")
}

func linkAt(oh handle, oname string, h handle, name string) error {
	return os.Link(filepath.Join(oh, oname), filepath.Join(h, name))
}

func removeAt(h handle, name string) error { return os.Remove(filepath.Join(h, name)) }

func privileged() bool { return os.Geteuid() == 0 }

func setMetaAt(h handle, name string, n *format.Node, m metaOpts) error {
	p := filepath.Join(h, name)
	if m.owners {
		if err := os.Lchown(p, m.uid, m.gid); err != nil {
			return err
		}
	}
	if n.Type == format.TypeSymlink {
		return nil
	}
	mode := os.FileMode(n.Mode & 0o777)
	if n.Mode&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if n.Mode&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if n.Mode&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	return os.Chtimes(p, time.Unix(0, n.ATime), time.Unix(0, n.MTime))
}

// maxDirHandles is n: handles are paths here, not open files.
func maxDirHandles(n int) int { return n }
