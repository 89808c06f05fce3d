package archiver

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// packer seals blobs straight into data and metadata packs and uploads
// full packs while the backup goes on.
//
// The goroutine that stores a blob (a file worker, a tree) also compresses
// it, into a frame buffer of its own; only the encryption, which is about
// twenty times cheaper, runs under the packer's lock, writing the sealed
// blob into the open pack's buffer. So a blob's bytes are copied once
// (compressed into the frame) before they reach the pack, nothing queues
// between the workers and the packs, and at most one frame buffer per core,
// one pack buffer per upload in flight, and the open packs are held. Pack
// buffers come from pack.GetBuffer: outside the Go heap where the system
// allows, resident only as far as written, and given back once stored.
type packer struct {
	ctx    context.Context
	v      vaultapi.Vault
	sess   string
	sealer *format.Sealer
	// keepTree is told of every sealed tree, for the agent's cache folder.
	keepTree func(vaultapi.ID, []byte)

	// frames is the free list of frame buffers; taking one is the right
	// to compress, so it also bounds compression to one blob per core.
	frames chan []byte

	mu         sync.Mutex
	data, meta openPack // the open packs; empty before their first blob
	finished   bool

	// Small chunks are gathered into groups, compressed and sealed
	// together (doc/FORMAT.md, "Groups"), one group being gathered per
	// stream; the goroutine whose chunk fills a group seals it.
	grouping bool
	gmu      sync.Mutex
	own      *stream              // the packer's own stream, open until finish
	open     map[*stream]struct{} // the streams not closed, own included
	groups   sync.Pool            // *group, with small plain buffers
	bigPlain sync.Pool            // *[]byte of bigPlainCap

	slots   chan struct{} // one per data pack in memory: bounds them
	uploads chan upload
	wg      sync.WaitGroup
	added   atomic.Uint64

	errMu sync.Mutex
	err   error

	closed sync.Once
}

// stream is where the small data chunks of one folder's walker gather
// into groups. Several folders are read at once, each by its own walker;
// with one group for all, a group held files from every folder being read
// then, and restoring one folder (or reading it through a mount) read and
// decompressed groups mostly of other folders' files. A walker's files are
// neighbours in the tree, so its stream's groups are too.
//
// A stream closes when its walker has queued all its files: its group not
// yet full goes to the nearest open stream it came from (the walker of
// the folder above, or further up), where the files next to it in the
// tree go on gathering, and so do its files still being read. So only the
// streams of walkers still listing hold groups: at most one per walker
// slot, besides the packer's own. A nil stream is the packer's own, the
// top of every stream's line, which finish seals.
type stream struct {
	parent  *stream // the stream of the walker that started this one
	filling *group  // nil before its first chunk and after each sealing
	closed  bool
}

// newStream returns an open stream for a walker that parent's started
// (nil: the top walker); close it with listed.
func (p *packer) newStream(parent *stream) *stream {
	s := &stream{parent: parent}
	p.gmu.Lock()
	p.open[s] = struct{}{}
	p.gmu.Unlock()
	return s
}

// gathering returns the open stream that gathers s's chunks: s, or the
// nearest open one above it; p.gmu is held.
func (p *packer) gathering(s *stream) *stream {
	for s != nil && s.closed {
		s = s.parent
	}
	if s == nil {
		return p.own
	}
	return s
}

// listed closes s, whose walker has queued everything it will, handing
// its group to the stream that gathers for it now. Two groups not full
// meet there: they become one if that stays below GroupTarget, else the
// larger is sealed and the smaller gathers on.
func (p *packer) listed(s *stream) error {
	p.gmu.Lock()
	s.closed = true
	delete(p.open, s)
	g := s.filling
	s.filling = nil
	if g == nil {
		p.gmu.Unlock()
		return nil
	}
	up := p.gathering(s)
	var seal *group
	switch h := up.filling; {
	case h == nil:
		up.filling = g
	case len(h.plain)+len(g.plain) < format.GroupTarget && len(h.ids)+len(g.ids) < format.GroupMaxMembers:
		p.appendPlain(h, g.plain)
		h.lens = append(h.lens, g.lens...)
		h.ids = append(h.ids, g.ids...)
		p.recycle(g)
	case len(h.plain) >= len(g.plain):
		seal, up.filling = h, g
	default:
		seal = g
	}
	p.gmu.Unlock()
	if seal == nil {
		return nil
	}
	return p.sealGroup(seal)
}

// group is a group of small data chunks being gathered.
type group struct {
	plain []byte // the members back to back, then (once full) the table
	small []byte // its small buffer, kept while plain is a big one
	lens  []int
	ids   []vaultapi.ID
}

// metaPackStart is the first capacity of a metadata pack's buffer.
const metaPackStart = 256 << 10

// openPack is a pack being filled and the memory it is filled in.
type openPack struct {
	w   *pack.Writer
	buf *pack.Buffer
}

