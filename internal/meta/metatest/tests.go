package metatest

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func testVaultID(t *testing.T, s meta.Store) {
	id := s.VaultID()
	if id == "" {
		t.Fatal("VaultID is empty")
	}
	if again := s.VaultID(); again != id {
		t.Fatalf("VaultID changed: got %q, then %q", id, again)
	}
}

func testMachines(t *testing.T, s meta.Store) {
	if ms, err := s.Machines(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("Machines of an empty store: got %v, %v; want none", ms, err)
	}
	a := machine(t, s, "alpha")
	b := machine(t, s, "beta")

	dupName := meta.Machine{ID: "other-id", Name: "alpha", Created: a.Created}
	wantErr(t, "CreateMachine with a taken name", s.CreateMachine(ctx, dupName), meta.ErrExists)
	dupID := meta.Machine{ID: a.ID, Name: "gamma", Created: a.Created}
	wantErr(t, "CreateMachine with a taken ID", s.CreateMachine(ctx, dupID), meta.ErrExists)
	if _, err := s.MachineByName(ctx, "gamma"); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("a refused CreateMachine left its name behind: MachineByName(gamma): %v", err)
	}

	for _, want := range []meta.Machine{a, b} {
		got, err := s.Machine(ctx, want.ID)
		if err != nil || got.ID != want.ID || got.Name != want.Name || !got.Created.Equal(want.Created) {
			t.Fatalf("Machine(%q): got %+v, %v; want %+v", want.ID, got, err, want)
		}
		got, err = s.MachineByName(ctx, want.Name)
		if err != nil || got.ID != want.ID || got.Name != want.Name {
			t.Fatalf("MachineByName(%q): got %+v, %v; want %+v", want.Name, got, err, want)
		}
	}
	_, err := s.Machine(ctx, "nope")
	wantErr(t, "Machine(unknown)", err, meta.ErrNotFound)
	_, err = s.MachineByName(ctx, "nope")
	wantErr(t, "MachineByName(unknown)", err, meta.ErrNotFound)

	ms, err := s.Machines(ctx)
	if err != nil {
		t.Fatalf("Machines: %v", err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	if !slices.Equal(names, []string{"alpha", "beta"}) {
		t.Fatalf("Machines: got names %q, want [alpha beta]", names)
	}
}

func testUnknownMachine(t *testing.T, s meta.Store) {
	r := rng(t)
	const m = "no-such-machine"
	ids := randomIDs(r, 3)
	name := packName(r)
	checks := []struct {
		op  string
		err error
	}{
		{"KeySlots", func() error { _, err := s.KeySlots(ctx, m); return err }()},
		{"PutKeySlot", s.PutKeySlot(ctx, m, vaultapi.KeySlot{ID: "x", Data: []byte{1}})},
		{"AddPack", s.AddPack(ctx, m, meta.PackRecord{Name: name, Size: 100, Blobs: 1}, entries(r, ids[:1]))},
		{"HasBlobs", func() error { _, err := s.HasBlobs(ctx, m, ids); return err }()},
		{"Locate", func() error { _, err := s.Locate(ctx, m, ids); return err }()},
		{"Pack", func() error { _, err := s.Pack(ctx, m, name); return err }()},
		{"PutSession", s.PutSession(ctx, m, vaultapi.Session{ID: "s", Expires: someTime})},
		{"Session", func() error { _, err := s.Session(ctx, m, "s"); return err }()},
		{"AddPoint", s.AddPoint(ctx, m, point(r, m, someTime, ids[0]), ids)},
		{"Points", func() error { _, err := s.Points(ctx, m); return err }()},
		{"Point", func() error { _, err := s.Point(ctx, m, "p"); return err }()},
		{"PointRefs", func() error { _, err := s.PointRefs(ctx, m, "p"); return err }()},
	}
	for _, c := range checks {
		wantErr(t, c.op+" of an unknown machine", c.err, meta.ErrNotFound)
	}
}

func testKeySlots(t *testing.T, s meta.Store) {
	m := machine(t, s, "m")
	if got, err := s.KeySlots(ctx, m.ID); err != nil || len(got) != 0 {
		t.Fatalf("KeySlots of a new machine: got %v, %v; want none", got, err)
	}
	pass := []byte("passphrase slot v1")
	put := func(id string, data []byte) {
		t.Helper()
		if err := s.PutKeySlot(ctx, m.ID, vaultapi.KeySlot{ID: id, Data: data}); err != nil {
			t.Fatalf("PutKeySlot(%q): %v", id, err)
		}
	}
	want := func(w map[string]string) {
		t.Helper()
		got, err := s.KeySlots(ctx, m.ID)
		if err != nil {
			t.Fatalf("KeySlots: %v", err)
		}
		g := map[string]string{}
		for _, ks := range got {
			g[ks.ID] = string(ks.Data)
		}
		if len(g) != len(got) || len(g) != len(w) {
			t.Fatalf("KeySlots: got %q, want %q", g, w)
		}
		for k, v := range w {
			if g[k] != v {
				t.Fatalf("KeySlots: slot %q: got %q, want %q", k, g[k], v)
			}
		}
		// The caller owns what it gets: scribbling on it changes nothing stored.
		for _, ks := range got {
			for i := range ks.Data {
				ks.Data[i] = 'X'
			}
		}
	}
	put("passphrase", pass)
	put("recovery-1", []byte("recovery slot"))
	// The store must not keep the caller's buffer.
	copy(pass, "scribbled over....")
	want(map[string]string{"passphrase": "passphrase slot v1", "recovery-1": "recovery slot"})
	put("passphrase", []byte("passphrase slot v2"))
	want(map[string]string{"passphrase": "passphrase slot v2", "recovery-1": "recovery slot"})
}

func testPacks(t *testing.T, s meta.Store) {
	r := rng(t)
	m := machine(t, s, "m")
	ids := randomIDs(r, 50)
	es := entries(r, ids)
	name := packName(r)
	rec := record(name, es)

	if ok, err := s.HasPack(ctx, m.ID, name); err != nil || ok {
		t.Fatalf("HasPack before AddPack: got %v, %v; want false", ok, err)
	}
	_, err := s.Pack(ctx, m.ID, name)
	wantErr(t, "Pack before AddPack", err, meta.ErrNotFound)

	scratch := slices.Clone(es)
	addPack(t, s, m.ID, rec, scratch)
	// The store must not keep the caller's entries.
	for i := range scratch {
		scratch[i] = vaultapi.PackEntry{ID: randomID(r), Kind: vaultapi.KindTree, Offset: 1, Length: 1}
	}

	if ok, err := s.HasPack(ctx, m.ID, name); err != nil || !ok {
		t.Fatalf("HasPack after AddPack: got %v, %v; want true", ok, err)
	}
	if got, err := s.Pack(ctx, m.ID, name); err != nil || got != rec {
		t.Fatalf("Pack: got %+v, %v; want %+v", got, err, rec)
	}
	if ok, err := s.HasPack(ctx, m.ID, "not-a-pack-name"); err != nil || ok {
		t.Fatalf("HasPack(invalid name): got %v, %v; want false, nil", ok, err)
	}
	wantLocations(t, s, m.ID, name, es)

	absent := randomIDs(r, 5)
	query := append(slices.Clone(absent[:2]), ids[7], absent[2], ids[0], ids[49], absent[3], absent[4])
	wantHas(t, s, m.ID, query, []bool{false, false, true, false, true, true, false, false})
	locs, err := s.Locate(ctx, m.ID, absent)
	if err != nil {
		t.Fatalf("Locate(absent): %v", err)
	}
	for i, l := range locs {
		if l != (vaultapi.Location{ID: absent[i]}) {
			t.Fatalf("Locate(absent %d): got %+v, want only the ID", i, l)
		}
	}
	wantHas(t, s, m.ID, nil, nil)

	// Adding the same pack again changes nothing.
	addPack(t, s, m.ID, rec, es)
	wantLocations(t, s, m.ID, name, es)
}

func testFirstLocationWins(t *testing.T, s meta.Store) {
	r := rng(t)
	m := machine(t, s, "m")
	shared := randomIDs(r, 10)
	es1 := entries(r, shared)
	p1 := packName(r)
	addPack(t, s, m.ID, record(p1, es1), es1)

	// A second pack holding the same blobs and new ones, at other offsets.
	ids2 := append(randomIDs(r, 3), shared...)
	es2 := entries(r, ids2)
	p2 := packName(r)
	addPack(t, s, m.ID, record(p2, es2), es2)
	wantLocations(t, s, m.ID, p1, es1)
	wantLocations(t, s, m.ID, p2, es2[:3])

	// The same ID twice in one pack: the first entry wins.
	dup := randomID(r)
	es3 := entries(r, []vaultapi.ID{dup, dup})
	p3 := packName(r)
	addPack(t, s, m.ID, record(p3, es3), es3)
	wantLocations(t, s, m.ID, p3, es3[:1])
}

func testHasBlobsBatch(t *testing.T, s meta.Store) {
	r := rng(t)
	m := machine(t, s, "m")
	var stored []vaultapi.ID
	for range 4 {
		ids := randomIDs(r, 1000)
		es := entries(r, ids)
		addPack(t, s, m.ID, record(packName(r), es), es)
		stored = append(stored, ids...)
	}
	query := make([]vaultapi.ID, 10000)
	want := make([]bool, len(query))
	for i := range query {
		if r.IntN(2) == 0 {
			query[i], want[i] = stored[r.IntN(len(stored))], true
		} else {
			query[i] = randomID(r)
		}
	}
	wantHas(t, s, m.ID, query, want)
}

func testSessions(t *testing.T, s meta.Store) {
	m := machine(t, s, "m")
	exp := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	_, err := s.Session(ctx, m.ID, "s1")
	wantErr(t, "Session(unknown)", err, meta.ErrNotFound)
	if err := s.PutSession(ctx, m.ID, vaultapi.Session{ID: "s1", Expires: exp}); err != nil {
		t.Fatalf("PutSession: %v", err)
	}
	if err := s.PutSession(ctx, m.ID, vaultapi.Session{ID: "s2", Expires: exp}); err != nil {
		t.Fatalf("PutSession: %v", err)
	}
	wantSession := func(id string, exp time.Time) {
		t.Helper()
		got, err := s.Session(ctx, m.ID, id)
		if err != nil || got.ID != id || !got.Expires.Equal(exp) {
			t.Fatalf("Session(%q): got %+v, %v; want expiry %v", id, got, err, exp)
		}
	}
	wantSession("s1", exp)
	later := exp.Add(time.Hour)
	if err := s.PutSession(ctx, m.ID, vaultapi.Session{ID: "s1", Expires: later}); err != nil {
		t.Fatalf("PutSession (renew): %v", err)
	}
	wantSession("s1", later)
	if err := s.DeleteSession(ctx, m.ID, "s1"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	_, err = s.Session(ctx, m.ID, "s1")
	wantErr(t, "Session after DeleteSession", err, meta.ErrNotFound)
	if err := s.DeleteSession(ctx, m.ID, "s1"); err != nil {
		t.Fatalf("DeleteSession of a deleted session: got %v, want nil", err)
	}
	wantSession("s2", exp)
}

func testAddPoint(t *testing.T, s meta.Store) {
	r := rng(t)
	m := machine(t, s, "m")
	ids := randomIDs(r, 300)
	es := entries(r, ids)
	addPack(t, s, m.ID, record(packName(r), es), es)

	p := point(r, m.ID, time.Date(2031, 1, 1, 0, 0, 0, 123456000, time.UTC), ids[0])
	refs := slices.Clone(ids[:200])
	if err := s.AddPoint(ctx, m.ID, p, refs); err != nil {
		t.Fatalf("AddPoint: %v", err)
	}
	for i := range refs { // the store must not keep the caller's slice
		refs[i] = vaultapi.ID{}
	}
	got, err := s.Point(ctx, m.ID, p.ID)
	if err != nil {
		t.Fatalf("Point: %v", err)
	}
	wantPoint(t, got, p)
	gotRefs, err := s.PointRefs(ctx, m.ID, p.ID)
	if err != nil {
		t.Fatalf("PointRefs: %v", err)
	}
	wantIDSet(t, "PointRefs", gotRefs, ids[:200])

	// A point ID is never reused.
	wantErr(t, "AddPoint with a taken ID", s.AddPoint(ctx, m.ID, p, ids[:1]), meta.ErrExists)

	// A point that references only its manifest.
	p2 := point(r, m.ID, p.Time.Add(time.Hour), ids[299])
	if err := s.AddPoint(ctx, m.ID, p2, ids[299:]); err != nil {
		t.Fatalf("AddPoint (one ref): %v", err)
	}
	gotRefs, err = s.PointRefs(ctx, m.ID, p2.ID)
	if err != nil {
		t.Fatalf("PointRefs: %v", err)
	}
	wantIDSet(t, "PointRefs (one ref)", gotRefs, ids[299:])

	_, err = s.Point(ctx, m.ID, "nope")
	wantErr(t, "Point(unknown)", err, meta.ErrNotFound)
	_, err = s.PointRefs(ctx, m.ID, "nope")
	wantErr(t, "PointRefs(unknown)", err, meta.ErrNotFound)
}

func testAddPointMissing(t *testing.T, s meta.Store) {
	r := rng(t)
	m := machine(t, s, "m")
	ids := randomIDs(r, 100)
	es := entries(r, ids)
	addPack(t, s, m.ID, record(packName(r), es), es)

	missing := randomIDs(r, 7)
	refs := slices.Clone(ids)
	for i, id := range missing {
		refs = slices.Insert(refs, i*13, id)
	}
	p := point(r, m.ID, time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), ids[0])
	err := s.AddPoint(ctx, m.ID, p, refs)
	var mb *vaultapi.MissingBlobsError
	if !errors.As(err, &mb) {
		t.Fatalf("AddPoint with missing refs: got error %v, want *vaultapi.MissingBlobsError", err)
	}
	wantIDSet(t, "MissingBlobsError.IDs", mb.IDs, missing)

	// Nothing was recorded.
	_, err = s.Point(ctx, m.ID, p.ID)
	wantErr(t, "Point after a refused AddPoint", err, meta.ErrNotFound)
	_, err = s.PointRefs(ctx, m.ID, p.ID)
	wantErr(t, "PointRefs after a refused AddPoint", err, meta.ErrNotFound)
	if ps, err := s.Points(ctx, m.ID); err != nil || len(ps) != 0 {
		t.Fatalf("Points after a refused AddPoint: got %d, %v; want none", len(ps), err)
	}

	// Once the missing blobs are stored, the same point commits.
	es2 := entries(r, missing)
	addPack(t, s, m.ID, record(packName(r), es2), es2)
	if err := s.AddPoint(ctx, m.ID, p, refs); err != nil {
		t.Fatalf("AddPoint after storing the missing blobs: %v", err)
	}
}

func testPointsSorted(t *testing.T, s meta.Store) {
	r := rng(t)
	m := machine(t, s, "m")
	ids := randomIDs(r, 1)
	es := entries(r, ids)
	addPack(t, s, m.ID, record(packName(r), es), es)

	if ps, err := s.Points(ctx, m.ID); err != nil || len(ps) != 0 {
		t.Fatalf("Points of a new machine: got %d, %v; want none", len(ps), err)
	}
	base := time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)
	var want []vaultapi.Point
	for _, i := range r.Perm(20) {
		p := point(r, m.ID, base.Add(time.Duration(i)*time.Minute+time.Duration(i)*time.Microsecond), ids[0])
		if err := s.AddPoint(ctx, m.ID, p, ids); err != nil {
			t.Fatalf("AddPoint: %v", err)
		}
		want = append(want, p)
	}
	slices.SortFunc(want, func(a, b vaultapi.Point) int { return a.Time.Compare(b.Time) })
	got, err := s.Points(ctx, m.ID)
	if err != nil {
		t.Fatalf("Points: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Points: got %d, want %d", len(got), len(want))
	}
	for i := range want {
		wantPoint(t, got[i], want[i])
	}
}

