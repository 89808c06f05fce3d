package meta

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func randomID(r *rand.Rand) vaultapi.ID {
	var id vaultapi.ID
	for i := 0; i < len(id); i += 8 {
		binary.LittleEndian.PutUint64(id[i:], r.Uint64())
	}
	return id
}

// TestBlobFilter: every key added passes; few others do, also for IDs
// that differ only in a few bytes.
func TestBlobFilter(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n = 100_000
	f := newBlobFilter(n)
	in := make([]vaultapi.ID, n)
	for i := range in {
		in[i] = randomID(r)
		f.add(&in[i])
	}
	for i := range in {
		if !f.mayHave(&in[i]) {
			t.Fatalf("key %d added but not in the filter", i)
		}
	}
	for _, tc := range []struct {
		name string
		id   func(i int) vaultapi.ID
	}{
		{"random", func(int) vaultapi.ID { return randomID(r) }},
		{"structured", func(i int) vaultapi.ID { return pendingID(7, uint64(i)) }},
	} {
		fp := 0
		for i := range n {
			id := tc.id(i)
			if f.mayHave(&id) {
				fp++
			}
		}
		if rate := float64(fp) / n; rate > 0.01 {
			t.Errorf("%s IDs: false positive rate %.4f, want under 0.01", tc.name, rate)
		}
	}
	if f.full() {
		t.Errorf("a filter sized for %d keys is full after %d", n, n)
	}
}

// TestHasBlobsWithFilter: once the filter is built, blobs stored before
// and after it are found, and missing ones are not; a filter that fills
// up is built again, larger.
func TestHasBlobsWithFilter(t *testing.T) {
	ctx := context.Background()
	s := openPendingStore(t, filepath.Join(t.TempDir(), "meta.db"), true)
	defer s.Close()
	r := rand.New(rand.NewPCG(5, 6))
	var stored []vaultapi.ID
	addRandom := func(seq uint64, n int) {
		es := make([]vaultapi.PackEntry, n)
		for i := range es {
			es[i] = vaultapi.PackEntry{ID: randomID(r), Kind: vaultapi.KindData, Offset: uint64(i), Length: 1}
			stored = append(stored, es[i].ID)
		}
		addPack(t, s, seq, es)
	}
	check := func(when string) {
		t.Helper()
		missing := randomID(r)
		for _, id := range []vaultapi.ID{stored[0], stored[len(stored)-1], stored[len(stored)/2]} {
			has, err := s.HasBlobs(ctx, "m", []vaultapi.ID{id, missing})
			if err != nil || !has[0] || has[1] {
				t.Fatalf("%s: HasBlobs(stored, missing) = %v, %v; want [true false]", when, has, err)
			}
		}
	}
	addRandom(0, 1000)
	for range filterAfter + 1 {
		check("before the filter")
	}
	v, ok := s.filters.Load("m")
	if !ok || v.(*machineFilter).filter.Load() == nil {
		t.Fatalf("no filter after %d questions", filterAfter+1)
	}
	first := v.(*machineFilter).filter.Load()
	addRandom(1, 1000)
	check("a pack stored after the filter was built")
	// Fill the filter past its load: it is built again, larger.
	for seq := uint64(2); !first.full(); seq++ {
		addRandom(seq, 20_000)
	}
	check("after the filter filled up")
	if f := v.(*machineFilter).filter.Load(); f == first || f.mask <= first.mask {
		t.Fatalf("a full filter was not built again larger")
	}
	has, err := s.HasBlobs(ctx, "m", stored)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range has {
		if !h {
			t.Fatalf("stored blob %d not found", i)
		}
	}
}
