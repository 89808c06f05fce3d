package throttle

import (
	"context"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func randomPack(r *rand.Rand, size int) vaultapi.Pack {
	w := pack.NewWriter(nil)
	for size > 0 {
		n := min(size, 256<<10)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		var id vaultapi.ID
		for i := range id {
			id[i] = byte(r.Uint32())
		}
		w.Add(vaultapi.KindData, id, b)
		size -= n
	}
	return w.Finish()
}

// wantRate checks that n bytes in d are within 10 % of bps.
func wantRate(t *testing.T, what string, n int64, d time.Duration, bps int64) {
	t.Helper()
	got := float64(n) / d.Seconds()
	t.Logf("%s: %d bytes in %v: %.0f B/s, limit %d B/s", what, n, d, got, bps)
	if got < 0.9*float64(bps) || got > 1.1*float64(bps) {
		t.Errorf("%s: measured %.0f B/s, want within 10%% of %d B/s", what, got, bps)
	}
}

// TestThrottledTransfer stores 4 MiB of packs and reads 3 MiB back through
// an embedded vault limited to 4 MiB/s each way; the measured rates stay
// within 10 % of the limit.
func TestThrottledTransfer(t *testing.T) {
	ctx := context.Background()
	e, err := vault.OpenEmbedded(ctx, filepath.Join(t.TempDir(), "vault"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const bps = 4 << 20
	up, down := NewLimiter(bps), NewLimiter(bps)
	v := Vault(e.Machine, up, down)
	r := rand.New(rand.NewPCG(1, 2))
	var packs []vaultapi.Pack
	var total int64
	for range 4 {
		p := randomPack(r, 1<<20-200)
		packs = append(packs, p)
		total += int64(len(p.Data))
	}
	s, err := v.BeginBackup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, p := range packs {
		if err := v.StorePack(ctx, s.ID, p); err != nil {
			t.Fatal(err)
		}
	}
	wantRate(t, "upload", total, time.Since(start), bps)

	start = time.Now()
	var read int64
	for _, p := range packs[:3] {
		rc, err := v.ReadPack(ctx, p.Name, 0, int64(len(p.Data)))
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != int64(len(p.Data)) {
			t.Fatalf("read %d of %d bytes: %v", n, len(p.Data), err)
		}
		read += n
	}
	wantRate(t, "download", read, time.Since(start), bps)

	// Unlimited: no wait.
	up.SetRate(0)
	start = time.Now()
	if err := up.Wait(ctx, 100<<20); err != nil || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("unlimited wait took %v (%v)", time.Since(start), err)
	}
}

// TestLiveSwitch halves the rate in the middle of a transfer: the second
// half goes at the new rate.
func TestLiveSwitch(t *testing.T) {
	ctx := context.Background()
	l := NewLimiter(8 << 20)
	start := time.Now()
	if err := l.Wait(ctx, 2<<20); err != nil { // 0.25 s
		t.Fatal(err)
	}
	wantRate(t, "before the switch", 2<<20, time.Since(start), 8<<20)
	l.SetRate(2 << 20)
	start = time.Now()
	if err := l.Wait(ctx, 1<<20); err != nil { // 0.5 s
		t.Fatal(err)
	}
	wantRate(t, "after the switch", 1<<20, time.Since(start), 2<<20)
}

// simClock jumps forward on Sleep.
type simClock struct{ now time.Time }

func (c *simClock) Now() time.Time { return c.now }
func (c *simClock) Sleep(ctx context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	return ctx.Err()
}

// TestFollow switches the rate at the work-hours window's edges, on the
// injected clock, across a weekend and the autumn DST change.
func TestFollow(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	w, err := policy.ParseWindow("mon-fri 09:00-18:00")
	if err != nil {
		t.Fatal(err)
	}
	th := policy.Throttle{Window: w.In(berlin), InWindow: 1 << 20, Outside: 0}
	clk := &simClock{now: time.Date(2027, 10, 29, 8, 0, 0, 0, berlin)} // Friday
	ctx, cancel := context.WithCancel(context.Background())
	type change struct {
		at   string
		rate int64
	}
	var got []change
	last := int64(-1)
	end := time.Date(2027, 11, 1, 12, 0, 0, 0, berlin) // Monday, after the change to CET
	Follow(ctx, clk, th, func(r int64) {
		if r != last {
			got = append(got, change{clk.Now().In(berlin).Format("Mon 15:04 MST"), r})
			last = r
		}
		if !clk.Now().Before(end) {
			cancel()
		}
	})
	want := []change{{"Fri 08:00 CEST", 0}, {"Fri 09:00 CEST", 1 << 20}, {"Fri 18:00 CEST", 0}, {"Mon 09:00 CET", 1 << 20}}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("changes %v, want %v", got, want)
		}
	}
}
