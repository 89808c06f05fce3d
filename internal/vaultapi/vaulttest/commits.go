package vaulttest

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// wantStamped checks that a point's time is the vault's clock now (to the
// millisecond: a store may keep less than nanoseconds).
func (f *fixture) wantStamped(p vaultapi.Point) {
	f.t.Helper()
	now := f.Now()
	if d := now.Sub(p.Time); d < 0 || d >= time.Millisecond {
		f.t.Fatalf("point time %v, want the vault's clock %v (the agent's clock says %v)", p.Time, now, time.Now())
	}
}

func testCommit(f *fixture) {
	info, err := f.A.Info(f.ctx)
	if err != nil {
		f.t.Fatalf("Info: %v", err)
	}
	s := f.begin(f.A)
	data := f.pack(vaultapi.KindData, 20, 1000)
	tree := f.pack(vaultapi.KindTree, 3, 200)
	manifest := f.pack(vaultapi.KindInfo, 1, 100)
	for _, p := range []vaultapi.Pack{data, tree, manifest} {
		f.store(f.A, s.ID, p)
	}
	refs := append(append(packIDs(data), packIDs(tree)...), packIDs(manifest)...)
	f.r.Shuffle(len(refs), func(i, j int) { refs[i], refs[j] = refs[j], refs[i] })
	stats := vaultapi.Stats{Files: 17, Dirs: 3, Bytes: 1 << 40, BytesRead: 12345, BytesAdded: 999,
		Blobs: uint64(len(refs)), Errors: 2, DurationMS: 4321}
	c := vaultapi.Commit{Info: manifest.Entries[0].ID, Stats: stats, Refs: refs}
	p, err := f.A.Commit(f.ctx, s.ID, c)
	if err != nil {
		f.t.Fatalf("Commit: %v", err)
	}
	if p.ID == "" || p.Machine != info.MachineID || p.Info != c.Info || p.Stats != stats {
		f.t.Fatalf("Commit: got point %+v, want an ID, machine %q, info %s, stats %+v", p, info.MachineID, c.Info.Short(), stats)
	}
	f.wantStamped(p)
	got, err := f.A.Point(f.ctx, p.ID)
	if err != nil {
		f.t.Fatalf("Point(%q): %v", p.ID, err)
	}
	if !samePoint(got, p) {
		f.t.Fatalf("Point(%q): got %+v, want %+v", p.ID, got, p)
	}
	f.wantPoints(f.A, p)

	// The next point, an hour later by the vault's clock.
	f.Advance(time.Hour)
	s2 := f.begin(f.A)
	p2 := f.commit(f.A, s2.ID, c.Info, refs)
	f.wantStamped(p2)
	if p2.ID == p.ID || p2.Time.Sub(p.Time) != time.Hour {
		f.t.Fatalf("second point %+v: want a new ID and a time an hour after %v", p2, p.Time)
	}
}

func testCommitMissing(f *fixture) {
	s := f.begin(f.A)
	data := f.pack(vaultapi.KindData, 30, 500)
	manifest := f.pack(vaultapi.KindInfo, 1, 100)
	f.store(f.A, s.ID, data)
	f.store(f.A, s.ID, manifest)
	missing := f.ids(5)
	refs := append(packIDs(data), packIDs(manifest)...)
	for i, id := range missing {
		refs = slices.Insert(refs, i*7, id)
	}
	_, err := f.A.Commit(f.ctx, s.ID, vaultapi.Commit{Info: manifest.Entries[0].ID, Refs: refs})
	f.wantMissing("Commit with missing blobs", err, missing)
	f.wantPoints(f.A)

	// A manifest that is not stored is missing too.
	unstored := f.id()
	_, err = f.A.Commit(f.ctx, s.ID, vaultapi.Commit{Info: unstored, Refs: append(packIDs(data), unstored)})
	f.wantMissing("Commit with a missing manifest", err, []vaultapi.ID{unstored})
	f.wantPoints(f.A)

	// The session is still open: the agent uploads what is missing and
	// commits again.
	f.store(f.A, s.ID, f.packOf(vaultapi.KindData, missing))
	p := f.commit(f.A, s.ID, manifest.Entries[0].ID, refs)
	f.wantPoints(f.A, p)
}

