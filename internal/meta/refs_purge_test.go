package meta

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	bolt "go.etcd.io/bbolt"
)

// refsWorld is a store with one machine and the reference sets it should
// hold.
type refsWorld struct {
	t    *testing.T
	s    *Bolt
	rng  *rand.Rand
	cur  []vaultapi.ID
	want map[string][]vaultapi.ID
	n    int
}

func newRefsWorld(t *testing.T) *refsWorld {
	t.Helper()
	return newRefsWorldOf(t, 2*setChunk+100) // split sets of three values
}

// newRefsWorldOf is newRefsWorld with sets of n IDs.
func newRefsWorldOf(t *testing.T, n int) *refsWorld {
	t.Helper()
	s, err := OpenBolt(filepath.Join(t.TempDir(), "meta.db"), func() string { return "vault" })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateMachine(context.Background(), Machine{ID: "m1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	w := &refsWorld{t: t, s: s, rng: rand.New(rand.NewPCG(seed, 5)), want: map[string][]vaultapi.ID{}}
	w.cur = make([]vaultapi.ID, n)
	for i := range w.cur {
		w.cur[i] = w.newID()
	}
	return w
}

func (w *refsWorld) newID() vaultapi.ID {
	var id vaultapi.ID
	for i := range id {
		id[i] = byte(w.rng.Uint32())
	}
	return id
}

// add commits a point whose set changes a few IDs of the previous one.
func (w *refsWorld) add() string {
	w.t.Helper()
	ctx := context.Background()
	next := slices.Clone(w.cur)
	for range 5 {
		next[w.rng.IntN(len(next))] = w.newID()
	}
	w.cur = next
	var index []vaultapi.PackEntry
	for i, id := range w.cur {
		index = append(index, vaultapi.PackEntry{ID: id, Kind: vaultapi.KindData, Offset: uint64(i), Length: 1})
	}
	slices.SortFunc(index, func(a, b vaultapi.PackEntry) int { return a.ID.Compare(b.ID) })
	w.n++
	if err := w.s.AddPack(ctx, "m1", PackRecord{Name: fmt.Sprintf("%064x", w.n), Size: 1 << 20, Blobs: len(index)}, index); err != nil {
		w.t.Fatal(err)
	}
	id := fmt.Sprintf("p%03d", w.n)
	if err := w.s.AddPoint(ctx, "m1", vaultapi.Point{ID: id, Machine: "m1", Time: time.Unix(int64(w.n), 0).UTC()}, w.cur); err != nil {
		w.t.Fatal(err)
	}
	w.want[id] = sortedUnique(w.cur)
	return id
}

func (w *refsWorld) purge(id string) {
	w.t.Helper()
	if err := w.s.PurgePoint(context.Background(), "m1", id); err != nil {
		w.t.Fatalf("purge %s: %v", id, err)
	}
	delete(w.want, id)
}

// check reads every remaining set back and checks the purged ones are gone.
func (w *refsWorld) check(when string) {
	w.t.Helper()
	ctx := context.Background()
	for id, want := range w.want {
		got, err := w.s.PointRefs(ctx, "m1", id)
		if err != nil {
			w.t.Fatalf("%s: point %s: %v", when, id, err)
		}
		if !slices.Equal(got, want) {
			w.t.Fatalf("%s: point %s: %d refs read back, want %d (or different IDs)", when, id, len(got), len(want))
		}
	}
	ps, err := w.s.Points(ctx, "m1")
	if err != nil {
		w.t.Fatal(err)
	}
	if len(ps) != len(w.want) {
		w.t.Fatalf("%s: %d points listed, want %d", when, len(ps), len(w.want))
	}
	w.s.db.View(func(tx *bolt.Tx) error {
		refs := tx.Bucket(bMachines).Bucket([]byte("m1")).Bucket(bRefs)
		if n := refs.Stats().KeyN; n != len(w.want) {
			w.t.Errorf("%s: %d reference sets stored, want %d", when, n, len(w.want))
		}
		split := 0
		refs.ForEach(func(k, v []byte) error {
			if v[0] == refsDelta && v[1] > maxDepth {
				w.t.Errorf("%s: point %s: delta depth %d", when, k, v[1])
			}
			if v[0] == refsSplit {
				split++
			}
			return nil
		})
		// Every split set has its bucket, and no bucket outlives its point.
		sets := 0
		tx.Bucket(bMachines).Bucket([]byte("m1")).Bucket(bRefSets).ForEach(func(k, v []byte) error {
			if v != nil {
				w.t.Errorf("%s: refsets holds a value under %q", when, k)
			}
			sets++
			return nil
		})
		if sets != split {
			w.t.Errorf("%s: %d split set buckets, want %d (one per split set)", when, sets, split)
		}
		return nil
	})
}

// TestPurgeRebases purges points of a delta chain (its full head, middle
// links, the latest point, several in a row) and checks every other point
// reads back exactly, and that points added afterwards do too.
func TestPurgeRebases(t *testing.T) {
	w := newRefsWorld(t)
	var ids []string
	for range maxDepth + 10 {
		ids = append(ids, w.add())
	}
	w.check("before")
	for _, tc := range []struct {
		what string
		id   string
	}{
		{"full head", ids[0]},
		{"middle link", ids[5]},
		{"next link", ids[6]},
		{"link before a full set", ids[maxDepth-1]},
		{"latest", ids[len(ids)-1]},
		{"new latest", ids[len(ids)-2]},
	} {
		w.purge(tc.id)
		w.check("after purging the " + tc.what)
	}
	for range 5 {
		w.add()
	}
	w.check("after adding points")
	// Purge the rest in random order.
	rest := make([]string, 0, len(w.want))
	for id := range w.want {
		rest = append(rest, id)
	}
	slices.Sort(rest)
	w.rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	for _, id := range rest {
		w.purge(id)
		w.check("after purging " + id)
	}
	w.add()
	w.check("a point after purging all")
	if err := w.s.PurgePoint(context.Background(), "m1", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("purge of an unknown point: %v, want ErrNotFound", err)
	}
}

// TestSplitSetWrittenOnce commits points that share one large set and
// checks that each commit writes a few pages, not the set again: the set
// lies in a bucket of its own that no later point rewrites.
func TestSplitSetWrittenOnce(t *testing.T) {
	ctx := context.Background()
	w := newRefsWorldOf(t, 20*setChunk)
	w.add()
	allocated := func() int64 { st := w.s.db.Stats(); return st.TxStats.GetPageAlloc() }
	for i := range 5 {
		before := allocated()
		id := fmt.Sprintf("same%d", i)
		p := vaultapi.Point{ID: id, Machine: "m1", Time: time.Unix(int64(1000+i), 0).UTC()}
		if err := w.s.AddPoint(ctx, "m1", p, w.cur); err != nil {
			t.Fatal(err)
		}
		w.want[id] = sortedUnique(w.cur)
		// The set is 640 KiB; a commit rewrites a few small pages.
		if d := allocated() - before; d > 64<<10 {
			t.Fatalf("point %d of the same set wrote %d bytes of pages, want at most 64 KiB", i, d)
		}
	}
	w.check("after points of the same set")
}

// TestRefsReadsInlineFullSets checks that a full set stored inline in the
// refs bucket, as vaults wrote before split sets, is read, serves as a
// delta base, and is replaced by split sets when purged.
func TestRefsReadsInlineFullSets(t *testing.T) {
	w := newRefsWorld(t)
	first := w.add()
	err := w.s.db.Update(func(tx *bolt.Tx) error {
		rs := refsOf(tx.Bucket(bMachines).Bucket([]byte("m1")))
		if err := rs.sets.DeleteBucket([]byte(first)); err != nil {
			return err
		}
		b := []byte{refsFull, 0}
		for _, id := range w.want[first] {
			b = append(b, id[:]...)
		}
		return rs.refs.Put([]byte(first), b)
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w.add()
	}
	w.check("with an inline full set")
	w.purge(first)
	w.check("after purging the inline full set")
}

func TestSoftDeleteAndJobs(t *testing.T) {
	ctx := context.Background()
	w := newRefsWorld(t)
	id := w.add()
	at := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := w.s.SetPointDeleted(ctx, "m1", id, at); err != nil {
		t.Fatal(err)
	}
	p, err := w.s.Point(ctx, "m1", id)
	if err != nil || !p.Deleted.Equal(at) {
		t.Fatalf("deleted point: %v %v, want Deleted %v", p.Deleted, err, at)
	}
	if err := w.s.SetPointDeleted(ctx, "m1", id, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if p, _ := w.s.Point(ctx, "m1", id); !p.Deleted.IsZero() {
		t.Fatalf("undeleted point still deleted at %v", p.Deleted)
	}
	defer func(n int) { maxJobs = n }(maxJobs)
	maxJobs = 20
	base := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range maxJobs + 3 {
		j := vaultapi.Job{ID: fmt.Sprintf("j%05d", i), Trigger: vaultapi.TriggerSchedule, Status: vaultapi.StatusOK,
			Started: base.Add(time.Duration(i) * time.Minute)}
		if err := w.s.PutJob(ctx, "m1", j); err != nil {
			t.Fatal(err)
		}
	}
	jobs, err := w.s.Jobs(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != maxJobs || jobs[0].ID != fmt.Sprintf("j%05d", maxJobs+2) || jobs[len(jobs)-1].ID != "j00003" {
		t.Fatalf("%d jobs, newest %s, oldest %s; want %d, j%05d, j00003", len(jobs), jobs[0].ID, jobs[len(jobs)-1].ID,
			maxJobs, maxJobs+2)
	}
	if _, err := w.s.Policy(ctx, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("default policy before any: %v, want ErrNotFound", err)
	}
	pol := vaultapi.Policy{Source: "x"}
	pol.Schedule = "daily 02:00"
	for _, m := range []string{"", "m1"} {
		if err := w.s.PutPolicy(ctx, m, pol); err != nil {
			t.Fatal(err)
		}
		got, err := w.s.Policy(ctx, m)
		if err != nil || got.Schedule != "daily 02:00" {
			t.Fatalf("policy of %q: %+v %v", m, got, err)
		}
	}
	if err := w.s.PutPolicy(ctx, "nope", pol); !errors.Is(err, ErrNotFound) {
		t.Fatalf("policy of an unknown machine: %v", err)
	}
}
