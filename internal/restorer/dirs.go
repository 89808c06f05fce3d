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
	open    *cached // its handle, while open (dirCache.mu)
	// seq, if not 0, is the folder's place in the mkdirer's queue, and
	// mkErr why it could not be made (read only after mkdirer.wait).
	seq   uint64
	mkErr error
}

// dirCache keeps a bounded set of open directory handles, so that writing
// files in pack order does not reopen their directories every time. A
// directory's handle hangs off its rdir; the handles no one holds wait in
// a list, least recently released first, for reuse or closing.
type dirCache struct {
	mk    *mkdirer // if set, makes folders the plan queued; get waits for them
	mu    sync.Mutex
	root  *rdir
	rootH handle
	n     int // handles open
	size  int // the most handles kept open
	// idle is the ring of handles no one holds: idle.next is the least
	// recently released, idle.prev the most.
	idle cached
}

type cached struct {
	d          *rdir
	h          handle
	refs       int
	prev, next *cached // in dirCache.idle while refs is 0
}

// dirCacheSize is the most directory handles a restore keeps open. The
// fetch writes files in pack order, and a pack's small files come from
// many folders (the backup groups them across folders): a cache of 256
// opened 8,320 handles for the 5,096 folders of the linux tree, one of
// 1,024 opened 942 fewer. It is less where the process may open few files
// (see maxDirHandles).
const dirCacheSize = 1024

func newDirCache(root *rdir, h handle) *dirCache {
	c := &dirCache{root: root, rootH: h, size: maxDirHandles(dirCacheSize)}
	c.idle.prev, c.idle.next = &c.idle, &c.idle
	return c
}

// dirRef is a reference to a handle that get returned; release gives it
// back.
type dirRef struct {
	c *dirCache
	e *cached
}

func (r dirRef) release() {
	if r.e == nil {
		return
	}
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.e.refs--; r.e.refs == 0 {
		e, last := r.e, c.idle.prev
		e.prev, e.next = last, &c.idle
		last.next, c.idle.prev = e, e
		c.evict()
	}
}

// take gives the caller a reference to e; c.mu is held.
func (c *dirCache) take(e *cached) dirRef {
	if e.refs == 0 {
		e.prev.next, e.next.prev = e.next, e.prev
		e.prev, e.next = nil, nil
	}
	e.refs++
	return dirRef{c, e}
}

// evict closes the least recently released handles while more than
// c.size are open; c.mu is held.
func (c *dirCache) evict() {
	for c.n > c.size && c.idle.next != &c.idle {
		e := c.idle.next
		e.prev.next, e.next.prev = e.next, e.prev
		closeHandle(e.h)
		e.d.open = nil
		c.n--
	}
}

// get returns an open handle of d; release the reference when done with
// it, once.
func (c *dirCache) get(d *rdir) (handle, dirRef, error) {
	if d == c.root {
		return c.rootH, dirRef{}, nil
	}
	if d.seq != 0 {
		if err := c.mk.wait(d); err != nil {
			return c.rootH, dirRef{}, err
		}
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
	if e := d.open; e != nil {
		ref := c.take(e)
		c.mu.Unlock()
		return e.h, ref, nil
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
	if e := d.open; e != nil { // opened meanwhile by another worker
		closeHandle(h)
		return e.h, c.take(e), nil
	}
	e := &cached{d: d, h: h, refs: 1}
	d.open = e
	c.n++
	c.evict()
	return h, dirRef{c, e}, nil
}

// close closes every handle; none may be held.
func (c *dirCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.size = 0
	c.evict()
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
