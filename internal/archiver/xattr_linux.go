//go:build linux

package archiver

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strconv"

	"github.com/coffer-backup/coffer/internal/format"
	"golang.org/x/sys/unix"
)

// procPath names an entry of an open directory through /proc, so that the
// path-based xattr calls work however deep the directory is.
func (d *fdDir) procPath(name string) string {
	return "/proc/self/fd/" + strconv.Itoa(d.fd()) + "/" + name
}

func (d *fdDir) xattrs(name string) ([]format.Xattr, error) {
	p := d.procPath(name)
	list, err := xattrList(p)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	out := make([]format.Xattr, 0, len(list))
	for _, n := range list {
		v, err := xattrGet(p, n)
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return out, &os.PathError{Op: "getxattr " + n, Path: name, Err: err}
		}
		out = append(out, format.Xattr{Name: n, Value: v})
	}
	slices.SortFunc(out, func(a, b format.Xattr) int { return bytes.Compare([]byte(a.Name), []byte(b.Name)) })
	return out, nil
}

func ignorableXattrErr(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS)
}

func xattrList(p string) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Llistxattr(p, buf)
		if ignorableXattrErr(err) {
			return nil, nil
		}
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Llistxattr(p, nil)
			if err != nil {
				return nil, &os.PathError{Op: "listxattr", Path: p, Err: err}
			}
			buf = make([]byte, sz+256)
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "listxattr", Path: p, Err: err}
		}
		var names []string
		for _, b := range bytes.Split(buf[:n], []byte{0}) {
			if len(b) > 0 {
				names = append(names, string(b))
			}
		}
		return names, nil
	}
}

func xattrGet(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Lgetxattr(p, name, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+256)
			continue
		}
		if err != nil {
			return nil, err
		}
		return bytes.Clone(buf[:n]), nil
	}
}
