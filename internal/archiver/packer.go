package archiver

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/coffer-backup/coffer/internal/chunker"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

type sealedBlob struct {
	kind vaultapi.Kind
	id   vaultapi.ID
	buf  *[]byte
	big  bool
}

// packer seals blobs, gathers them into data and metadata packs, and
// uploads full packs while the backup goes on.
type packer struct {
	ctx    context.Context
	v      vaultapi.Vault
	sess   string
	sealer *format.Sealer

	in      chan sealedBlob
	uploads chan vaultapi.Pack
	wg      sync.WaitGroup
	added   atomic.Uint64

	errMu sync.Mutex
	err   error

	smallBufs, bigBufs sync.Pool
	packBufs           chan []byte // free list: bounds the packs held in memory
	closed             sync.Once
}

// smallBlob is the largest blob that takes a buffer from the small pool.
const smallBlob = 64 << 10

func newPacker(ctx context.Context, v vaultapi.Vault, sess string, s *format.Sealer, uploaders int) *packer {
	p := &packer{ctx: ctx, v: v, sess: sess, sealer: s,
		in: make(chan sealedBlob, 4), uploads: make(chan vaultapi.Pack),
		packBufs: make(chan []byte, 2+uploaders)}
	p.smallBufs.New = func() any { b := make([]byte, 0, smallBlob+format.Overhead+64); return &b }
	p.bigBufs.New = func() any { b := make([]byte, 0, chunker.MaxSize+format.Overhead+64); return &b }
	for range cap(p.packBufs) {
		p.packBufs <- nil // allocated on first use
	}
	p.wg.Add(1 + uploaders)
	go p.loop()
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

// add seals plain and queues it for a pack. It is called by many workers.
func (p *packer) add(kind vaultapi.Kind, id vaultapi.ID, plain []byte) error {
	if err := p.error(); err != nil {
		return err
	}
	pool := &p.bigBufs
	if len(plain) <= smallBlob {
		pool = &p.smallBufs
	}
	bp := pool.Get().(*[]byte)
	sp := pool.Get().(*[]byte)
	sealed, scratch, err := p.sealer.Seal((*bp)[:0], kind, id, plain, (*sp)[:0])
	*sp = scratch
	pool.Put(sp)
	if err != nil {
		return fmt.Errorf("seal blob: %w", err)
	}
	*bp = sealed
	select {
	case p.in <- sealedBlob{kind: kind, id: id, buf: bp, big: pool == &p.bigBufs}:
		return nil
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
}

// newWriter takes a pack buffer from the free list, waiting while every
// buffer is in use.
func (p *packer) newWriter() *pack.Writer {
	var b []byte
	select {
	case b = <-p.packBufs:
	case <-p.ctx.Done():
	}
	if b == nil {
		b = make([]byte, 0, pack.TargetSize+chunker.MaxSize+format.Overhead+64)
	}
	return pack.NewWriter(b)
}

func (p *packer) freeBuf(b []byte) {
	select {
	case p.packBufs <- b[:0]:
	default:
	}
}

func (p *packer) loop() {
	defer p.wg.Done()
	defer close(p.uploads)
	data, meta := p.newWriter(), p.newWriter()
	send := func(w *pack.Writer) bool {
		select {
		case p.uploads <- w.Finish():
			return true
		case <-p.ctx.Done():
			return false
		}
	}
	for b := range p.in {
		w := data
		if b.kind != vaultapi.KindData {
			w = meta
		}
		w.Add(b.kind, b.id, *b.buf)
		if b.big {
			p.bigBufs.Put(b.buf)
		} else {
			p.smallBufs.Put(b.buf)
		}
		if w.Size() >= pack.TargetSize {
			if !send(w) {
				continue // drain
			}
			if b.kind == vaultapi.KindData {
				data = p.newWriter()
			} else {
				meta = p.newWriter()
			}
		}
	}
	for _, w := range []*pack.Writer{data, meta} {
		if w.Count() > 0 && !send(w) {
			return
		}
	}
}

func (p *packer) upload() {
	defer p.wg.Done()
	for pk := range p.uploads {
		if p.error() != nil || p.ctx.Err() != nil {
			p.freeBuf(pk.Data)
			continue
		}
		if err := p.v.StorePack(p.ctx, p.sess, pk); err != nil {
			p.setErr(fmt.Errorf("store pack: %w", err))
		} else {
			p.added.Add(uint64(len(pk.Data)))
		}
		p.freeBuf(pk.Data)
	}
}

// finish flushes the last packs and waits for every upload.
func (p *packer) finish() error {
	p.closed.Do(func() { close(p.in) })
	p.wg.Wait()
	if err := p.error(); err != nil {
		return err
	}
	return p.ctx.Err()
}

// abort stops the packer after a failure.
func (p *packer) abort() {
	p.closed.Do(func() { close(p.in) })
	p.wg.Wait()
}
