package restorer

import (
	"slices"
	"testing"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// TestNeedsTakenThenNeededAgain: a blob whose chunks a worker has taken
// is located and fetched again for a chunk the plan finds after that,
// and a blob not yet taken is asked for once, whatever needs it.
func TestNeedsTakenThenNeededAgain(t *testing.T) {
	x, y := vaultapi.ID{1}, vaultapi.ID{2}
	rs := &restore{needs: make(map[vaultapi.ID]need), loc: &locator{batch: locateFirst}}
	file := func(ids ...vaultapi.ID) *fileTask {
		n := &format.Node{Type: format.TypeFile}
		for _, id := range ids {
			n.Chunks = append(n.Chunks, format.Chunk{ID: id, Size: 1})
		}
		return &fileTask{node: n, remaining: len(ids)}
	}
	a, b, c := file(x, y, x), file(y), file(x)

	rs.needChunks(a, nil)
	rs.needChunks(b, nil)
	if want := []vaultapi.ID{x, y}; !slices.Equal(rs.loc.pending, want) {
		t.Fatalf("located %v, want %v (each blob once)", rs.loc.pending, want)
	}
	got := rs.take(x)
	if want := []target{{a, 0}, {a, 2}}; !slices.Equal(got, want) {
		t.Fatalf("take(x) = %v, want %v", got, want)
	}
	if again := rs.take(x); len(again) != 0 {
		t.Fatalf("x taken twice: %v", again)
	}
	rs.needChunks(c, nil) // x is needed again after it was taken
	if want := []vaultapi.ID{x, y, x}; !slices.Equal(rs.loc.pending, want) {
		t.Fatalf("located %v, want %v (x again)", rs.loc.pending, want)
	}
	if got, want := rs.take(x), []target{{c, 0}}; !slices.Equal(got, want) {
		t.Fatalf("second take(x) = %v, want %v", got, want)
	}
	if got, want := rs.take(y), []target{{a, 1}, {b, 0}}; !slices.Equal(got, want) {
		t.Fatalf("take(y) = %v, want %v", got, want)
	}
}

// TestTakeNeeded: a group's other chunks are taken only if the plan
// needs them now, and taking one that is not needed marks nothing, so
// the plan can still ask for it later.
func TestTakeNeeded(t *testing.T) {
	x, y := vaultapi.ID{1}, vaultapi.ID{2}
	rs := &restore{needs: make(map[vaultapi.ID]need), loc: &locator{batch: locateFirst}}
	a := &fileTask{node: &format.Node{Type: format.TypeFile, Chunks: []format.Chunk{{ID: x, Size: 1}}}, remaining: 1}
	rs.needChunks(a, nil)
	if got := rs.takeNeeded(y); got != nil {
		t.Fatalf("takeNeeded(y), not needed: %v", got)
	}
	if _, ok := rs.needs[y]; ok {
		t.Fatal("takeNeeded marked a blob no chunk needs")
	}
	if got, want := rs.takeNeeded(x), []target{{a, 0}}; !slices.Equal(got, want) {
		t.Fatalf("takeNeeded(x) = %v, want %v", got, want)
	}
	if got := rs.takeNeeded(x); got != nil {
		t.Fatalf("x taken twice: %v", got)
	}
	if got := rs.take(x); len(got) != 0 {
		t.Fatalf("take after takeNeeded: %v", got)
	}
}
