package wrap

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/coffer-backup/coffer/internal/storage"
)

// OpStats are the counters of one operation.
type OpStats struct {
	Calls    int64
	Errors   int64 // failed calls, ErrNotFound and ErrExists not counted
	NotFound int64 // calls that returned ErrNotFound
	Exists   int64 // Puts that returned ErrExists
	// Bytes: for Put, bytes read from bodies; for Get, bytes the callers
	// read from the returned readers.
	Bytes int64
	// Latency is the total time spent in calls (for Get, until the reader
	// is returned; for List, the whole listing, fn included).
	Latency time.Duration
}

// Stats is a snapshot of the counters of a Measured store.
type Stats struct {
	Put, Get, Stat, List, Delete OpStats
}

type opCounters struct {
	calls, errors, notFound, exists, bytes, latency atomic.Int64
}

func (c *opCounters) snapshot() OpStats {
	return OpStats{
		Calls: c.calls.Load(), Errors: c.errors.Load(), NotFound: c.notFound.Load(),
		Exists: c.exists.Load(), Bytes: c.bytes.Load(), Latency: time.Duration(c.latency.Load()),
	}
}

// Measured is a storage.Storage that counts the calls to another.
type Measured struct {
	s   storage.Storage
	now func() time.Time

	put, get, stat, list, del opCounters
}

var _ storage.Storage = (*Measured)(nil)

// Measure returns s with its calls counted. now is the clock latencies are
// measured with; nil means time.Now.
func Measure(s storage.Storage, now func() time.Time) *Measured {
	if now == nil {
		now = time.Now
	}
	return &Measured{s: s, now: now}
}

// Stats returns the counters so far.
func (m *Measured) Stats() Stats {
	return Stats{
		Put: m.put.snapshot(), Get: m.get.snapshot(), Stat: m.stat.snapshot(),
		List: m.list.snapshot(), Delete: m.del.snapshot(),
	}
}

// done records a call that started at start and ended with err.
func (m *Measured) done(c *opCounters, start time.Time, err error) {
	c.calls.Add(1)
	c.latency.Add(int64(m.now().Sub(start)))
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrNotFound):
		c.notFound.Add(1)
	case errors.Is(err, storage.ErrExists):
		c.exists.Add(1)
	default:
		c.errors.Add(1)
	}
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// seekingCounter keeps the body seekable, so that a Retry beneath still
// rewinds instead of buffering.
type seekingCounter struct {
	countingReader
	io.Seeker
}

func (m *Measured) Put(ctx context.Context, name string, r io.Reader, size int64, opts storage.PutOptions) error {
	start := m.now()
	var body io.Reader = countingReader{r, &m.put.bytes}
	if sk, ok := r.(io.Seeker); ok {
		body = seekingCounter{countingReader{r, &m.put.bytes}, sk}
	}
	err := m.s.Put(ctx, name, body, size, opts)
	m.done(&m.put, start, err)
	return err
}

type countingReadCloser struct {
	countingReader
	io.Closer
}

func (m *Measured) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	start := m.now()
	rc, err := m.s.Get(ctx, name, off, length)
	m.done(&m.get, start, err)
	if err != nil {
		return nil, err
	}
	return countingReadCloser{countingReader{rc, &m.get.bytes}, rc}, nil
}

func (m *Measured) Stat(ctx context.Context, name string) (storage.Info, error) {
	start := m.now()
	info, err := m.s.Stat(ctx, name)
	m.done(&m.stat, start, err)
	return info, err
}

func (m *Measured) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	start := m.now()
	err := m.s.List(ctx, prefix, fn)
	m.done(&m.list, start, err)
	return err
}

func (m *Measured) Delete(ctx context.Context, name string) error {
	start := m.now()
	err := m.s.Delete(ctx, name)
	m.done(&m.del, start, err)
	return err
}
