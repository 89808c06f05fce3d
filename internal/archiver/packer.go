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

	blobBufs, packBufs sync.Pool
	closed             sync.Once
}

func newPacker(ctx context.Context, v vaultapi.Vault, sess string, s *format.Sealer, uploaders int) *packer {
	p := &packer{ctx: ctx, v: v, sess: sess, sealer: s,
		in: make(chan sealedBlob, 4), uploads: make(chan vaultapi.Pack)}
	p.blobBufs.New = func() any { b := make([]byte, 0, chunker.MaxSize+format.Overhead+64); return &b }
	p.packBufs.New = func() any { b := make([]byte, 0, pack.TargetSize+chunker.MaxSize+1<<20); return &b }
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
	bp := p.blobBufs.Get().(*[]byte)
	sp := p.blobBufs.Get().(*[]byte)
	sealed, scratch, err := p.sealer.Seal((*bp)[:0], kind, id, plain, (*sp)[:0])
	*sp = scratch
	p.blobBufs.Put(sp)
	if err != nil {
		return fmt.Errorf("seal blob: %w", err)
	}
	*bp = sealed
	select {
	case p.in <- sealedBlob{kind: kind, id: id, buf: bp}:
		return nil
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
}

func (p *packer) newWriter() *pack.Writer {
	bp := p.packBufs.Get().(*[]byte)
	return pack.NewWriter(*bp)
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
		p.blobBufs.Put(b.buf)
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
			continue
		}
		if err := p.v.StorePack(p.ctx, p.sess, pk); err != nil {
			p.setErr(fmt.Errorf("store pack: %w", err))
			continue
		}
		p.added.Add(uint64(len(pk.Data)))
		buf := pk.Data[:0]
		p.packBufs.Put(&buf)
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
