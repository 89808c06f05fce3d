package wrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/coffer-backup/coffer/internal/storage"
)

// Op is a set of storage operations.
type Op uint8

// The operations of storage.Storage.
const (
	OpPut Op = 1 << iota
	OpGet
	OpStat
	OpList
	OpDelete

	AllOps = OpPut | OpGet | OpStat | OpList | OpDelete
)

// ErrInjected is the error Inject returns by default. It is transient.
var ErrInjected = storage.Transient(errors.New("wrap: injected fault"))

// Faults says which calls Inject fails.
type Faults struct {
	// Ops are the operations that may fail; zero means all.
	Ops Op
	// Every fails every Every-th call of those operations (the Every-th,
	// the 2·Every-th, …). Zero: not by count.
	Every int
	// Probability fails each call with this probability, drawn from Rand,
	// which must then be set (seed it, and log the seed).
	Probability float64
	Rand        *rand.Rand
	// AfterWrite makes a failing Put or Delete do its work first and then
	// report the failure, as when a response is lost on the way back.
	AfterWrite bool
	// Err is the error returned; nil means ErrInjected.
	Err error
}

// Faulty is a storage.Storage that fails some calls to another, for tests.
type Faulty struct {
	s storage.Storage
	f Faults

	mu       sync.Mutex // guards calls and f.Rand
	calls    int
	injected atomic.Int64
}

var _ storage.Storage = (*Faulty)(nil)

// Inject returns s with the calls that f chooses failing.
func Inject(s storage.Storage, f Faults) *Faulty {
	if f.Ops == 0 {
		f.Ops = AllOps
	}
	if f.Err == nil {
		f.Err = ErrInjected
	}
	if f.Probability > 0 && f.Rand == nil {
		panic("wrap.Inject: Faults.Probability needs Faults.Rand")
	}
	return &Faulty{s: s, f: f}
}

// Injected returns how many faults were injected so far.
func (f *Faulty) Injected() int64 { return f.injected.Load() }

// fail decides whether this call of op fails, and returns the error if so.
func (f *Faulty) fail(op Op, what string) error {
	if f.f.Ops&op == 0 {
		return nil
	}
	f.mu.Lock()
	f.calls++
	fail := f.f.Every > 0 && f.calls%f.f.Every == 0
	if !fail && f.f.Probability > 0 {
		fail = f.f.Rand.Float64() < f.f.Probability
	}
	f.mu.Unlock()
	if !fail {
		return nil
	}
	f.injected.Add(1)
	return fmt.Errorf("%s: %w", what, f.f.Err)
}

func (f *Faulty) Put(ctx context.Context, name string, r io.Reader, size int64, opts storage.PutOptions) error {
	err := f.fail(OpPut, "put "+name)
	if err == nil {
		return f.s.Put(ctx, name, r, size, opts)
	}
	if f.f.AfterWrite {
		if perr := f.s.Put(ctx, name, r, size, opts); perr != nil {
			return perr
		}
	}
	return err
}

func (f *Faulty) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := f.fail(OpGet, "get "+name); err != nil {
		return nil, err
	}
	return f.s.Get(ctx, name, off, length)
}

func (f *Faulty) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := f.fail(OpStat, "stat "+name); err != nil {
		return storage.Info{}, err
	}
	return f.s.Stat(ctx, name)
}

func (f *Faulty) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := f.fail(OpList, "list "+prefix); err != nil {
		return err
	}
	return f.s.List(ctx, prefix, fn)
}

func (f *Faulty) Delete(ctx context.Context, name string) error {
	err := f.fail(OpDelete, "delete "+name)
	if err == nil {
		return f.s.Delete(ctx, name)
	}
	if f.f.AfterWrite {
		if derr := f.s.Delete(ctx, name); derr != nil {
			return derr
		}
	}
	return err
}
