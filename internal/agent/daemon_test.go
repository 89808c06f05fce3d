package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// simClock is simulated time: Sleep moves it forward at once, stopping at
// the next scheduled event (a policy change, a shutdown), which it fires.
type simClock struct {
	mu     sync.Mutex
	now    time.Time
	events []simEvent
	sleeps int
}

type simEvent struct {
	at time.Time
	do func()
}

func (c *simClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *simClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func (c *simClock) at(t time.Time, do func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, simEvent{t, do})
	slices.SortStableFunc(c.events, func(a, b simEvent) int { return a.at.Compare(b.at) })
}

func (c *simClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps++
	until := c.now.Add(d)
	var fire []func()
	for len(c.events) > 0 && !c.events[0].at.After(until) {
		c.now = c.events[0].at
		fire = append(fire, c.events[0].do)
		c.events = c.events[1:]
		until = c.now // stop at the event: it may change what comes next
	}
	c.now = until
	c.mu.Unlock()
	for _, f := range fire {
		f()
	}
	return ctx.Err()
}

// simRunner records the runs; each takes 20 simulated minutes.
type simRunner struct {
	t     *testing.T
	clock *simClock
	lock  string
	runs  []string
}

func (r *simRunner) Run(ctx context.Context, pol vaultapi.Policy, job vaultapi.Job) vaultapi.Job {
	if l, err := TryLock(r.lock); !errors.Is(err, ErrLocked) {
		r.t.Errorf("a run without the backup lock held (TryLock: %v)", err)
		l.Unlock()
	}
	r.runs = append(r.runs, job.Started.UTC().Format("Mon 01-02 15:04Z")+" "+job.Trigger)
	r.clock.Advance(20 * time.Minute)
	job.Status, job.Point, job.Files, job.Bytes = vaultapi.StatusOK, fmt.Sprintf("p%d", len(r.runs)), 10, 1000
	return job
}

