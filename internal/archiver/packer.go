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

	slots   chan struct{} // one per data pack in memory: bounds them
	uploads chan upload
	wg      sync.WaitGroup
	added   atomic.Uint64

	errMu sync.Mutex
	err   error

	closed sync.Once
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
// open pack of its kind; many goroutines call it at once.
func (p *packer) add(kind vaultapi.Kind, id vaultapi.ID, plain []byte) error {
	if err := p.error(); err != nil {
		return err
	}
	var buf []byte
	select {
	case buf = <-p.frames:
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
	frame, err := p.sealer.Frame(buf, plain)
	if err == nil {
		err = p.put(kind, id, frame)
	} else {
		err = fmt.Errorf("seal blob: %w", err)
	}
	p.frames <- frame[:0]
	if err != nil {
		p.setErr(err)
	}
	return err
}

// put encrypts frame into the open pack of its kind, first sending that
// pack off if the blob would take it past pack.TargetSize.
func (p *packer) put(kind vaultapi.Kind, id vaultapi.ID, frame []byte) error {
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
	if op.w != nil && !op.w.Fits(n, pack.TargetSize) {
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
	err := op.w.AddFunc(kind, id, func(dst []byte) ([]byte, error) {
		return p.sealer.SealFrame(dst, kind, id, frame)
	})
	if err != nil {
		return fmt.Errorf("seal blob: %w", err)
	}
	if kind == vaultapi.KindTree && p.keepTree != nil {
		p.keepTree(id, op.w.Bytes()[off:])
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
		if err := p.v.StorePack(p.ctx, p.sess, pk); err != nil {
			p.setErr(fmt.Errorf("store pack: %w", err))
		} else {
			p.added.Add(uint64(len(pk.Data)))
		}
		p.free(u)
	}
}

// finish sends the last packs and waits for every upload.
func (p *packer) finish() error {
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
