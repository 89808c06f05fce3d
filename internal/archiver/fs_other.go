//go:build !linux

package archiver

import (
	"os"
	"path/filepath"

	"github.com/coffer-backup/coffer/internal/format"
)

// pathDir is the portable directory: every call goes through a path.
type pathDir struct{ path string }

func openRoot(path string) (dir, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &os.PathError{Op: "open", Path: path, Err: os.ErrInvalid}
	}
	return &pathDir{path: path}, nil
}

func (d *pathDir) names() ([]string, error) {
	f, err := os.Open(d.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func statFromInfo(fi os.FileInfo) fileStat {
	st := fileStat{
		mode:  fi.Mode().Type(),
		perm:  uint32(fi.Mode().Perm()),
		size:  fi.Size(),
		mtime: fi.ModTime().UnixNano(),
		nlink: 1,
	}
	if fi.Mode()&os.ModeSetuid != 0 {
		st.perm |= 0o4000
	}
	if fi.Mode()&os.ModeSetgid != 0 {
		st.perm |= 0o2000
	}
	if fi.Mode()&os.ModeSticky != 0 {
		st.perm |= 0o1000
	}
	return st
}

func (d *pathDir) lstat(name string) (fileStat, error) {
	fi, err := os.Lstat(filepath.Join(d.path, name))
	if err != nil {
		return fileStat{}, err
	}
	return statFromInfo(fi), nil
}

func (d *pathDir) readlink(name string) ([]byte, error) {
	s, err := os.Readlink(filepath.Join(d.path, name))
	return []byte(s), err
}

func (d *pathDir) openFile(name string) (sourceFile, error) {
	f, err := os.Open(filepath.Join(d.path, name))
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

type osFile struct{ *os.File }

func (d *pathDir) close() error { return nil }

func (d *pathDir) xattrs(name string) ([]format.Xattr, error) { return nil, nil }

func (d *pathDir) ownXattrs() ([]format.Xattr, error) { return nil, nil }

func (f osFile) xattrs() ([]format.Xattr, error) { return nil, nil }

// sparseExtents: on this system files are read whole.
func sparseExtents(f sourceFile, st fileStat) ([]format.Extent, error) { return nil, nil }

func (f osFile) stat() (fileStat, error) {
	fi, err := f.Stat()
	if err != nil {
		return fileStat{}, err
	}
	return statFromInfo(fi), nil
}

func (d *pathDir) openDir(name string) (dir, error) { return openRoot(filepath.Join(d.path, name)) }
