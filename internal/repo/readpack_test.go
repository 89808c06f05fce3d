package repo_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// packVault serves ReadPack from memory; other methods are not used.
type packVault struct {
	vaultapi.Vault
	packs map[string][]byte
}

func (v packVault) ReadPack(_ context.Context, name string, off, n int64) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(v.packs[name][off : off+n])), nil
}

func TestGroupByPack(t *testing.T) {
	locs := []vaultapi.Location{
		{Pack: "b", Offset: 30}, {Pack: "a", Offset: 20}, {Pack: ""}, {Pack: "b", Offset: 10},
		{Pack: "a", Offset: 5}, {Pack: "c", Offset: 0},
	}
	names, by := repo.GroupByPack(locs)
	if got := len(names); got != 3 || names[0] != "a" || names[1] != "b" || names[2] != "c" {
		t.Fatalf("packs %v, want [a b c]", names)
	}
	for p, want := range map[string][]uint64{"a": {5, 20}, "b": {10, 30}, "c": {0}} {
		var got []uint64
		for _, l := range by[p] {
			got = append(got, l.Offset)
		}
		if len(got) != len(want) || got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
			t.Errorf("pack %s: offsets %v, want %v", p, got, want)
		}
	}
	// The packs' slices share one array; appending to one must not
	// overwrite the next.
	_ = append(by["a"], vaultapi.Location{Pack: "x"})
	if by["b"][0].Pack != "b" {
		t.Errorf("appending to pack a's locations overwrote pack b's: %v", by["b"])
	}
	if locs[0].Pack != "b" || locs[1].Pack != "a" {
		t.Errorf("GroupByPack reordered its argument: %v", locs)
	}
}

// ReadBlobs gives each blob its bytes, and grows a reused buffer in whole
// MiB rather than to each new longest read; a nil buffer gets the exact
// length.
func TestReadBlobsBuffer(t *testing.T) {
	keys, _ := format.NewKeys(rand.Reader)
	pack := make([]byte, 3<<20)
	if _, err := rand.Read(pack); err != nil {
		t.Fatal(err)
	}
	r, err := repo.New(packVault{packs: map[string][]byte{"p": pack}}, keys)
	if err != nil {
		t.Fatal(err)
	}
	read := func(buf []byte, locs ...vaultapi.Location) []byte {
		t.Helper()
		got := 0
		buf, err := r.ReadBlobs(context.Background(), "p", locs, buf, func(l vaultapi.Location, sealed []byte) error {
			if !bytes.Equal(sealed, pack[l.Offset:l.Offset+uint64(l.Length)]) {
				t.Errorf("blob at %d: wrong bytes", l.Offset)
			}
			got++
			return nil
		})
		if err != nil || got != len(locs) {
			t.Fatalf("ReadBlobs: %d of %d blobs, %v", got, len(locs), err)
		}
		return buf
	}
	buf := read(nil, vaultapi.Location{Pack: "p", Offset: 100, Length: 1000})
	if cap(buf) != 1000 {
		t.Errorf("a nil buffer grew to %d bytes, want 1000", cap(buf))
	}
	buf = read(buf, vaultapi.Location{Pack: "p", Offset: 0, Length: 500}, vaultapi.Location{Pack: "p", Offset: 600, Length: 1 << 20})
	if cap(buf) != 2<<20 {
		t.Errorf("a reused buffer grew to %d bytes, want %d", cap(buf), 2<<20)
	}
	before := &buf[:1][0]
	buf = read(buf, vaultapi.Location{Pack: "p", Offset: 5, Length: 1<<20 + 10000})
	if &buf[:1][0] != before {
		t.Error("a buffer large enough was replaced")
	}
}
