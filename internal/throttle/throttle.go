// Package throttle limits the bandwidth between the agent and the vault:
// a token-bucket Limiter per direction, a wrapper of vaultapi.Vault that
// makes every pack stored and every pack range read wait for its bytes,
// and Follow, which switches a limiter's rate at the edges of the policy's
// work-hours window on an injected clock.
package throttle

import (
	"context"
	"io"
	"math"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"golang.org/x/time/rate"
)

// Limiter is a bandwidth limit that can change while transfers run. Its
// bucket holds a fiftieth of a second of traffic (4 to 256 KiB) and starts
// empty, so a transfer's rate is the limit from its first byte, and an
// idle limiter lets at most 20 ms of traffic through at once.
type Limiter struct {
	mu  sync.Mutex
	bps int64 // 0: unlimited
	l   *rate.Limiter
}

// NewLimiter returns a limiter of bps bytes per second (0: unlimited).
func NewLimiter(bps int64) *Limiter {
	l := &Limiter{l: rate.NewLimiter(rate.Inf, 1)}
	l.SetRate(bps)
	return l
}

func burstFor(bps int64) int {
	return int(min(max(bps/50, 4<<10), 256<<10))
}

// SetRate changes the limit (0: unlimited); waits in progress follow it.
func (l *Limiter) SetRate(bps int64) {
	if bps < 0 {
		bps = 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if bps == l.bps && bps != 0 {
		return
	}
	l.bps = bps
	now := time.Now()
	if bps == 0 {
		l.l.SetLimitAt(now, rate.Inf)
		return
	}
	b := burstFor(bps)
	if l.l.Limit() == rate.Inf {
		// From unlimited: a new bucket, emptied, so no burst passes free.
		l.l = rate.NewLimiter(rate.Limit(bps), b)
		l.l.ReserveN(now, b)
		return
	}
	l.l.SetLimitAt(now, rate.Limit(bps))
	l.l.SetBurstAt(now, b)
}

// Rate returns the current limit (0: unlimited).
func (l *Limiter) Rate() int64 {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bps
}

// Wait blocks until n bytes may pass (or ctx is done).
func (l *Limiter) Wait(ctx context.Context, n int) error {
	for n > 0 {
		if l.Rate() == 0 {
			return nil
		}
		l.mu.Lock()
		rl := l.l
		l.mu.Unlock()
		k := min(n, rl.Burst())
		if err := rl.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// Spend lets n bytes pass while do runs: it reserves their time, runs do,
// then waits for what is left of the reservation. The transfer's own
// duration (a pack's upload) thus counts towards the limit instead of
// adding to it. If do fails or ctx ends, the unused reservation is
// returned.
func (l *Limiter) Spend(ctx context.Context, n int, do func() error) error {
	if l.Rate() == 0 || n <= 0 {
		return do()
	}
	l.mu.Lock()
	rl := l.l
	l.mu.Unlock()
	now := time.Now()
	var rs []*rate.Reservation
	var delay time.Duration
	for left := n; left > 0; {
		k := min(left, rl.Burst())
		r := rl.ReserveN(now, k)
		if !r.OK() {
			break // the limit changed meanwhile; let the rest pass
		}
		rs = append(rs, r)
		delay = r.DelayFrom(now)
		left -= k
	}
	cancel := func() {
		for i := len(rs) - 1; i >= 0; i-- {
			rs[i].Cancel()
		}
	}
	if err := do(); err != nil {
		cancel()
		return err
	}
	wait := delay - time.Since(now)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Clock is the time Follow goes by (agent.RealClock, or a test's).
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// Follow sets the rate that the throttle has in force now, and again at
// each of its changes (the work-hours window's edges), until ctx is done.
// set is called with each rate (usually a Limiter's SetRate).
func Follow(ctx context.Context, clk Clock, t policy.Throttle, set func(int64)) {
	for {
		now := clk.Now()
		set(policy.RateAt(t, now))
		next := t.NextChange(now)
		if next.IsZero() {
			return
		}
		// Sleep at most a minute at a time, so that a clock jump (suspend,
		// a changed system time) is noticed.
		d := min(next.Sub(now), time.Minute)
		if err := clk.Sleep(ctx, max(d, time.Millisecond)); err != nil {
			return
		}
	}
}

// limited limits the bytes of a vault's packs.
type limited struct {
	vaultapi.Vault
	up, down *Limiter
}

// Vault returns v with uploads (StorePack's pack bytes and Commit's
// reference lists) limited by up and downloads (ReadPack's bytes) by down;
// a nil limiter does not limit.
func Vault(v vaultapi.Vault, up, down *Limiter) vaultapi.Vault {
	if up == nil && down == nil {
		return v
	}
	return &limited{Vault: v, up: up, down: down}
}

func (v *limited) StorePack(ctx context.Context, session string, p vaultapi.Pack) error {
	if v.up == nil {
		return v.Vault.StorePack(ctx, session, p)
	}
	return v.up.Spend(ctx, len(p.Data), func() error { return v.Vault.StorePack(ctx, session, p) })
}

func (v *limited) Commit(ctx context.Context, session string, c vaultapi.Commit) (pt vaultapi.Point, err error) {
	if v.up == nil {
		return v.Vault.Commit(ctx, session, c)
	}
	err = v.up.Spend(ctx, 32*len(c.Refs), func() error {
		pt, err = v.Vault.Commit(ctx, session, c)
		return err
	})
	return pt, err
}

func (v *limited) ReadPack(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	rc, err := v.Vault.ReadPack(ctx, name, off, length)
	if err != nil || v.down == nil {
		return rc, err
	}
	return &reader{ctx: ctx, rc: rc, l: v.down}, nil
}

// reader waits for each read's bytes.
type reader struct {
	ctx context.Context
	rc  io.ReadCloser
	l   *Limiter
}

func (r *reader) Read(p []byte) (int, error) {
	if bps := r.l.Rate(); bps != 0 {
		p = p[:min(len(p), burstFor(bps), math.MaxInt32)]
	}
	n, err := r.rc.Read(p)
	if n > 0 {
		if werr := r.l.Wait(r.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

func (r *reader) Close() error { return r.rc.Close() }
