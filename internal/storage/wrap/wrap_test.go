package wrap_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/memory"
	"github.com/coffer-backup/coffer/internal/storage/storagetest"
	"github.com/coffer-backup/coffer/internal/storage/wrap"
)

// fakeSleep records the waits of Retry instead of waiting.
type fakeSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeSleep) sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	return ctx.Err()
}

func seed(t *testing.T) uint64 {
	t.Helper()
	s := rand.Uint64()
	t.Logf("seed %d", s)
	return s
}

func TestPrefixConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		inner := memory.New(nil)
		// An object outside the prefix must stay invisible.
		if err := inner.Put(context.Background(), "other/x", bytes.NewReader([]byte("x")), 1, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		s, err := wrap.Prefix(inner, "vaults/one/")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestStackConformance runs the suite through faults (one call in 7 fails),
// retry and metrics: the stack must be as correct as the store beneath.
func TestStackConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		faulty := wrap.Inject(memory.New(nil), wrap.Faults{Every: 7})
		sl := &fakeSleep{}
		return wrap.Measure(wrap.Retry(faulty, wrap.RetryPolicy{Sleep: sl.sleep, BufferLimit: 64 << 20}), nil)
	})
}

// nonSeekable hides the Seek method of a reader.
type nonSeekable struct{ io.Reader }

