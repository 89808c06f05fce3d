package archiver

import (
	"io"
	"maps"
	"os"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"

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

// idNames caches user and group names by ID. Lookups, one per entry
// walked, read an immutable map without locking; a new ID copies it.
type idNames struct {
	mu     sync.Mutex // held to add a name
	users  atomic.Pointer[map[uint32]string]
	groups atomic.Pointer[map[uint32]string]
}

func newIDNames() *idNames {
	c := &idNames{}
	c.users.Store(&map[uint32]string{})
	c.groups.Store(&map[uint32]string{})
	return c
}

func (c *idNames) user(uid uint32) string {
	return c.name(&c.users, uid, func(id string) (string, error) {
		u, err := user.LookupId(id)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	})
}

func (c *idNames) group(gid uint32) string {
	return c.name(&c.groups, gid, func(id string) (string, error) {
		g, err := user.LookupGroupId(id)
		if err != nil {
			return "", err
		}
		return g.Name, nil
	})
}

// name returns the name of id from the map m points to, looking it up
// (empty if unknown) and adding it on a miss.
func (c *idNames) name(m *atomic.Pointer[map[uint32]string], id uint32, lookup func(string) (string, error)) string {
	if n, ok := (*m.Load())[id]; ok {
		return n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *m.Load()
	if n, ok := old[id]; ok {
		return n
	}
	n, err := lookup(strconv.FormatUint(uint64(id), 10))
	if err != nil {
		n = ""
	}
	next := maps.Clone(old)
	next[id] = n
	m.Store(&next)
	return n
}
