package wrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/internal/sized"
)

// RetryPolicy says how Retry retries. The zero value is a sensible policy.
type RetryPolicy struct {
	// Attempts is the number of tries per operation, the first included.
	// Zero means 5.
	Attempts int
	// Base is the backoff before the first retry; it doubles for each
	// further retry, up to Max. Zero means 200ms and 10s. The wait is
	// jittered: half of the backoff plus a random part of the other half.
	Base, Max time.Duration
	// BufferLimit: a Put body that is not an io.Seeker and has at most
	// this many bytes is read into memory first, so that a retry can send
	// it again; a larger one is tried once. Seekable bodies (files,
	// bytes.Reader) are rewound instead. Zero means 32 MiB.
	BufferLimit int64
	// Sleep waits d or until ctx is done. Nil means a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a number in [0, 1); it is called concurrently. Nil
	// means math/rand/v2.
	Jitter func() float64
	// IsTransient says which errors are retried. Nil means
	// storage.IsTransient. ErrNotFound, ErrExists and context errors are
	// never retried, whatever it says.
	IsTransient func(error) bool
	// OnRetry, if set, is told of each retry before its wait (for logs).
	OnRetry func(op, name string, attempt int, err error, wait time.Duration)
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 5
	}
	if p.Base <= 0 {
		p.Base = 200 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 10 * time.Second
	}
	if p.BufferLimit <= 0 {
		p.BufferLimit = 32 << 20
	}
	if p.Sleep == nil {
		p.Sleep = sleep
	}
	if p.Jitter == nil {
		p.Jitter = rand.Float64
	}
	if p.IsTransient == nil {
		p.IsTransient = storage.IsTransient
	}
	return p
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Backoff returns the wait before retry number n (1 for the first retry),
// for a jitter value j in [0, 1).
func (p RetryPolicy) Backoff(n int, j float64) time.Duration {
	p = p.withDefaults()
	d := p.Max
	if n-1 < 32 && p.Base<<(n-1) < p.Max && p.Base<<(n-1) > 0 {
		d = p.Base << (n - 1)
	}
	return d/2 + time.Duration(j*float64(d/2))
}

// Retry returns s with transient failures retried under policy p.
//
// What is retried: Put (see BufferLimit for its body), Stat, Delete, the
// opening of a Get (not a read that fails later), and List, which resumes
// after the last name it passed to fn. Errors of List's fn are returned at
// once. Two consequences of retrying requests whose answer was lost: a Put
// with IfAbsent may report ErrExists for an object that its own earlier
// try wrote (content-named objects can take ErrExists as success), and a
// Delete reports success when a retry finds the object already gone.
func Retry(s storage.Storage, p RetryPolicy) storage.Storage {
	return &retrying{s: s, p: p.withDefaults()}
}

type retrying struct {
	s storage.Storage
	p RetryPolicy
}

// do runs try until it succeeds, fails permanently, or runs out of
// attempts. try gets the attempt number, from 1.
func (r *retrying) do(ctx context.Context, op, name string, attempts int, try func(attempt int) error) error {
	for attempt := 1; ; attempt++ {
		err := try(attempt)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			return fmt.Errorf("%w (%w)", cerr, err)
		}
		if attempt >= attempts || !r.retryable(err) || ctx.Err() != nil {
			if attempt > 1 {
				return fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return err
		}
		wait := r.p.Backoff(attempt, r.p.Jitter())
		if r.p.OnRetry != nil {
			r.p.OnRetry(op, name, attempt, err, wait)
		}
		if serr := r.p.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (retry interrupted: %w)", err, serr)
		}
	}
}

func (r *retrying) retryable(err error) bool {
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrExists) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return r.p.IsTransient(err)
}

func (r *retrying) Put(ctx context.Context, name string, body io.Reader, size int64, opts storage.PutOptions) error {
	attempts, rewind := r.p.Attempts, func() (io.Reader, error) { return body, nil }
	if sk, ok := body.(io.Seeker); ok {
		start, err := sk.Seek(0, io.SeekCurrent)
		if err == nil {
			rewind = func() (io.Reader, error) {
				_, err := sk.Seek(start, io.SeekStart)
				return body, err
			}
		} else {
			attempts = 1
		}
	} else if size >= 0 && size <= r.p.BufferLimit {
		buf, err := io.ReadAll(sized.Reader(ctx, body, size))
		if err != nil {
			return fmt.Errorf("retry: put %s: %w", name, err)
		}
		rewind = func() (io.Reader, error) { return bytes.NewReader(buf), nil }
	} else {
		attempts = 1
	}
	if attempts > 1 {
		// A later attempt reads the body (or buf) again.
		opts.Consumed = nil
	}
	return r.do(ctx, "put", name, attempts, func(int) error {
		b, err := rewind()
		if err != nil {
			return fmt.Errorf("retry: put %s: rewind body: %w", name, err)
		}
		return r.s.Put(ctx, name, b, size, opts)
	})
}

func (r *retrying) Get(ctx context.Context, name string, off, length int64) (rc io.ReadCloser, err error) {
	err = r.do(ctx, "get", name, r.p.Attempts, func(int) error {
		rc, err = r.s.Get(ctx, name, off, length)
		return err
	})
	return rc, err
}

func (r *retrying) Stat(ctx context.Context, name string) (info storage.Info, err error) {
	err = r.do(ctx, "stat", name, r.p.Attempts, func(int) error {
		info, err = r.s.Stat(ctx, name)
		return err
	})
	return info, err
}

func (r *retrying) Delete(ctx context.Context, name string) error {
	failed := false
	return r.do(ctx, "delete", name, r.p.Attempts, func(int) error {
		err := r.s.Delete(ctx, name)
		if failed && errors.Is(err, storage.ErrNotFound) {
			return nil // an earlier try deleted it, and its answer was lost
		}
		failed = err != nil
		return err
	})
}

// fnFailed carries an error of List's fn through do, which must not retry
// it.
type fnFailed struct{ err error }

func (e fnFailed) Error() string { return e.err.Error() }

func (r *retrying) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	var last string
	seen := false
	err := r.do(ctx, "list", prefix, r.p.Attempts, func(int) error {
		err := r.s.List(ctx, prefix, func(info storage.Info) error {
			if seen && info.Name <= last {
				return nil // passed to fn by an earlier try
			}
			if err := fn(info); err != nil {
				return fnFailed{err}
			}
			last, seen = info.Name, true
			return nil
		})
		var ff fnFailed
		if errors.As(err, &ff) {
			return ff
		}
		return err
	})
	var ff fnFailed
	if errors.As(err, &ff) {
		return ff.err
	}
	return err
}
