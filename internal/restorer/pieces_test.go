package restorer

import (
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func TestPieces(t *testing.T) {
	loc := func(off, n uint64) vaultapi.Location {
		return vaultapi.Location{Offset: off, Length: uint32(n)}
	}
	const M = 1 << 20
	byPack := map[string][]vaultapi.Location{
		"a": {loc(0, M), loc(M, M), loc(2*M, M), loc(3*M, M), loc(4*M, M), loc(5*M, 2*M)},
		"b": {loc(0, 5*M)}, // one blob larger than a piece
		"c": {loc(100, 10)},
	}
	got := pieces([]string{"a", "b", "c"}, byPack)
	want := []struct {
		pack string
		n    int
	}{{"a", 4}, {"a", 2}, {"b", 1}, {"c", 1}}
	if len(got) != len(want) {
		t.Fatalf("%d pieces, want %d: %+v", len(got), len(want), got)
	}
	total := 0
	for i, w := range want {
		if got[i].pack != w.pack || len(got[i].locs) != w.n {
			t.Errorf("piece %d: pack %s with %d blobs, want %s with %d", i, got[i].pack, len(got[i].locs), w.pack, w.n)
		}
		total += len(got[i].locs)
		if l := got[i].locs; len(l) > 1 && l[len(l)-1].Offset+uint64(l[len(l)-1].Length)-l[0].Offset > pieceBytes {
			t.Errorf("piece %d spans more than %d bytes", i, pieceBytes)
		}
	}
	if total != 8 {
		t.Errorf("pieces hold %d blobs, want every one of the 8", total)
	}
}