func testMachineIsolation(t *testing.T, s meta.Store) {
	r := rng(t)
	a := machine(t, s, "a")
	b := machine(t, s, "b")
	ids := randomIDs(r, 20)
	es := entries(r, ids)
	name := packName(r)
	addPack(t, s, a.ID, record(name, es), es)
	p := point(r, a.ID, time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), ids[0])
	if err := s.AddPoint(ctx, a.ID, p, ids); err != nil {
		t.Fatalf("AddPoint: %v", err)
	}
	if err := s.PutKeySlot(ctx, a.ID, vaultapi.KeySlot{ID: "passphrase", Data: []byte("a")}); err != nil {
		t.Fatalf("PutKeySlot: %v", err)
	}
	if err := s.PutSession(ctx, a.ID, vaultapi.Session{ID: "sa", Expires: p.Time}); err != nil {
		t.Fatalf("PutSession: %v", err)
	}

	wantHas(t, s, b.ID, ids, make([]bool, len(ids)))
	if ok, err := s.HasPack(ctx, b.ID, name); err != nil || ok {
		t.Fatalf("HasPack of another machine's pack: got %v, %v; want false", ok, err)
	}
	_, err := s.Pack(ctx, b.ID, name)
	wantErr(t, "Pack of another machine's pack", err, meta.ErrNotFound)
	_, err = s.Point(ctx, b.ID, p.ID)
	wantErr(t, "Point of another machine's point", err, meta.ErrNotFound)
	_, err = s.PointRefs(ctx, b.ID, p.ID)
	wantErr(t, "PointRefs of another machine's point", err, meta.ErrNotFound)
	_, err = s.Session(ctx, b.ID, "sa")
	wantErr(t, "Session of another machine's session", err, meta.ErrNotFound)
	if ps, err := s.Points(ctx, b.ID); err != nil || len(ps) != 0 {
		t.Fatalf("Points of b: got %d, %v; want none", len(ps), err)
	}
	if ks, err := s.KeySlots(ctx, b.ID); err != nil || len(ks) != 0 {
		t.Fatalf("KeySlots of b: got %d, %v; want none", len(ks), err)
	}
	var mb *vaultapi.MissingBlobsError
	if err := s.AddPoint(ctx, b.ID, point(r, b.ID, p.Time, ids[0]), ids); !errors.As(err, &mb) {
		t.Fatalf("AddPoint of b referencing a's blobs: got %v, want *MissingBlobsError", err)
	}
	wantIDSet(t, "MissingBlobsError.IDs", mb.IDs, ids)

	// The same pack stored by b is b's own, indexed separately.
	es2 := entries(r, ids)
	addPack(t, s, b.ID, record(name, es2), es2)
	wantLocations(t, s, b.ID, name, es2)
	wantLocations(t, s, a.ID, name, es)
}