// TestDaemonWeek drives the daemon through a simulated week in
// America/New_York that crosses the spring-forward change (02:30 does not
// exist on 2027-03-14 and runs at 03:00 EDT), a shutdown of a day and a
// half (three missed slots run once, at boot) and a policy change made at
// the vault mid-week (picked up without a restart). It checks the exact
// list of backups, their triggers and the jobs the vault received.
func TestDaemonWeek(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	ny, _ := time.LoadLocation("America/New_York")
	clock := &simClock{now: time.Date(2027, 3, 12, 0, 0, 0, 0, ny)}
	e, err := vault.OpenEmbedded(ctx, filepath.Join(home, "vault"), nil, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	spec := policy.Spec{Schedule: "daily 02:30,14:00", Zone: "America/New_York"}
	if _, err := e.SetPolicy(ctx, "", spec); err != nil { // the vault-wide default
		t.Fatal(err)
	}
	statePath, lockPath := filepath.Join(home, StateName), filepath.Join(home, LockName)
	// The last run before the week: Thursday 14:00 EST.
	if err := SaveState(statePath, State{LastRun: time.Date(2027, 3, 11, 14, 0, 0, 0, ny)}); err != nil {
		t.Fatal(err)
	}
	runner := &simRunner{t: t, clock: clock, lock: lockPath}
	n := 0
	cfg := Config{Vault: e.Machine, Runner: runner, Clock: clock, StatePath: statePath, LockPath: lockPath,
		NewID: func() string { n++; return fmt.Sprintf("job-%03d", n) }}

	// Mid-week, Thursday 08:00 EDT, the operator adds 20:00.
	clock.at(time.Date(2027, 3, 18, 8, 0, 0, 0, ny), func() {
		spec.Schedule = "daily 02:30,14:00,20:00"
		if _, err := e.SetPolicy(ctx, "", spec); err != nil {
			t.Error(err)
		}
	})
	// Boot 1 runs until Tuesday 01:00 EDT (shutdown); boot 2 from
	// Wednesday 10:00 EDT to Friday 12:00Z.
	run := func(until time.Time) {
		t.Helper()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		clock.at(until, cancel)
		if err := Run(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	run(time.Date(2027, 3, 16, 1, 0, 0, 0, ny))
	clock.Advance(time.Date(2027, 3, 17, 10, 0, 0, 0, ny).Sub(clock.Now())) // the machine is off
	run(time.Date(2027, 3, 19, 12, 0, 0, 0, time.UTC))

	want := []string{
		"Fri 03-12 07:30Z schedule", // 02:30 EST
		"Fri 03-12 19:00Z schedule", // 14:00 EST
		"Sat 03-13 07:30Z schedule",
		"Sat 03-13 19:00Z schedule",
		"Sun 03-14 07:00Z schedule", // 02:30 does not exist: 03:00 EDT
		"Sun 03-14 18:00Z schedule", // 14:00 EDT
		"Mon 03-15 06:30Z schedule",
		"Mon 03-15 18:00Z schedule",
		// Off from Tuesday 01:00 EDT to Wednesday 10:00 EDT: three slots
		// missed, one catch-up at boot.
		"Wed 03-17 14:00Z catch-up",
		"Wed 03-17 18:00Z schedule",
		"Thu 03-18 06:30Z schedule",
		"Thu 03-18 18:00Z schedule",
		"Fri 03-19 00:00Z schedule", // 20:00 EDT, added on Thursday
		"Fri 03-19 06:30Z schedule",
	}
	if !slices.Equal(runner.runs, want) {
		t.Fatalf("runs:\n  %s\nwant:\n  %s", strings.Join(runner.runs, "\n  "), strings.Join(want, "\n  "))
	}
	jobs, err := e.Machine.Jobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != len(want) {
		t.Fatalf("the vault has %d jobs, want %d", len(jobs), len(want))
	}
	for i, j := range jobs {
		w := want[len(want)-1-i]
		if j.Status != vaultapi.StatusOK || j.Started.UTC().Format("Mon 01-02 15:04Z")+" "+j.Trigger != w ||
			j.Ended.Sub(j.Started) != 20*time.Minute || j.Files != 10 || j.Point == "" {
			t.Errorf("job %d: %+v, want %s, ok, 20 minutes long", i, j, w)
		}
	}
	st, err := LoadState(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if !st.LastRun.Equal(time.Date(2027, 3, 19, 6, 30, 0, 0, time.UTC)) || st.LastJob == nil || st.PID != 0 ||
		!st.NextRun.Equal(time.Date(2027, 3, 19, 18, 0, 0, 0, time.UTC)) {
		t.Errorf("state after the week: %+v", st)
	}
	t.Logf("%d sleeps for a simulated week", clock.sleeps)
}

// failRunner fails its first n runs.
type failRunner struct {
	clock *simClock
	fail  int
	runs  []time.Time
}

func (r *failRunner) Run(ctx context.Context, pol vaultapi.Policy, job vaultapi.Job) vaultapi.Job {
	r.runs = append(r.runs, job.Started)
	if len(r.runs) <= r.fail {
		job.Status, job.Message = vaultapi.StatusFailed, "vault unreachable"
		return job
	}
	job.Status = vaultapi.StatusOK
	return job
}

// TestDaemonRetries: a failed run is retried after RetryAfter, at most
// Attempts times per slot; a lock held by a manual backup delays the run.
func TestDaemonRetries(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	clock := &simClock{now: time.Date(2027, 6, 1, 1, 0, 0, 0, time.UTC)}
	e, err := vault.OpenEmbedded(ctx, filepath.Join(home, "vault"), nil, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.SetPolicy(ctx, "", policy.Spec{Schedule: "daily 02:00", Zone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	statePath, lockPath := filepath.Join(home, StateName), filepath.Join(home, LockName)
	if err := SaveState(statePath, State{LastRun: time.Date(2027, 5, 31, 2, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	// A manual backup holds the lock from 01:50 to 02:10.
	var manual *Lock
	clock.at(time.Date(2027, 6, 1, 1, 50, 0, 0, time.UTC), func() {
		if manual, err = TryLock(lockPath); err != nil {
			t.Error(err)
		}
	})
	clock.at(time.Date(2027, 6, 1, 2, 10, 0, 0, time.UTC), func() { manual.Unlock() })
	r := &failRunner{clock: clock, fail: 4}
	ctx, cancel := context.WithCancel(ctx)
	clock.at(time.Date(2027, 6, 2, 12, 0, 0, 0, time.UTC), cancel)
	if err := Run(ctx, Config{Vault: e.Machine, Runner: r, Clock: clock, StatePath: statePath, LockPath: lockPath}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, at := range r.runs {
		got = append(got, at.Format("01-02 15:04"))
	}
	// 02:00 finds the lock held and tries again every minute: it starts
	// at 02:10, when the manual backup ends; it fails, is retried twice 15 minutes apart and given up; the next
	// day's first attempt fails, the retry succeeds.
	want := []string{"06-01 02:10", "06-01 02:25", "06-01 02:40", "06-02 02:00", "06-02 02:15"}
	if !slices.Equal(got, want) {
		t.Fatalf("runs %v, want %v", got, want)
	}
	st, _ := LoadState(statePath)
	if !st.LastRun.Equal(time.Date(2027, 6, 2, 2, 15, 0, 0, time.UTC)) {
		t.Errorf("last run %v", st.LastRun)
	}
}
