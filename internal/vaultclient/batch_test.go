package vaultclient

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func TestHasBatcherMerges(t *testing.T) {
	var requests atomic.Int32
	b := &hasBatcher{max: 1, send: func(ctx context.Context, ids []vaultapi.ID) ([]bool, error) {
		requests.Add(1)
		time.Sleep(2 * time.Millisecond) // a round trip
		out := make([]bool, len(ids))
		for i, id := range ids {
			out[i] = id[0]%2 == 1
		}
		return out, nil
	}}
	const callers = 64
	var wg sync.WaitGroup
	errs := make(chan string, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := []vaultapi.ID{{byte(i)}, {byte(i + 1)}}
			has, err := b.has(context.Background(), ids)
			if err != nil || len(has) != 2 || has[0] != (i%2 == 1) || has[1] != ((i+1)%2 == 1) {
				errs <- "wrong answer"
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if n := requests.Load(); n >= callers/2 {
		t.Errorf("%d requests for %d concurrent callers: not merged", n, callers)
	}
	if len(b.pending) != 0 || b.inflight != 0 {
		t.Errorf("batcher left %d pending, %d in flight", len(b.pending), b.inflight)
	}
}

func TestHasBatcherCancel(t *testing.T) {
	release := make(chan struct{})
	b := &hasBatcher{max: 1, send: func(ctx context.Context, ids []vaultapi.ID) ([]bool, error) {
		<-release
		return make([]bool, len(ids)), nil
	}}
	go b.has(context.Background(), []vaultapi.ID{{1}}) // holds the only place
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.has(ctx, []vaultapi.ID{{2}}); err != context.Canceled {
		t.Fatalf("cancelled call: %v", err)
	}
	close(release)
}
