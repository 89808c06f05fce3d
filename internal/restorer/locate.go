package restorer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Locate batch sizes: the first batch is small so that fetching starts
// soon after the plan does; later ones grow to locateBatch.
const (
	locateFirst = 512
	locateBatch = 8192
)

// locator finds where blobs are while the plan still walks the trees:
// IDs go out in batches as they are first needed, with at most GOMAXPROCS
// batches in flight, and each batch's locations go to deliver as soon as
// they are known, so that fetching overlaps planning instead of
// following it.
type locator struct {
	ctx     context.Context
	v       vaultapi.Vault
	deliver func([]vaultapi.Location)
	pending []vaultapi.ID
	batch   int
	slots   chan struct{}
	wg      sync.WaitGroup

	mu   sync.Mutex
	errs []error
}

func newLocator(ctx context.Context, v vaultapi.Vault, deliver func([]vaultapi.Location)) *locator {
	return &locator{ctx: ctx, v: v, deliver: deliver, batch: locateFirst,
		slots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
}

// add queues id, which the plan needs fetched.
func (l *locator) add(id vaultapi.ID) {
	l.pending = append(l.pending, id)
	if len(l.pending) >= l.batch {
		l.flush()
		l.batch = min(2*l.batch, locateBatch)
	}
}

// flush sends the queued IDs, sorted (neighbouring keys are read together).
func (l *locator) flush() {
	if len(l.pending) == 0 {
		return
	}
	ids := l.pending
	l.pending = make([]vaultapi.ID, 0, locateBatch)
	slices.SortFunc(ids, vaultapi.ID.Compare)
	l.wg.Add(1)
	l.slots <- struct{}{}
	go func() {
		defer func() { <-l.slots; l.wg.Done() }()
		locs, err := l.v.Locate(l.ctx, ids)
		if err != nil {
			l.mu.Lock()
			l.errs = append(l.errs, err)
			l.mu.Unlock()
			return
		}
		l.deliver(locs)
	}()
}

// wait sends what is queued and waits until every batch is delivered.
func (l *locator) wait() error {
	l.flush()
	l.wg.Wait()
	if err := errors.Join(l.errs...); err != nil {
		return fmt.Errorf("locate blobs: %w", err)
	}
	return nil
}
