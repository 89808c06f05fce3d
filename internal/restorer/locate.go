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

// locateBatch is how many blob IDs one Locate call asks for.
const locateBatch = 8192

// locator finds where blobs are while the plan still walks the trees:
// IDs go out in batches as they are first needed, so locating a whole
// tree's 80k blobs overlaps planning instead of following it, with at
// most GOMAXPROCS batches in flight.
type locator struct {
	ctx     context.Context
	v       vaultapi.Vault
	pending []vaultapi.ID
	slots   chan struct{}
	wg      sync.WaitGroup

	mu    sync.Mutex
	found []vaultapi.Location
	errs  []error
}

func newLocator(ctx context.Context, v vaultapi.Vault) *locator {
	return &locator{ctx: ctx, v: v, slots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
}

// add queues id, which the plan needs for the first time.
func (l *locator) add(id vaultapi.ID) {
	l.pending = append(l.pending, id)
	if len(l.pending) >= locateBatch {
		l.flush()
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
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			l.errs = append(l.errs, err)
			return
		}
		l.found = append(l.found, locs...)
	}()
}

// wait sends what is queued and returns every location found.
func (l *locator) wait() ([]vaultapi.Location, error) {
	l.flush()
	l.wg.Wait()
	if err := errors.Join(l.errs...); err != nil {
		return nil, fmt.Errorf("locate blobs: %w", err)
	}
	return l.found, nil
}