// TestBackupWorkload stores many content-named objects, as a backup does,
// through a store failing about 1 request in 10 (some after writing, as
// lost responses), wrapped in Retry; every object must end up intact.
func TestBackupWorkload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults wrap.Faults
	}{
		{"every-10th", wrap.Faults{Every: 10}},
		{"p0.1-lost-responses", wrap.Faults{Probability: 0.1, AfterWrite: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sd := seed(t)
			rng := rand.New(rand.NewPCG(sd, 1))
			if tc.faults.Probability > 0 {
				tc.faults.Rand = rand.New(rand.NewPCG(sd, 2))
			}
			mem := memory.New(nil)
			faulty := wrap.Inject(mem, tc.faults)
			sl := &fakeSleep{}
			jrng := rand.New(rand.NewPCG(sd, 3))
			var jmu sync.Mutex
			jitter := func() float64 { jmu.Lock(); defer jmu.Unlock(); return jrng.Float64() }
			s := wrap.Retry(faulty, wrap.RetryPolicy{Attempts: 8, Sleep: sl.sleep, Jitter: jitter})
			ctx := context.Background()

			want := map[string][]byte{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			errs := make(chan error, 400)
			for i := range 400 {
				data := make([]byte, 1+rng.IntN(64<<10))
				for j := range data {
					data[j] = byte(rng.Uint32())
				}
				sum := sha256.Sum256(data)
				name := "packs/" + hex.EncodeToString(sum[:1]) + "/" + hex.EncodeToString(sum[:])
				mu.Lock()
				want[name] = data
				mu.Unlock()
				var body io.Reader = bytes.NewReader(data)
				if i%2 == 1 {
					body = nonSeekable{body} // Retry must buffer it
				}
				wg.Go(func() {
					err := s.Put(ctx, name, body, int64(len(data)), storage.PutOptions{IfAbsent: true})
					if errors.Is(err, storage.ErrExists) {
						err = nil // content-named: already there is as good as stored
					}
					if err != nil {
						errs <- fmt.Errorf("put %s: %w", name, err)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if faulty.Injected() < 20 {
				t.Fatalf("only %d faults injected, want many", faulty.Injected())
			}
			t.Logf("%d faults injected, %d retries", faulty.Injected(), len(sl.waits))

			var names []string
			if err := s.List(ctx, "packs/", func(info storage.Info) error {
				names = append(names, info.Name)
				return nil
			}); err != nil {
				t.Fatalf("List: %v", err)
			}
			if len(names) != len(want) || !slices.IsSorted(names) {
				t.Fatalf("List: got %d names (sorted: %v), want %d", len(names), slices.IsSorted(names), len(want))
			}
			for name, data := range want {
				rc, err := s.Get(ctx, name, 0, -1)
				if err != nil {
					t.Fatalf("Get(%s): %v", name, err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("Get(%s): got %d bytes, %v; want %d bytes", name, len(got), err, len(data))
				}
			}
		})
	}
}

// failing is a store whose every call fails with err, counting calls.
type failing struct {
	storage.Storage
	err   error
	calls int
}

func (f *failing) Stat(ctx context.Context, name string) (storage.Info, error) {
	f.calls++
	return storage.Info{}, f.err
}

func (f *failing) Put(ctx context.Context, name string, r io.Reader, size int64, opts storage.PutOptions) error {
	f.calls++
	_, _ = io.Copy(io.Discard, r)
	return f.err
}

func TestRetryGivesUp(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	transient := storage.Transient(errors.New("503 server busy"))
	tests := []struct {
		name      string
		ctx       context.Context
		err       error
		wantCalls int
	}{
		{"permanent", context.Background(), errors.New("403 access denied"), 1},
		{"not-found", context.Background(), fmt.Errorf("x: %w", storage.ErrNotFound), 1},
		{"exists", context.Background(), fmt.Errorf("x: %w", storage.ErrExists), 1},
		{"cancelled", cancelled, transient, 1},
		{"wrapped-cancel", context.Background(), storage.Transient(fmt.Errorf("x: %w", context.Canceled)), 1},
		{"transient", context.Background(), transient, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &failing{err: tc.err}
			sl := &fakeSleep{}
			s := wrap.Retry(f, wrap.RetryPolicy{Attempts: 4, Sleep: sl.sleep, Jitter: func() float64 { return 0 }})
			_, err := s.Stat(tc.ctx, "x")
			if !errors.Is(err, tc.err) {
				t.Errorf("error: got %v, want %v", err, tc.err)
			}
			if f.calls != tc.wantCalls {
				t.Errorf("calls: got %d, want %d", f.calls, tc.wantCalls)
			}
		})
	}
}

func TestRetryBackoff(t *testing.T) {
	f := &failing{err: storage.Transient(errors.New("busy"))}
	sl := &fakeSleep{}
	p := wrap.RetryPolicy{Attempts: 6, Base: 100 * time.Millisecond, Max: 500 * time.Millisecond,
		Sleep: sl.sleep, Jitter: func() float64 { return 0.5 }}
	_, _ = wrap.Retry(f, p).Stat(context.Background(), "x")
	// Backoffs 100, 200, 400, 500, 500 ms; each half fixed, half jittered.
	want := []time.Duration{75, 150, 300, 375, 375}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(sl.waits, want) {
		t.Errorf("waits: got %v, want %v", sl.waits, want)
	}
}

func TestRetryPutBodies(t *testing.T) {
	data := bytes.Repeat([]byte("abc"), 100)
	tests := []struct {
		name      string
		body      io.Reader
		limit     int64
		wantCalls int
	}{
		{"seekable", bytes.NewReader(data), 10, 3},
		{"buffered", nonSeekable{bytes.NewReader(data)}, 1000, 3},
		{"too-large-to-buffer", nonSeekable{bytes.NewReader(data)}, 10, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &failing{err: storage.Transient(errors.New("reset"))}
			sl := &fakeSleep{}
			s := wrap.Retry(f, wrap.RetryPolicy{Attempts: 3, BufferLimit: tc.limit, Sleep: sl.sleep})
			_ = s.Put(context.Background(), "x", tc.body, int64(len(data)), storage.PutOptions{})
			if f.calls != tc.wantCalls {
				t.Errorf("calls: got %d, want %d", f.calls, tc.wantCalls)
			}
		})
	}
}

// flakyList fails its first List after passing three objects to fn.
type flakyList struct {
	storage.Storage
	failed bool
}

func (f *flakyList) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	n := 0
	return f.Storage.List(ctx, prefix, func(info storage.Info) error {
		if n++; n == 4 && !f.failed {
			f.failed = true
			return storage.Transient(errors.New("connection reset"))
		}
		return fn(info)
	})
}

func TestRetryListResumes(t *testing.T) {
	mem := memory.New(nil)
	var want []string
	for i := range 10 {
		name := fmt.Sprintf("o/%02d", i)
		want = append(want, name)
		if err := mem.Put(context.Background(), name, bytes.NewReader(nil), 0, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sl := &fakeSleep{}
	s := wrap.Retry(&flakyList{Storage: mem}, wrap.RetryPolicy{Sleep: sl.sleep})
	var got []string
	if err := s.List(context.Background(), "o/", func(info storage.Info) error {
		got = append(got, info.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) || len(sl.waits) != 1 {
		t.Errorf("List with one failure: got %q after %d retries, want %q after 1", got, len(sl.waits), want)
	}
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	var now time.Time
	clock := func() time.Time { now = now.Add(time.Millisecond); return now }
	m := wrap.Measure(memory.New(nil), clock)
	put := func(name, data string, opts storage.PutOptions) error {
		return m.Put(ctx, name, bytes.NewReader([]byte(data)), int64(len(data)), opts)
	}
	_ = put("a", "hello", storage.PutOptions{})
	_ = put("b", "world!", storage.PutOptions{IfAbsent: true})
	_ = put("a", "again", storage.PutOptions{IfAbsent: true}) // ErrExists, body read
	_ = put("", "x", storage.PutOptions{})                    // invalid name: an error
	rc, _ := m.Get(ctx, "a", 1, 3)
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
	_, _ = m.Get(ctx, "missing", 0, -1)
	_, _ = m.Stat(ctx, "b")
	_ = m.List(ctx, "", func(storage.Info) error { return nil })
	_ = m.Delete(ctx, "b")
	_ = m.Delete(ctx, "b")

	got := m.Stats()
	ms := time.Millisecond
	want := wrap.Stats{
		Put:    wrap.OpStats{Calls: 4, Errors: 1, Exists: 1, Bytes: 5 + 6 + 5, Latency: 4 * ms},
		Get:    wrap.OpStats{Calls: 2, NotFound: 1, Bytes: 3, Latency: 2 * ms},
		Stat:   wrap.OpStats{Calls: 1, Latency: ms},
		List:   wrap.OpStats{Calls: 1, Latency: ms},
		Delete: wrap.OpStats{Calls: 2, NotFound: 1, Latency: 2 * ms},
	}
	if got != want {
		t.Errorf("Stats:\n got %+v\nwant %+v", got, want)
	}
}

func TestFaultsEveryAndOps(t *testing.T) {
	ctx := context.Background()
	f := wrap.Inject(memory.New(nil), wrap.Faults{Every: 3, Ops: wrap.OpStat})
	var failed []int
	for i := range 9 {
		if _, err := f.Stat(ctx, "x"); errors.Is(err, wrap.ErrInjected) {
			failed = append(failed, i)
		}
		if err := f.Put(ctx, "x", bytes.NewReader(nil), 0, storage.PutOptions{}); err != nil {
			t.Fatalf("Put, not chosen for faults: %v", err)
		}
	}
	if want := []int{2, 5, 8}; !slices.Equal(failed, want) || f.Injected() != 3 {
		t.Errorf("failed calls: got %v (%d injected), want %v", failed, f.Injected(), want)
	}
	if !storage.IsTransient(wrap.ErrInjected) {
		t.Errorf("ErrInjected is not transient")
	}
}

func TestFaultsAfterWrite(t *testing.T) {
	ctx := context.Background()
	mem := memory.New(nil)
	f := wrap.Inject(mem, wrap.Faults{Every: 1, Ops: wrap.OpPut, AfterWrite: true})
	err := f.Put(ctx, "x", bytes.NewReader([]byte("data")), 4, storage.PutOptions{})
	if !errors.Is(err, wrap.ErrInjected) {
		t.Fatalf("Put: got %v, want ErrInjected", err)
	}
	if _, err := mem.Stat(ctx, "x"); err != nil {
		t.Errorf("object of a Put that failed after writing: %v, want it stored", err)
	}
}

// TestRetryWithholdsConsumed checks that Retry does not let a store beneath
// report a body consumed that a later attempt reads again: the first Put
// below writes and then fails (a lost response), and the callback
// overwrites the body, so a retry reading it would store the overwritten
// bytes.
func TestRetryWithholdsConsumed(t *testing.T) {
	for _, seekable := range []bool{true, false} {
		mem := memory.New(nil)
		faulty := wrap.Inject(mem, wrap.Faults{Ops: wrap.OpPut, Every: 2, AfterWrite: true})
		sl := &fakeSleep{}
		s := wrap.Retry(faulty, wrap.RetryPolicy{Sleep: sl.sleep, BufferLimit: 64 << 20})
		// The first Put succeeds (call 1), the second fails after writing
		// (call 2) and is retried (call 3).
		if err := s.Put(context.Background(), "warm", bytes.NewReader(nil), 0, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		want := bytes.Repeat([]byte("pack bytes "), 1000)
		body := bytes.Clone(want)
		calls := 0
		opts := storage.PutOptions{Consumed: func() {
			calls++
			for i := range body {
				body[i] = 0
			}
		}}
		var r io.Reader = bytes.NewReader(body)
		if !seekable {
			r = nonSeekable{r}
		}
		if err := s.Put(context.Background(), "obj", r, int64(len(body)), opts); err != nil {
			t.Fatalf("seekable=%v: Put: %v", seekable, err)
		}
		if faulty.Injected() != 1 {
			t.Fatalf("seekable=%v: %d faults injected, want 1", seekable, faulty.Injected())
		}
		rc, err := s.Get(context.Background(), "obj", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("seekable=%v: stored %d bytes (%v), not the body; Consumed called %d times", seekable, len(got), err, calls)
		}
	}
}
