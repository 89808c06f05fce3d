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

// TestRefsDeltas commits a chain of points whose reference sets change a
// little each time (longer than maxDepth), and one unrelated set, and
// checks every set reads back exactly while the store stays small.
func TestRefsDeltas(t *testing.T) {
	ctx := context.Background()
	s, err := OpenBolt(filepath.Join(t.TempDir(), "meta.db"), func() string { return "vault" })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := Machine{ID: "m1", Name: "one", Created: time.Unix(0, 0)}
	if err := s.CreateMachine(ctx, m); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	newID := func() vaultapi.ID {
		var id vaultapi.ID
		for i := range id {
			id[i] = byte(rng.Uint32())
		}
		return id
	}
	var index []vaultapi.PackEntry
	cur := make([]vaultapi.ID, 5000)
	for i := range cur {
		cur[i] = newID()
	}
	want := map[string][]vaultapi.ID{}
	for n := range 2*maxDepth + 5 {
		next := slices.Clone(cur)
		for range 20 { // replace 20 IDs
			next[rng.IntN(len(next))] = newID()
		}
		if n == maxDepth+3 { // an unrelated point: stored whole
			for i := range next {
				next[i] = newID()
			}
		}
		cur = next
		index = index[:0]
		for i, id := range cur {
			index = append(index, vaultapi.PackEntry{ID: id, Kind: vaultapi.KindData, Offset: uint64(8 + i), Length: 1})
		}
		slices.SortFunc(index, func(a, b vaultapi.PackEntry) int { return a.ID.Compare(b.ID) })
		pname := fmt.Sprintf("%064x", n+1)
		if err := s.AddPack(ctx, m.ID, PackRecord{Name: pname, Size: 1 << 20, Blobs: len(index)}, index); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("p%03d", n)
		p := vaultapi.Point{ID: id, Machine: m.ID, Time: time.Unix(int64(n), 0).UTC()}
		if err := s.AddPoint(ctx, m.ID, p, cur); err != nil {
			t.Fatal(err)
		}
		want[id] = sortedUnique(cur)
	}
	for id, w := range want {
		got, err := s.PointRefs(ctx, m.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, w) {
			t.Fatalf("point %s: %d refs read back, want %d (or different IDs)", id, len(got), len(w))
		}
	}
	// Deltas really are used, and chains stay within maxDepth.
	var deltas, fulls int
	s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bMachines).Bucket([]byte(m.ID)).Bucket(bRefs).ForEach(func(k, v []byte) error {
			switch v[0] {
			case refsDelta:
				deltas++
				if v[1] > maxDepth {
					t.Errorf("point %s: delta depth %d > %d", k, v[1], maxDepth)
				}
			case refsSplit:
				fulls++
			}
			return nil
		})
	})
	if deltas < 2*maxDepth || fulls < 3 || fulls > 5 {
		t.Errorf("%d deltas and %d full sets; want mostly deltas, a full set per %d links and for the unrelated point", deltas, fulls, maxDepth)
	}
}

func TestApplyDeltaAndDiff(t *testing.T) {
	id := func(b byte) vaultapi.ID { return vaultapi.ID{b} }
	a := []vaultapi.ID{id(1), id(3), id(5), id(7)}
	b := []vaultapi.ID{id(2), id(3), id(7), id(9)}
	added, removed := diff(a, b)
	if !slices.Equal(added, []vaultapi.ID{id(2), id(9)}) || !slices.Equal(removed, []vaultapi.ID{id(1), id(5)}) {
		t.Fatalf("diff: added %v removed %v", added, removed)
	}
	if got := applyDelta(a, added, removed); !slices.Equal(got, b) {
		t.Fatalf("applyDelta: %v, want %v", got, b)
	}
}

// TestAddPointChecksNewRefs checks that a point whose set grows on the
// latest point's is refused naming exactly the blobs not indexed, and
// that the same set again, unsorted and with duplicates, commits.
func TestAddPointChecksNewRefs(t *testing.T) {
	ctx := context.Background()
	s, err := OpenBolt(filepath.Join(t.TempDir(), "meta.db"), func() string { return "vault" })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := Machine{ID: "m1", Name: "one", Created: time.Unix(0, 0)}
	if err := s.CreateMachine(ctx, m); err != nil {
		t.Fatal(err)
	}
	id := func(i int) vaultapi.ID { return vaultapi.ID{byte(i >> 8), byte(i), 7} }
	var set []vaultapi.ID
	var index []vaultapi.PackEntry
	for i := range 300 {
		set = append(set, id(i))
		index = append(index, vaultapi.PackEntry{ID: id(i), Kind: vaultapi.KindData, Offset: uint64(8 + i), Length: 1})
	}
	if err := s.AddPack(ctx, m.ID, PackRecord{Name: fmt.Sprintf("%064x", 1), Size: 1 << 20, Blobs: len(index)}, index); err != nil {
		t.Fatal(err)
	}
	point := func(n int) vaultapi.Point {
		return vaultapi.Point{ID: fmt.Sprintf("p%d", n), Machine: m.ID, Time: time.Unix(int64(n), 0).UTC()}
	}
	if err := s.AddPoint(ctx, m.ID, point(1), set); err != nil {
		t.Fatal(err)
	}
	missing := []vaultapi.ID{id(1000), id(1001)}
	err = s.AddPoint(ctx, m.ID, point(2), append(slices.Clone(set[1:]), missing...))
	var mb *vaultapi.MissingBlobsError
	if !errors.As(err, &mb) || !slices.Equal(mb.IDs, missing) {
		t.Fatalf("AddPoint with 2 blobs not indexed: got %v, want MissingBlobsError of %v", err, missing)
	}
	again := append(slices.Clone(set), set[:10]...)
	slices.Reverse(again)
	if err := s.AddPoint(ctx, m.ID, point(3), again); err != nil {
		t.Fatalf("AddPoint of the latest point's set: %v", err)
	}
	got, err := s.PointRefs(ctx, m.ID, "p3")
	if err != nil || !slices.Equal(got, set) {
		t.Fatalf("PointRefs: got %d refs, %v; want the %d of p1", len(got), err, len(set))
	}
}

// TestApplyDeltaRandom checks applyDelta against sets in a map, with
// added IDs already in the base, removed ones not in it, and IDs in both.
func TestApplyDeltaRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	pick := func(n int) []vaultapi.ID {
		var out []vaultapi.ID
		for range n {
			out = append(out, vaultapi.ID{byte(rng.IntN(64)), byte(rng.IntN(4))})
		}
		return sortedUnique(out)
	}
	for range 2000 {
		base, added, removed := pick(rng.IntN(200)), pick(rng.IntN(8)), pick(rng.IntN(8))
		want := map[vaultapi.ID]bool{}
		for _, id := range base {
			want[id] = true
		}
		for _, id := range added {
			want[id] = true
		}
		for _, id := range removed {
			delete(want, id)
		}
		got := applyDelta(slices.Clone(base), added, removed)
		if len(got) != len(want) || !isSortedUnique(got) {
			t.Fatalf("applyDelta: got %d IDs (sorted: %v), want %d", len(got), isSortedUnique(got), len(want))
		}
		for _, id := range got {
			if !want[id] {
				t.Fatalf("applyDelta: got %x, not in the set", id[:2])
			}
		}
	}
}
