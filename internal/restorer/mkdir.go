package restorer

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/coffer-backup/coffer/internal/format"
)

// mkdirer makes the folders the plan needs in a goroutine of its own, in
// the order the plan asks for them, so parents first. The plan, which
// the rest of the restore waits for, then walks on while the file system
// works: making the linux tree's 5,096 folders took 0.23 s of a 0.75 s
// plan, with the other core often idle. Whoever needs a folder to exist
// (any handle of it, from dirCache.get) waits until it is made.
//
// A folder the plan queues does not exist yet (its parent is new, or
// had no entry of that name when the plan looked), so it is taken as
// fresh: the plan looks up nothing in it. Should something else create
// an entry there meanwhile, the restore's exclusive creation refuses to
// write over it and reports the entry.
type mkdirer struct {
	rs   *restore
	mu   sync.Mutex
	cond *sync.Cond
	// queue holds the folders not yet taken; closed says no more come.
	queue  []*rdir
	closed bool
	queued uint64        // folders queued so far (the plan's goroutine only)
	done   atomic.Uint64 // folders made, or failed, in queue order
	exited chan struct{}
}

func newMkdirer(rs *restore) *mkdirer {
	m := &mkdirer{rs: rs, exited: make(chan struct{})}
	m.cond = sync.NewCond(&m.mu)
	go m.run()
	return m
}

// add queues d, whose parent is made or queued already; d.seq says when
// it is made.
func (m *mkdirer) add(d *rdir) {
	m.queued++
	d.seq = m.queued
	m.mu.Lock()
	m.queue = append(m.queue, d)
	m.cond.Broadcast()
	m.mu.Unlock()
}

// wait waits until d is made and returns why it could not be, if so.
func (m *mkdirer) wait(d *rdir) error {
	if m.done.Load() < d.seq {
		m.mu.Lock()
		for m.done.Load() < d.seq {
			m.cond.Wait()
		}
		m.mu.Unlock()
	}
	return d.mkErr
}

// finish waits until every queued folder is made (or has failed).
func (m *mkdirer) finish() {
	m.mu.Lock()
	m.closed = true
	m.cond.Broadcast()
	m.mu.Unlock()
	<-m.exited
}

func (m *mkdirer) run() {
	defer close(m.exited)
	for {
		m.mu.Lock()
		for len(m.queue) == 0 && !m.closed {
			m.cond.Wait()
		}
		batch := m.queue
		m.queue = nil
		m.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, d := range batch {
			d.mkErr = m.make(d)
			m.mu.Lock()
			m.done.Add(1)
			m.cond.Broadcast()
			m.mu.Unlock()
		}
	}
}

// make makes d in its parent, made before it. If the parent could not
// be made, d fails with the same error, as does every entry restored in
// either; each is reported.
func (m *mkdirer) make(d *rdir) error {
	rs := m.rs
	if err := rs.ctx.Err(); err != nil {
		return err
	}
	if p := d.parent; p.seq != 0 && p.mkErr != nil { // made (or not) by this goroutine
		rs.problem(d.path, p.mkErr)
		return p.mkErr
	}
	h, ref, err := rs.cache.get(d.parent)
	if err != nil {
		return fmt.Errorf("folder %s: %w", d.parent.path, err)
	}
	defer ref.release()
	if err := mkdirAt(h, d.name); err != nil {
		if st, serr := lstatAt(h, d.name); serr == nil && st.typ == format.TypeDir {
			return nil // made meanwhile by something else
		}
		rs.problem(d.path, err)
		return fmt.Errorf("folder %s could not be made: %w", d.path, err)
	}
	return nil
}