func testCommitWithoutInfo(f *fixture) {
	s := f.begin(f.A)
	data := f.pack(vaultapi.KindData, 5, 100)
	f.store(f.A, s.ID, data)
	_, err := f.A.Commit(f.ctx, s.ID, vaultapi.Commit{Refs: packIDs(data)})
	f.wantErr("Commit without a manifest", err, vaultapi.ErrBadRequest)
	f.wantPoints(f.A)
	// The session is still open.
	f.commit(f.A, s.ID, data.Entries[0].ID, packIDs(data))
}

func testPoints(f *fixture) {
	f.wantPoints(f.A)
	_, err := f.A.Point(f.ctx, "no-such-point")
	f.wantErr("Point(unknown)", err, vaultapi.ErrNotFound)
	_, err = f.A.Point(f.ctx, "")
	f.wantErr("Point(\"\")", err, vaultapi.ErrNotFound)

	var want []vaultapi.Point
	for i := range 6 {
		p := f.backup(f.A, f.pack(vaultapi.KindData, 3, 100), f.pack(vaultapi.KindInfo, 1, 50))
		want = append(want, p)
		f.Advance(time.Duration(i+1) * 17 * time.Minute)
	}
	f.wantPoints(f.A, want...)
	for i := 1; i < len(want); i++ {
		if !want[i].Time.After(want[i-1].Time) {
			f.t.Fatalf("point %d at %v is not after point %d at %v", i, want[i].Time, i-1, want[i-1].Time)
		}
	}
	for _, w := range f.r.Perm(len(want)) {
		got, err := f.A.Point(f.ctx, want[w].ID)
		if err != nil || !samePoint(got, want[w]) {
			f.t.Fatalf("Point(%q): got %+v, %v; want %+v", want[w].ID, got, err, want[w])
		}
	}
}

func testDedupAcrossBackups(f *fixture) {
	first := f.pack(vaultapi.KindData, 40, 500)
	p1 := f.backup(f.A, first, f.pack(vaultapi.KindInfo, 1, 50))

	// A backup that stored packs and died before committing.
	orphan := f.pack(vaultapi.KindData, 10, 500)
	s := f.begin(f.A)
	f.store(f.A, s.ID, orphan)
	f.Advance(s.Expires.Sub(f.Now()) + time.Minute)

	// The next backup asks what is stored, uploads only the rest and
	// commits a point referencing blobs of both earlier sessions.
	fresh := f.pack(vaultapi.KindData, 5, 500)
	manifest := f.pack(vaultapi.KindInfo, 1, 50)
	refs := append(append(packIDs(first), packIDs(orphan)...), packIDs(fresh)...)
	want := append(all(len(first.Entries)+len(orphan.Entries), true), all(len(fresh.Entries), false)...)
	f.wantHas(f.A, refs, want)
	s2 := f.begin(f.A)
	f.store(f.A, s2.ID, fresh)
	f.store(f.A, s2.ID, manifest)
	p2 := f.commit(f.A, s2.ID, manifest.Entries[0].ID, append(refs, manifest.Entries[0].ID))
	f.wantPoints(f.A, p1, p2)
	f.wantStored(f.A, first)
	f.wantStored(f.A, orphan)
}

// testCommitConcurrent: a session commits once, even when the agent (or a
// retrying transport) sends its commit several times at once.
func testCommitConcurrent(f *fixture) {
	s := f.begin(f.A)
	p := f.pack(vaultapi.KindData, 10, 100)
	f.store(f.A, s.ID, p)
	const n = 6
	points := make([]vaultapi.Point, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			points[i], errs[i] = f.A.Commit(f.ctx, s.ID, vaultapi.Commit{Info: p.Entries[0].ID, Refs: packIDs(p)})
		})
	}
	wg.Wait()
	var won []vaultapi.Point
	for i, err := range errs {
		switch {
		case err == nil:
			won = append(won, points[i])
		case !errors.Is(err, vaultapi.ErrNoSession):
			f.t.Fatalf("concurrent Commit: got error %v, want nil or ErrNoSession", err)
		}
	}
	if len(won) != 1 {
		f.t.Fatalf("%d concurrent Commits of one session made %d points, want 1", n, len(won))
	}
	f.wantPoints(f.A, won[0])
}