func testConcurrent(t *testing.T, s meta.Store) {
	r := rng(t)
	m := machine(t, s, "m")
	const workers, packs, blobs = 8, 5, 200
	type job struct {
		rec meta.PackRecord
		es  []vaultapi.PackEntry
	}
	jobs := make([][]job, workers)
	var all []vaultapi.ID
	for w := range jobs {
		for range packs {
			ids := randomIDs(r, blobs)
			es := entries(r, ids)
			jobs[w] = append(jobs[w], job{record(packName(r), es), es})
			all = append(all, ids...)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*packs*2)
	for w := range jobs {
		wg.Go(func() {
			for _, j := range jobs[w] {
				errs <- s.AddPack(ctx, m.ID, j.rec, j.es)
				_, err := s.HasBlobs(ctx, m.ID, all[:blobs])
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent AddPack/HasBlobs: %v", err)
		}
	}
	want := make([]bool, len(all))
	for i := range want {
		want[i] = true
	}
	wantHas(t, s, m.ID, all, want)
	for _, js := range jobs {
		for _, j := range js {
			wantLocations(t, s, m.ID, j.rec.Name, j.es)
		}
	}
}

func testCancelledContext(t *testing.T, s meta.Store) {
	r := rng(t)
	m := machine(t, s, "m")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ids := randomIDs(r, 3)
	es := entries(r, ids)
	err := s.AddPack(cctx, m.ID, record(packName(r), es), es)
	wantErr(t, "AddPack with a cancelled context", err, context.Canceled)
	_, err = s.HasBlobs(cctx, m.ID, ids)
	wantErr(t, "HasBlobs with a cancelled context", err, context.Canceled)
	err = s.AddPoint(cctx, m.ID, point(r, m.ID, someTime, ids[0]), ids)
	wantErr(t, "AddPoint with a cancelled context", err, context.Canceled)
	wantHas(t, s, m.ID, ids, make([]bool, len(ids)))
}
