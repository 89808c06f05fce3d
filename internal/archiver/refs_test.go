package archiver

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// randomIDs returns n IDs, some sharing their first bytes.
func randomIDs(r *rand.Rand, n int) []vaultapi.ID {
	ids := make([]vaultapi.ID, n)
	for i := range ids {
		for j := range ids[i] {
			ids[i][j] = byte(r.Uint32())
		}
		if i > 0 && r.IntN(4) == 0 {
			copy(ids[i][:8+r.IntN(20)], ids[i-1][:])
		}
	}
	return ids
}

func TestSortIDs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 300, 1<<12 - 1, 1 << 12, 30000} {
		ids := randomIDs(r, n)
		want := slices.Clone(ids)
		slices.SortFunc(want, vaultapi.ID.Compare)
		sortIDs(ids)
		if !slices.Equal(ids, want) {
			t.Fatalf("sortIDs: order differs from ID.Compare's")
		}
	}
}

func BenchmarkSortIDs(b *testing.B) {
	ids := randomIDs(rand.New(rand.NewPCG(3, 4)), 100000)
	work := make([]vaultapi.ID, len(ids))
	b.SetBytes(int64(len(ids) * len(vaultapi.ID{})))
	for b.Loop() {
		copy(work, ids)
		sortIDs(work)
	}
}

func BenchmarkSortIDsCompare(b *testing.B) {
	ids := randomIDs(rand.New(rand.NewPCG(3, 4)), 100000)
	work := make([]vaultapi.ID, len(ids))
	b.SetBytes(int64(len(ids) * len(vaultapi.ID{})))
	for b.Loop() {
		copy(work, ids)
		slices.SortFunc(work, vaultapi.ID.Compare)
	}
}
