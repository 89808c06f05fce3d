package archiver

import (
	"errors"
	"sync"

	"github.com/coffer-backup/coffer/internal/format"
)

// linkTable groups entries that are hard links of one another: files seen
// with a link count above one, by device and inode. The first entry of a
// group (the leader) is read; the others take its content, so it is
// stored once, and the restorer links them to the leader.
type linkTable struct {
	mu     sync.Mutex
	groups map[[2]uint64]*linkLeader
	next   uint64
}

type linkLeader struct {
	group uint64
	fut   *future
}

// join returns the group of (dev, ino) and its leader's future, or nil
// leader if this entry is the first of its group (it must then call lead).
func (t *linkTable) join(dev, ino uint64) (uint64, *linkLeader) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.groups == nil {
		t.groups = make(map[[2]uint64]*linkLeader)
	}
	key := [2]uint64{dev, ino}
	if l, ok := t.groups[key]; ok {
		return l.group, l
	}
	t.next++
	l := &linkLeader{group: t.next}
	t.groups[key] = l
	return l.group, nil
}

// lead records the future of a group's first entry.
func (t *linkTable) lead(dev, ino uint64, fut *future) {
	t.mu.Lock()
	t.groups[[2]uint64{dev, ino}].fut = fut
	t.mu.Unlock()
}

// follow returns a future for a group member that resolves with the
// leader's content once the leader is done.
func (ru *run) follow(path string, node format.Node, l *linkLeader) *future {
	f := newFuture(node)
	if l.fut == nil { // the leader was not stored
		f.skip = true
		close(f.done)
		ru.problem(path, errors.New("hard link to an entry that was skipped"), true)
		return f
	}
	go func() {
		defer close(f.done)
		select {
		case <-l.fut.done:
		case <-ru.ctx.Done():
			f.err = ru.ctx.Err()
			return
		}
		lead := &l.fut.node
		switch {
		case l.fut.err != nil:
			f.err = l.fut.err
		case l.fut.skip:
			f.skip = true
		default:
			f.node.Size, f.node.Chunks, f.node.Extents = lead.Size, lead.Chunks, lead.Extents
			f.node.Target, f.node.Rdev, f.node.Xattrs = lead.Target, lead.Rdev, lead.Xattrs
			f.node.MTime, f.node.CTime = lead.MTime, lead.CTime
		}
	}()
	return f
}