func newPacker(ctx context.Context, v vaultapi.Vault, sess string, s *format.Sealer, keepTree func(vaultapi.ID, []byte), sealers, uploaders int) *packer {
	p := &packer{ctx: ctx, v: v, sess: sess, sealer: s, keepTree: keepTree,
		frames:  make(chan []byte, sealers),
		uploads: make(chan upload),
		slots:   make(chan struct{}, 1+uploaders)}
	p.grouping = s.Groups()
	p.own = &stream{} // never closed: finish seals its group
	p.open = map[*stream]struct{}{p.own: {}}
	p.groups.New = func() any { return &group{plain: make([]byte, 0, smallPlainCap)} }
	p.bigPlain.New = func() any { b := make([]byte, 0, bigPlainCap); return &b }
	for range cap(p.frames) {
		p.frames <- nil // grown on use to the largest frame made
	}
	p.wg.Add(uploaders)
	for range uploaders {
		go p.upload()
	}
	return p
}

func (p *packer) setErr(err error) {
	p.errMu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.errMu.Unlock()
}

func (p *packer) error() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.err
}

// add compresses plain in the calling goroutine and seals it into the
// open pack of its kind; many goroutines call it at once. A small data
// chunk joins the group of the stream gathering for s (see stream)
// instead, and is sealed with it.
func (p *packer) add(kind vaultapi.Kind, id vaultapi.ID, plain []byte, s *stream) error {
	if err := p.error(); err != nil {
		return err
	}
	if p.grouping && kind == vaultapi.KindData && len(plain) < format.GroupMember {
		p.gmu.Lock()
		s = p.gathering(s)
		g := s.filling
		if g == nil {
			g = p.groups.Get().(*group)
			s.filling = g
		}
		p.appendPlain(g, plain)
		g.lens = append(g.lens, len(plain))
		g.ids = append(g.ids, id)
		full := len(g.plain) >= format.GroupTarget || len(g.ids) >= format.GroupMaxMembers
		if full {
			s.filling = nil
		}
		p.gmu.Unlock()
		if !full {
			return nil
		}
		return p.sealGroup(g)
	}
	return p.seal(kind, []vaultapi.ID{id}, plain, false)
}

// seal compresses plain, a blob or (group set) a group's plaintext, and
// puts it in the open pack of its kind.
func (p *packer) seal(kind vaultapi.Kind, ids []vaultapi.ID, plain []byte, group bool) error {
	var buf []byte
	select {
	case buf = <-p.frames:
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
	var frame []byte
	var err error
	if group {
		frame, err = p.sealer.GroupFrame(buf, plain)
	} else {
		frame, err = p.sealer.Frame(buf, plain)
	}
	if err == nil {
		err = p.put(kind, ids, frame, group)
	} else {
		err = fmt.Errorf("seal blob: %w", err)
	}
	p.frames <- frame[:0]
	if err != nil {
		p.setErr(err)
	}
	return err
}

// sealGroup seals a gathered group, or its only chunk as a blob of its
// own, and recycles it.
func (p *packer) sealGroup(g *group) error {
	var err error
	if len(g.ids) == 1 {
		err = p.seal(vaultapi.KindData, g.ids, g.plain, false)
	} else {
		g.plain = format.AppendGroupTable(g.plain, g.lens, g.ids)
		sortIDs(g.ids) // the trailer lists a group's IDs in order
		err = p.seal(vaultapi.KindData, g.ids, g.plain, true)
	}
	p.recycle(g)
	return err
}

// A group's members gather in a buffer of smallPlainCap, and move to one
// of bigPlainCap (room for a group at GroupTarget, its last member and the
// table) only if they outgrow it. The streams of small folders, most of
// them, never do: the groups being gathered at once, one per walker, hold
// little memory beyond what they gather.
const (
	smallPlainCap = 64 << 10
	bigPlainCap   = format.GroupTarget + format.GroupMember + format.MaxGroupTable
)

// appendPlain appends b to g's members, moving them to a big buffer if
// the small one is outgrown.
func (p *packer) appendPlain(g *group, b []byte) {
	if len(g.plain)+len(b) > cap(g.plain) && cap(g.plain) < bigPlainCap {
		big := p.bigPlain.Get().(*[]byte)
		g.small = g.plain[:0]
		g.plain = append((*big)[:0], g.plain...)
	}
	g.plain = append(g.plain, b...)
}

// recycle empties g and gives it, and its big buffer if any, back.
func (p *packer) recycle(g *group) {
	if g.small != nil {
		big := g.plain[:0]
		p.bigPlain.Put(&big)
		g.plain, g.small = g.small, nil
	}
	g.plain, g.lens, g.ids = g.plain[:0], g.lens[:0], g.ids[:0]
	p.groups.Put(g)
}

// flushGroups seals the groups being gathered, if any.
func (p *packer) flushGroups() error {
	p.gmu.Lock()
	var gs []*group
	for s := range p.open {
		if s.filling != nil { // a group being gathered holds at least one chunk
			gs = append(gs, s.filling)
			s.filling = nil
		}
	}
	p.gmu.Unlock()
	for _, g := range gs {
		if err := p.sealGroup(g); err != nil {
			return err
		}
	}
	return nil
}

// put encrypts frame, a blob or a group, into the open pack of its kind,
// first sending that pack off if the blob would take it past
// pack.TargetSize.
func (p *packer) put(kind vaultapi.Kind, ids []vaultapi.ID, frame []byte, group bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return fmt.Errorf("seal blob: packer already finished")
	}
	data := kind == vaultapi.KindData
	op := &p.data
	if !data {
		op = &p.meta
	}
	n := format.SealedSize(len(frame))
	if op.w != nil && !op.w.Fits(n, len(ids), pack.TargetSize) {
		u := upload{openPack: *op, slot: data}
		*op = openPack{}
		if err := p.send(u); err != nil {
			return err
		}
	}
	if op.w == nil {
		// Data packs take a slot: one fills while the others upload. The
		// metadata pack fills slowly, all through the backup, in the Go
		// heap, which has room for it below the collector's floor.
		if data {
			select {
			case p.slots <- struct{}{}:
			case <-p.ctx.Done():
				return context.Cause(p.ctx)
			}
			op.buf = pack.GetBuffer()
			op.w = pack.NewWriter(op.buf.Bytes())
		} else {
			op.w = pack.NewWriter(make([]byte, 0, metaPackStart))
		}
	}
	op.w.Grow(n)
	off := op.w.Size()
	err := op.w.AddGroupFunc(kind, ids, func(dst []byte) ([]byte, error) {
		if group {
			return p.sealer.SealGroup(dst, kind, frame)
		}
		return p.sealer.SealFrame(dst, kind, ids[0], frame)
	})
	if err != nil {
		return fmt.Errorf("seal blob: %w", err)
	}
	if kind == vaultapi.KindTree && p.keepTree != nil {
		p.keepTree(ids[0], op.w.Bytes()[off:])
	}
	return nil
}

