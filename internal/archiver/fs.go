package archiver

import (
	"io"
	"os"
	"os/user"
	"strconv"
	"sync"

	"github.com/coffer-backup/coffer/internal/format"
)

// fileStat is what the archiver needs of an lstat, on every platform.
type fileStat struct {
	mode   os.FileMode // type bits as os.FileMode
	perm   uint32      // permission bits with setuid, setgid, sticky (07777)
	uid    uint32
	gid    uint32
	size   int64
	mtime  int64 // ns
	atime  int64
	ctime  int64
	ino    uint64
	dev    uint64
	nlink  uint32
	rdev   uint64
	blocks int64 // 512-byte blocks allocated; 0 if unknown
}

// dir is an open directory of the source tree. On Linux it holds a file
// descriptor and every call is relative to it, so paths of any length work.
type dir interface {
	names() ([]string, error)
	lstat(name string) (fileStat, error)
	readlink(name string) ([]byte, error)
	openFile(name string) (sourceFile, error)
	openDir(name string) (dir, error)
	// xattrs lists an entry's extended attributes (POSIX ACLs included),
	// sorted by name; nil where the system has none.
	xattrs(name string) ([]format.Xattr, error)
	ownXattrs() ([]format.Xattr, error) // of the open directory itself
	close() error
}

// sourceFile is an open regular file being backed up.
type sourceFile interface {
	io.ReadSeekCloser
	io.ReaderAt
	stat() (fileStat, error)
	xattrs() ([]format.Xattr, error)
}

// idNames caches user and group names by ID.
type idNames struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
}

func newIDNames() *idNames {
	return &idNames{users: map[uint32]string{}, groups: map[uint32]string{}}
}

func (c *idNames) user(uid uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.users[uid]; ok {
		return n
	}
	n := ""
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		n = u.Username
	}
	c.users[uid] = n
	return n
}

func (c *idNames) group(gid uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.groups[gid]; ok {
		return n
	}
	n := ""
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
		n = g.Name
	}
	c.groups[gid] = n
	return n
}
