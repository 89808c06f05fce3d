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
	cost int64 // bytes taken from the queue budget
}

// queueBudget bounds the plaintext bytes queued between the workers and
// the pack loop.
const queueBudget = 24 << 20

// packer seals blobs, gathers them into data and metadata packs, and
// uploads full packs while the backup goes on.
type packer struct {
	ctx    context.Context
	v      vaultapi.Vault
	sess   string
	sealer *format.Sealer
	// keepTree is told of every sealed tree, for the agent's cache folder.
	keepTree func(vaultapi.ID, []byte)

	plain   chan sealedBlob // to the sealers: plaintext copies
	in      chan sealedBlob // to the pack loop: sealed blobs
	queued  *budget
	uploads chan vaultapi.Pack
	sealWG  sync.WaitGroup
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

func newPacker(ctx context.Context, v vaultapi.Vault, sess string, s *format.Sealer, keepTree func(vaultapi.ID, []byte), sealers, uploaders int) *packer {
	p := &packer{ctx: ctx, v: v, sess: sess, sealer: s, keepTree: keepTree,
		plain: make(chan sealedBlob, 64), in: make(chan sealedBlob, 64), uploads: make(chan vaultapi.Pack),
		queued:   newBudget(queueBudget),
		packBufs: make(chan []byte, 1+uploaders)}
	// Buffers grow to what they hold (most chunks are about 1 MiB, not the
	// 4 MiB maximum): capacity nobody writes still counts for the garbage
	// collector's heap target.
	p.smallBufs.New = func() any { b := make([]byte, 0, smallBlob+format.Overhead+64); return &b }
	p.bigBufs.New = func() any { b := make([]byte, 0); return &b }
	for range cap(p.packBufs) {
		p.packBufs <- nil // allocated on first use
	}
	p.sealWG.Add(sealers)
	for range sealers {
		go p.seal()
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

func (p *packer) pool(n int) (*sync.Pool, bool) {
	if n <= smallBlob {
		return &p.smallBufs, false
	}
	return &p.bigBufs, true
}

// add queues a copy of plain for sealing and packing; many workers call
// it. Sealing runs in its own goroutines, so one large file keeps every
// core compressing.
func (p *packer) add(kind vaultapi.Kind, id vaultapi.ID, plain []byte) error {
	if err := p.error(); err != nil {
		return err
	}
	cost := int64(len(plain))
	if err := p.queued.acquire(p.ctx, cost); err != nil {
		return context.Cause(p.ctx)
	}
	pool, big := p.pool(len(plain))
	bp := pool.Get().(*[]byte)
	*bp = append((*bp)[:0], plain...)
	select {
	case p.plain <- sealedBlob{kind: kind, id: id, buf: bp, big: big, cost: cost}:
		return nil
	case <-p.ctx.Done():
		p.queued.release(cost)
		return context.Cause(p.ctx)
	}
}

// seal compresses and encrypts queued blobs and hands them to the loop.
func (p *packer) seal() {
	defer p.sealWG.Done()
	var scratch []byte
	for b := range p.plain {
		if p.error() != nil || p.ctx.Err() != nil {
			p.putBuf(b)
			p.queued.release(b.cost)
			continue
		}
		pool, big := p.pool(len(*b.buf))
		out := pool.Get().(*[]byte)
		sealed, sc, err := p.sealer.Seal((*out)[:0], b.kind, b.id, *b.buf, scratch)
		scratch = sc
		p.putBuf(b)
		if err != nil {
			p.setErr(fmt.Errorf("seal blob: %w", err))
			pool.Put(out)
			p.queued.release(b.cost)
			continue
		}
		*out = sealed
		if b.kind == vaultapi.KindTree && p.keepTree != nil {
			p.keepTree(b.id, sealed)
		}
		select {
		case p.in <- sealedBlob{kind: b.kind, id: b.id, buf: out, big: big, cost: b.cost}:
		case <-p.ctx.Done():
			pool.Put(out)
			p.queued.release(b.cost)
		}
	}
}

func (p *packer) putBuf(b sealedBlob) {
	if b.big {
		p.bigBufs.Put(b.buf)
	} else {
		p.smallBufs.Put(b.buf)
	}
}

// newWriter takes a data pack buffer from the free list, waiting while
// every buffer is in use.
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

// newMetaWriter starts a metadata pack: small, so it grows as it fills
// rather than taking a full buffer for the whole backup.
func (p *packer) newMetaWriter() *pack.Writer { return pack.NewWriter(make([]byte, 0, 256<<10)) }

func (p *packer) freeBuf(b []byte) {
	if cap(b) < pack.TargetSize { // a metadata pack's: not worth keeping
		return
	}
	select {
	case p.packBufs <- b[:0]:
	default:
	}
}

func (p *packer) loop() {
	defer p.wg.Done()
	defer close(p.uploads)
	data, meta := p.newWriter(), p.newMetaWriter()
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
		p.putBuf(b)
		p.queued.release(b.cost)
		if w.Size() >= pack.TargetSize {
			if !send(w) {
				continue // drain
			}
			if b.kind == vaultapi.KindData {
				data = p.newWriter()
			} else {
				meta = p.newMetaWriter()
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
	p.close()
	p.wg.Wait()
	if err := p.error(); err != nil {
		return err
	}
	return p.ctx.Err()
}

// abort stops the packer after a failure.
func (p *packer) abort() {
	p.close()
	p.wg.Wait()
}

// close stops the sealers, then the pack loop.
func (p *packer) close() {
	p.closed.Do(func() {
		close(p.plain)
		p.sealWG.Wait()
		close(p.in)
	})
}