// upload is a finished pack; slot tells whether it holds one of slots.
// buf is nil for a metadata pack.
type upload struct {
	openPack
	slot bool
}

// send hands a pack to the uploaders; the pack's buffer is theirs now.
func (p *packer) send(u upload) error {
	select {
	case p.uploads <- u:
		return nil
	case <-p.ctx.Done():
		p.free(u)
		return context.Cause(p.ctx)
	}
}

// free gives back a pack's buffer, and its slot.
func (p *packer) free(u upload) {
	if u.buf == nil {
		return
	}
	pack.PutBuffer(u.buf)
	if u.slot {
		<-p.slots
	}
}

func (p *packer) upload() {
	defer p.wg.Done()
	for u := range p.uploads {
		if p.error() != nil || p.ctx.Err() != nil {
			p.free(u)
			continue
		}
		pk := u.w.Finish()
		// The buffer goes back as soon as the vault has written it
		// (Pack.Release): the next pack may fill while this one syncs.
		var once sync.Once
		pk.Release = func() { once.Do(func() { p.free(u) }) }
		if err := p.v.StorePack(p.ctx, p.sess, pk); err != nil {
			p.setErr(fmt.Errorf("store pack: %w", err))
		} else {
			p.added.Add(uint64(len(pk.Data)))
		}
		pk.Release()
	}
}

// finish seals the last group, sends the last packs and waits for every
// upload.
func (p *packer) finish() error {
	if err := p.flushGroups(); err != nil {
		p.abort()
		return err
	}
	p.mu.Lock()
	p.finished = true
	var err error
	for _, u := range []upload{{openPack: p.data, slot: true}, {openPack: p.meta}} {
		switch {
		case u.w == nil:
		case u.w.Count() > 0 && err == nil && p.error() == nil:
			err = p.send(u)
		default:
			p.free(u)
		}
	}
	p.data, p.meta = openPack{}, openPack{}
	p.mu.Unlock()
	p.close()
	p.wg.Wait()
	if err != nil {
		return err
	}
	if err := p.error(); err != nil {
		return err
	}
	return p.ctx.Err()
}

// abort stops the packer after a failure; open packs are dropped.
func (p *packer) abort() {
	p.gmu.Lock()
	for s := range p.open {
		s.filling = nil
	}
	p.gmu.Unlock()
	p.mu.Lock()
	p.finished = true
	p.free(upload{openPack: p.data, slot: true})
	p.free(upload{openPack: p.meta})
	p.data, p.meta = openPack{}, openPack{}
	p.mu.Unlock()
	p.close()
	p.wg.Wait()
}

// close stops the uploaders once every pack sent is stored.
func (p *packer) close() { p.closed.Do(func() { close(p.uploads) }) }
