package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Clock is the daemon's time: the real one, or a test's simulated one.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done (then it returns ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the system clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Runner runs one backup under a policy. It returns the job filled in:
// Status (StatusOK, StatusPartial or StatusFailed), Ended, Point, the
// figures and a Message for a failure. It must not report the job; the
// daemon does.
type Runner interface {
	Run(ctx context.Context, pol vaultapi.Policy, job vaultapi.Job) vaultapi.Job
}

// Config is a daemon's parts.
type Config struct {
	Vault     vaultapi.Vault // reads the policy, takes the job reports
	Runner    Runner
	Clock     Clock  // default RealClock
	StatePath string // the state file (StateName in the agent's home)
	LockPath  string // the backup lock (LockName in the agent's home)

	// PolicyEvery is how often the policy is read again while idle
	// (default one minute); it also bounds every sleep, so a clock that
	// jumps (suspend, a changed system time) is noticed within it.
	PolicyEvery time.Duration
	// RetryAfter is the wait before a failed run is tried again (default
	// 15 minutes); a slot is tried at most Attempts times (default 3).
	RetryAfter time.Duration
	Attempts   int
	// CatchUpAfter: a run starting this long after its slot is reported as
	// a catch-up (default 5 minutes).
	CatchUpAfter time.Duration

	Log   *slog.Logger
	NewID func() string // job IDs; default random
	// OnPolicy, if set, is called with each policy read that differs from
	// the previous one.
	OnPolicy func(vaultapi.Policy)
}

func (c *Config) defaults() {
	if c.Clock == nil {
		c.Clock = RealClock{}
	}
	if c.PolicyEvery <= 0 {
		c.PolicyEvery = time.Minute
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 15 * time.Minute
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.CatchUpAfter <= 0 {
		c.CatchUpAfter = 5 * time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.NewID == nil {
		c.NewID = func() string {
			b := make([]byte, 12)
			_, _ = rand.Read(b)
			return hex.EncodeToString(b)
		}
	}
}

// daemon is one run of the loop.
type daemon struct {
	cfg      Config
	state    State
	pol      vaultapi.Policy
	compiled policy.Compiled
	havePol  bool
	polRead  time.Time
	failures int       // failed attempts at the current slot
	retryAt  time.Time // not before this after a failure
}

// Run runs the daemon until ctx is done (and then returns nil).
func Run(ctx context.Context, cfg Config) error {
	cfg.defaults()
	d := &daemon{cfg: cfg}
	st, err := LoadState(cfg.StatePath)
	if err != nil {
		cfg.Log.Warn("agent state unreadable; starting afresh", "err", err)
	}
	d.state = st
	d.state.PID = os.Getpid()
	cfg.Log.Info("agent started", "last_run", st.LastRun)
	for ctx.Err() == nil {
		if err := d.step(ctx); err != nil && ctx.Err() == nil {
			cfg.Log.Warn("agent", "err", err)
		}
	}
	d.state.PID = 0
	d.save()
	cfg.Log.Info("agent stopped")
	return nil
}

func (d *daemon) save() {
	d.state.Updated = d.cfg.Clock.Now()
	if d.cfg.StatePath == "" {
		return
	}
	if err := SaveState(d.cfg.StatePath, d.state); err != nil {
		d.cfg.Log.Warn("save agent state", "err", err)
	}
}

func (d *daemon) problem(p string) {
	if d.state.Problem != p {
		d.state.Problem = p
		d.save()
	}
}

// readPolicy reads the policy from the vault; on failure the last one read
// stays in force.
func (d *daemon) readPolicy(ctx context.Context) error {
	p, err := d.cfg.Vault.Policy(ctx)
	d.polRead = d.cfg.Clock.Now()
	if err != nil {
		return fmt.Errorf("read the policy from the vault: %w", err)
	}
	c, err := p.Spec.Compile()
	if err != nil {
		return fmt.Errorf("the vault's policy: %w", err)
	}
	changed := !d.havePol || !p.Updated.Equal(d.pol.Updated) || p.Source != d.pol.Source
	d.pol, d.compiled, d.havePol = p, c, true
	if changed {
		d.cfg.Log.Info("policy", "source", p.Source, "schedule", p.Schedule, "zone", p.Zone)
		if d.cfg.OnPolicy != nil {
			d.cfg.OnPolicy(p)
		}
	}
	return nil
}

// step does one turn of the loop: refresh the policy when due, run a
// backup when due, else sleep until the next thing to do.
func (d *daemon) step(ctx context.Context) error {
	clk := d.cfg.Clock
	now := clk.Now()
	if !d.havePol || now.Sub(d.polRead) >= d.cfg.PolicyEvery || now.Before(d.polRead) {
		if err := d.readPolicy(ctx); err != nil {
			d.problem(err.Error())
			if !d.havePol {
				return errors.Join(err, clk.Sleep(ctx, d.cfg.PolicyEvery))
			}
		} else if d.state.Problem != "" {
			d.problem("")
		}
	}
	sched := d.compiled.Schedule
	if policy.Due(sched, d.state.LastRun, now) && !now.Before(d.retryAt) {
		// Read the policy again just before a run: it may have changed.
		if err := d.readPolicy(ctx); err == nil {
			sched = d.compiled.Schedule
		}
		if policy.Due(sched, d.state.LastRun, now) {
			return d.run(ctx, now)
		}
	}
	next := policy.NextRun(sched, d.state.LastRun, now)
	if now.Before(d.retryAt) && (next.IsZero() || next.After(d.retryAt) || !next.After(now)) {
		next = d.retryAt
	}
	if !next.Equal(d.state.NextRun) {
		d.state.NextRun = next
		d.save()
	}
	wait := d.cfg.PolicyEvery - now.Sub(d.polRead)
	if !next.IsZero() && next.Sub(now) < wait {
		wait = next.Sub(now)
	}
	if wait <= 0 {
		wait = time.Millisecond
	}
	return clk.Sleep(ctx, wait)
}

// run runs one backup now, under the lock, and reports it.
func (d *daemon) run(ctx context.Context, now time.Time) error {
	sched := d.compiled.Schedule
	trigger := vaultapi.TriggerSchedule
	if !d.state.LastRun.IsZero() {
		if slot := sched.Next(d.state.LastRun); now.Sub(slot) > d.cfg.CatchUpAfter {
			trigger = vaultapi.TriggerCatchUp
		}
	} else {
		trigger = vaultapi.TriggerCatchUp // never ran: the first run is a catch-up
	}
	lock, err := TryLock(d.cfg.LockPath)
	if err != nil {
		d.problem(err.Error())
		d.retryAt = now.Add(d.cfg.PolicyEvery)
		return err
	}
	defer lock.Unlock()
	job := vaultapi.Job{ID: d.cfg.NewID(), Trigger: trigger, Status: vaultapi.StatusRunning, Started: now}
	d.report(ctx, job)
	d.cfg.Log.Info("backup started", "job", job.ID, "trigger", trigger)
	res := d.cfg.Runner.Run(ctx, d.pol, job)
	res.ID, res.Trigger, res.Started = job.ID, job.Trigger, job.Started
	if res.Ended.IsZero() {
		res.Ended = d.cfg.Clock.Now()
	}
	if res.Status == "" || res.Status == vaultapi.StatusRunning {
		res.Status = vaultapi.StatusFailed
	}
	if len(res.Message) > vaultapi.MaxJobMessage {
		res.Message = res.Message[:vaultapi.MaxJobMessage]
	}
	d.report(ctx, res)
	d.cfg.Log.Info("backup ended", "job", res.ID, "status", res.Status, "point", res.Point, "files", res.Files,
		"bytes", res.Bytes, "errors", res.Errors, "message", res.Message)
	d.state.LastJob = &res
	if res.Status == vaultapi.StatusFailed && ctx.Err() == nil {
		d.failures++
		if d.failures < d.cfg.Attempts {
			d.retryAt = d.cfg.Clock.Now().Add(d.cfg.RetryAfter)
			d.save()
			return nil
		}
	}
	if ctx.Err() != nil {
		d.save()
		return nil // interrupted: due again at the next start
	}
	d.failures, d.retryAt = 0, time.Time{}
	d.state.LastRun = now
	d.save()
	return nil
}

// report sends a job report; a vault that cannot be reached does not stop
// the daemon (the job is still in the state file).
func (d *daemon) report(ctx context.Context, j vaultapi.Job) {
	if err := d.cfg.Vault.ReportJob(context.WithoutCancel(ctx), j); err != nil {
		d.cfg.Log.Warn("report job to the vault", "job", j.ID, "err", err)
	}
}
