package restorer

import (
	"os/user"
	"strconv"
	"sync"

	"github.com/coffer-backup/coffer/internal/format"
)

// stat is what the restorer needs to know of an entry already in the
// target.
type stat struct {
	typ      format.NodeType
	perm     uint32
	size     uint64
	mtime    int64
	dev, ino uint64
	nlink    uint64
	uid, gid uint32
	rdev     uint64
}

// metaOpts says which metadata setMetaAt sets.
type metaOpts struct {
	owners     bool
	uid, gid   int
	xattrs     bool
	privileged bool
}

// rdir is a directory of the target: where it is, and the node whose
// metadata it gets once its contents are written.
type rdir struct {
	parent  *rdir
	name    string // "" for the target itself
	path    string // for messages
	node    *format.Node
	depth   int
	ready   bool    // exists in the target (found or created)
	fresh   bool    // created empty by this restore: nothing in it can be in the way
	planned bool    // a dry run would create it
	meta    bool    // set its metadata at the end
	info    dirInfo // what it passes on to files created in it
}

// dirCache keeps a bounded set of open directory handles, so that writing
// files in pack order does not reopen their directories every time.
type dirCache struct {
	mu    sync.Mutex
	root  *rdir
	rootH handle
	open  map[*rdir]*cached
	tick  uint64
}

type cached struct {
	h    handle
	refs int
	used uint64
}

const dirCacheSize = 256

func newDirCache(root *rdir, h handle) *dirCache {
	return &dirCache{root: root, rootH: h, open: make(map[*rdir]*cached)}
}

// dirRef is a reference to a handle that get returned; release gives it
// back.
type dirRef struct {
	c *dirCache
	e *cached
}

func (r dirRef) release() {
	if r.e != nil {
		r.c.mu.Lock()
		r.e.refs--
		r.c.mu.Unlock()
	}
}

// get returns an open handle of d; release the reference when done with
// it, once.
func (c *dirCache) get(d *rdir) (handle, dirRef, error) {
	if d == c.root {
		return c.rootH, dirRef{}, nil
	}
	if !cacheDirs {
		ph, rel, err := c.get(d.parent)
		if err != nil {
			return ph, dirRef{}, err
		}
		defer rel.release()
		h, err := openDirAt(ph, d.name)
		return h, dirRef{}, err
	}
	c.mu.Lock()
	if e, ok := c.open[d]; ok {
		e.refs++
		c.tick++
		e.used = c.tick
		c.mu.Unlock()
		return e.h, dirRef{c, e}, nil
	}
	c.mu.Unlock()
	ph, rel, err := c.get(d.parent)
	if err != nil {
		return ph, dirRef{}, err
	}
	h, err := openDirAt(ph, d.name)
	rel.release()
	if err != nil {
		return h, dirRef{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.open[d]; ok { // opened meanwhile by another worker
		closeHandle(h)
		e.refs++
		return e.h, dirRef{c, e}, nil
	}
	c.tick++
	e := &cached{h: h, refs: 1, used: c.tick}
	c.open[d] = e
	if len(c.open) > dirCacheSize {
		var old *rdir
		for k, e := range c.open {
			if e.refs == 0 && (old == nil || e.used < c.open[old].used) {
				old = k
			}
		}
		if old != nil {
			closeHandle(c.open[old].h)
			delete(c.open, old)
		}
	}
	return h, dirRef{c, e}, nil
}

func (c *dirCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.open {
		closeHandle(e.h)
		delete(c.open, k)
	}
	closeHandle(c.rootH)
}

// owners maps stored user and group names to this system's IDs.
type owners struct {
	numeric bool
	mu      sync.Mutex
	users   map[string]int
	groups  map[string]int
}

func newOwners(numeric bool) *owners {
	return &owners{numeric: numeric, users: map[string]int{}, groups: map[string]int{}}
}

// ids returns the owner to set: by name where the name exists here
// (unless numeric), else the stored number.
func (o *owners) ids(n *format.Node) (int, int) {
	uid, gid := int(n.UID), int(n.GID)
	if o.numeric {
		return uid, gid
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if n.User != "" {
		id, ok := o.users[n.User]
		if !ok {
			id = -1
			if u, err := user.Lookup(n.User); err == nil {
				if v, err := strconv.Atoi(u.Uid); err == nil {
					id = v
				}
			}
			o.users[n.User] = id
		}
		if id >= 0 {
			uid = id
		}
	}
	if n.Group != "" {
		id, ok := o.groups[n.Group]
		if !ok {
			id = -1
			if g, err := user.LookupGroup(n.Group); err == nil {
				if v, err := strconv.Atoi(g.Gid); err == nil {
					id = v
				}
			}
			o.groups[n.Group] = id
		}
		if id >= 0 {
			gid = id
		}
	}
	return uid, gid
}
