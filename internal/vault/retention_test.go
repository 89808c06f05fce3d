package vault_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultapi/vaulttest"
)

// commitAt commits a one-blob point on the embedded vault's machine.
func commitAt(t *testing.T, e *vault.Embedded, n int, onDemand bool) vaultapi.Point {
	t.Helper()
	ctx := context.Background()
	w := pack.NewWriter(nil)
	id := vaultapi.ID{byte(n), byte(n >> 8), byte(n >> 16), 0xAB}
	w.Add(vaultapi.KindInfo, id, []byte("manifest"))
	pk := w.Finish()
	s, err := e.Machine.BeginBackup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Machine.StorePack(ctx, s.ID, pk); err != nil {
		t.Fatal(err)
	}
	p, err := e.Machine.Commit(ctx, s.ID, vaultapi.Commit{Info: id, Refs: []vaultapi.ID{id}, OnDemand: onDemand})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRetentionMatchesPreview: retention run by the vault soft-deletes
// exactly the points the preview (policy.Apply, which `coffer policy
// retention-preview` prints) says, after every commit of 120 days of
// scheduled and on-demand backups in Europe/Berlin that cross both DST
// changes, a year end and a week with the machine off; points deleted 14
// days ago are purged, the others listed as deleted.
func TestRetentionMatchesPreview(t *testing.T) {
	ctx := context.Background()
	clock := vaulttest.NewClock(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))
	e, err := vault.OpenEmbedded(ctx, t.TempDir(), nil, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	info, _ := e.Machine.Info(ctx)
	spec := policy.Spec{Schedule: "daily 02:00", Zone: "Europe/Berlin", Retention: policy.RetentionSpec{
		KeepLast: 3, Daily: 7, Weekly: 4, Monthly: 3, Yearly: 2, OnDemandDays: 5}}
	if _, err := e.SetPolicy(ctx, info.MachineID, spec); err != nil {
		t.Fatal(err)
	}
	c, err := spec.Compile()
	if err != nil {
		t.Fatal(err)
	}
	sched := c.Schedule
	var all []policy.Point
	goneAt := map[string]time.Time{} // when the preview first stopped keeping a point
	now := clock.Now()
	for n := 0; n < 130; n++ {
		next := sched.Next(now)
		if d := next.Sub(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); d > 0 && d < 7*24*time.Hour {
			clock.Advance(next.Sub(now)) // the machine is off this week
			now = clock.Now()
			continue
		}
		onDemand := n%9 == 4
		if onDemand { // a backup by hand in the afternoon instead
			next = next.Add(13*time.Hour + 17*time.Minute)
		}
		clock.Advance(next.Sub(now))
		now = clock.Now()
		p := commitAt(t, e, n, onDemand)
		all = append(all, policy.Point{ID: p.ID, Time: p.Time, OnDemand: onDemand})

		var kept, deleted []string
		for _, d := range policy.Apply(c.Retention, all, now) {
			if d.Keep {
				kept = append(kept, d.ID)
				continue
			}
			if _, ok := goneAt[d.ID]; !ok {
				goneAt[d.ID] = now
			}
			if now.Sub(goneAt[d.ID]) < vaultapi.DeleteGrace {
				deleted = append(deleted, d.ID)
			}
		}
		live, err := e.Machine.Points(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gotDel, err := e.Machine.DeletedPoints(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := sortedPointIDs(live); !slices.Equal(got, sorted(kept)) {
			t.Fatalf("%v: the vault keeps %v, the preview %v", now, got, sorted(kept))
		}
		if got := sortedPointIDs(gotDel); !slices.Equal(got, sorted(deleted)) {
			t.Fatalf("%v: the vault lists deleted %v, want %v", now, got, sorted(deleted))
		}
		for _, p := range gotDel {
			if !p.Deleted.Equal(goneAt[p.ID]) {
				t.Fatalf("point %s deleted at %v, want %v", p.ID, p.Deleted, goneAt[p.ID])
			}
		}
	}
	purged := 0
	for _, at := range goneAt {
		if now.Sub(at) >= vaultapi.DeleteGrace {
			purged++
		}
	}
	if len(all) < 100 || purged < 50 {
		t.Fatalf("only %d points made and %d purged", len(all), purged)
	}
}

func sortedPointIDs(ps []vaultapi.Point) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return sorted(out)
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
