//go:build linux

package archiver

import (
	"bytes"
	"errors"
	"fmt"
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
	return readXattrs(name,
		func(buf []byte) (int, error) { return unix.Llistxattr(p, buf) },
		func(attr string, buf []byte) (int, error) { return unix.Lgetxattr(p, attr, buf) })
}

// ownXattrs reads the attributes of the open directory itself.
func (d *fdDir) ownXattrs() ([]format.Xattr, error) { return fdXattrs(d.fd(), d.name) }

// xattrs reads the attributes of an open file through its descriptor,
// which spares the path lookup of the other calls.
func (f rawFile) xattrs() ([]format.Xattr, error) { return fdXattrs(int(f), "") }

func fdXattrs(fd int, name string) ([]format.Xattr, error) {
	// Most files have no attributes: a list into a buffer on the stack
	// answers that without the allocation of the general path (whose
	// buffer escapes through its function values), once per file.
	var small [256]byte
	n, err := unix.Flistxattr(fd, small[:])
	if err == nil && n == 0 || ignorableXattrErr(err) {
		return nil, nil
	}
	return readXattrs(name,
		func(buf []byte) (int, error) { return unix.Flistxattr(fd, buf) },
		func(attr string, buf []byte) (int, error) { return unix.Fgetxattr(fd, attr, buf) })
}

// readXattrs lists and reads all attributes with the given calls.
func readXattrs(name string, list func([]byte) (int, error), get func(string, []byte) (int, error)) ([]format.Xattr, error) {
	names, err := xattrList(list)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	out := make([]format.Xattr, 0, len(names))
	for _, n := range names {
		v, err := xattrGet(get, n)
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

func xattrList(list func([]byte) (int, error)) ([]string, error) {
	var small [256]byte
	buf := small[:]
	for {
		n, err := list(buf)
		if ignorableXattrErr(err) {
			return nil, nil
		}
		if errors.Is(err, unix.ERANGE) {
			sz, err := list(nil)
			if err != nil {
				return nil, fmt.Errorf("listxattr: %w", err)
			}
			buf = make([]byte, sz+256)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listxattr: %w", err)
		}
		if n == 0 {
			return nil, nil
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

func xattrGet(get func(string, []byte) (int, error), name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := get(name, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := get(name, nil)
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
