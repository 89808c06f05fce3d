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
	// together (doc/FORMAT.md, "Groups"): filling is the group being
	// gathered; the goroutine whose chunk fills it seals it.
	grouping bool
	gmu      sync.Mutex
	filling  *group
	groups   sync.Pool

	slots   chan struct{} // one per data pack in memory: bounds them
	uploads chan upload
	wg      sync.WaitGroup
	added   atomic.Uint64

	errMu sync.Mutex
	err   error

	closed sync.Once
}

// group is a group of small data chunks being gathered.
type group struct {
	plain []byte // the members back to back, then (once full) the table
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
	p.groups.New = func() any {
		return &group{plain: make([]byte, 0, format.GroupTarget+format.GroupMember+64)}
	}
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
// chunk joins the group being gathered instead, and is sealed with it.
func (p *packer) add(kind vaultapi.Kind, id vaultapi.ID, plain []byte) error {
	if err := p.error(); err != nil {
		return err
	}
	if p.grouping && kind == vaultapi.KindData && len(plain) < format.GroupMember {
		p.gmu.Lock()
		g := p.filling
		if g == nil {
			g = p.groups.Get().(*group)
			p.filling = g
		}
		g.plain = append(g.plain, plain...)
		g.lens = append(g.lens, len(plain))
		g.ids = append(g.ids, id)
		full := len(g.plain) >= format.GroupTarget || len(g.ids) >= format.GroupMaxMembers
		if full {
			p.filling = nil
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
		g.plain = format.AppendGroupTable(g.plain, g.lens)
		sortIDs(g.ids) // the trailer lists a group's IDs in order
		err = p.seal(vaultapi.KindData, g.ids, g.plain, true)
	}
	g.plain, g.lens, g.ids = g.plain[:0], g.lens[:0], g.ids[:0]
	p.groups.Put(g)
	return err
}

// flushGroup seals the group being gathered, if any.
func (p *packer) flushGroup() error {
	p.gmu.Lock()
	g := p.filling
	p.filling = nil
	p.gmu.Unlock()
	if g == nil { // a group being gathered holds at least one chunk
		return nil
	}
	return p.sealGroup(g)
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
	if err := p.flushGroup(); err != nil {
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
	p.filling = nil
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
