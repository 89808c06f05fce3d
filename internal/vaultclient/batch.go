package vaultclient

import (
	"context"
	"sync"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// hasBatcher merges concurrent small HasBlobs calls into one request, the
// way a database merges concurrent commits: while a request is in flight,
// new calls queue; the next request carries everything queued. A lone
// caller pays one round trip, as before; many concurrent callers (the
// archiver's workers each ask about one blob at a time) share round trips.
type hasBatcher struct {
	send func(ctx context.Context, ids []vaultapi.ID) ([]bool, error)

	mu       sync.Mutex
	pending  []*hasCall
	inflight int
	max      int // requests in flight at once
}

type hasCall struct {
	ids  []vaultapi.ID
	has  []bool
	err  error
	done chan struct{}
}

// maxMerged bounds the IDs of one merged request; larger calls go alone.
const maxMerged = 4096

func (b *hasBatcher) has(ctx context.Context, ids []vaultapi.ID) ([]bool, error) {
	if len(ids) >= maxMerged/4 {
		return b.send(ctx, ids)
	}
	c := &hasCall{ids: ids, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	lead := b.inflight < b.max
	if lead {
		b.inflight++
	}
	b.mu.Unlock()
	if lead {
		b.drain(context.WithoutCancel(ctx))
	}
	select {
	case <-c.done:
		return c.has, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// drain sends what is queued until nothing is; the caller holds one of
// the in-flight places.
func (b *hasBatcher) drain(ctx context.Context) {
	for {
		b.mu.Lock()
		n, size := 0, 0
		for n < len(b.pending) && (n == 0 || size+len(b.pending[n].ids) <= maxMerged) {
			size += len(b.pending[n].ids)
			n++
		}
		batch := b.pending[:n:n]
		b.pending = b.pending[n:]
		if n == 0 {
			b.inflight--
			b.pending = nil
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()

		ids := make([]vaultapi.ID, 0, size)
		for _, c := range batch {
			ids = append(ids, c.ids...)
		}
		has, err := b.send(ctx, ids)
		off := 0
		for _, c := range batch {
			if err != nil {
				c.err = err
			} else {
				c.has = has[off : off+len(c.ids) : off+len(c.ids)]
			}
			off += len(c.ids)
			close(c.done)
		}
	}
}
