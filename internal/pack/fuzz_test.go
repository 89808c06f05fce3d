package pack

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Run with go test ./internal/pack -run '^$' -fuzz FuzzParsePack -fuzztime 60s.

func packSeeds(t testing.TB) [][]byte {
	w := NewWriter(nil)
	w.Add(vaultapi.KindTree, vaultapi.ID{9}, []byte("t"))
	w.Add(vaultapi.KindInfo, vaultapi.ID{8}, []byte("info"))
	g := NewWriter(nil)
	g.Add(vaultapi.KindData, vaultapi.ID{7}, []byte("blob"))
	if err := g.AddGroupFunc(vaultapi.KindData, []vaultapi.ID{{1}, {2}, {3}}, func(dst []byte) ([]byte, error) {
		return append(dst, "group"...), nil
	}); err != nil {
		t.Fatal(err)
	}
	return [][]byte{goldenPack(t).Data, w.Finish().Data, g.Finish().Data}
}

// checkEntries checks what Parse and ParseTrailer promise for a pack of
// size bytes whose trailer is trailer.
func checkEntries(t *testing.T, entries []vaultapi.PackEntry, trailer []byte, size int64) {
	t.Helper()
	if len(entries) == 0 || TrailerSize(len(entries)) != len(trailer) {
		t.Fatalf("%d entries from a %d-byte trailer", len(entries), len(trailer))
	}
	next := uint64(HeaderSize)
	for i, e := range entries {
		if !e.Kind.Valid() || (e.Kind == vaultapi.KindData) != (entries[0].Kind == vaultapi.KindData) {
			t.Fatalf("entry %d: %+v", i, e)
		}
		if i > 0 && e.Offset == entries[i-1].Offset && e.Length == entries[i-1].Length {
			// A group's next chunk: same kind, a greater ID.
			if p := entries[i-1]; e.Kind != p.Kind || e.ID.Compare(p.ID) <= 0 {
				t.Fatalf("group entry %d: %+v after %+v", i, e, p)
			}
			continue
		}
		if e.Offset != next || e.Length == 0 {
			t.Fatalf("entry %d: %+v", i, e)
		}
		next += uint64(e.Length)
	}
	if int64(next)+int64(len(trailer)) != size {
		t.Fatalf("blobs end at %d, trailer of %d in %d bytes", next, len(trailer), size)
	}
	if again := AppendTrailer(nil, entries); !bytes.Equal(again, trailer) {
		t.Fatalf("trailer does not re-encode:\n%x\n%x", trailer, again)
	}
}

func FuzzParsePack(f *testing.F) {
	for _, b := range packSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Parse(data)
		if err != nil {
			return
		}
		checkEntries(t, entries, data[len(data)-TrailerSize(len(entries)):], int64(len(data)))
		if CheckHeader(data) != nil {
			t.Fatal("parsed a pack with a bad header")
		}
	})
}

func FuzzParseTrailer(f *testing.F) {
	for _, b := range packSeeds(f) {
		n, err := ParseTail(b[len(b)-TailSize:], int64(len(b)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[len(b)-TrailerSize(n):], int64(len(b)))
	}
	f.Fuzz(func(t *testing.T, trailer []byte, size int64) {
		if len(trailer) >= TailSize {
			_, _ = ParseTail(trailer[len(trailer)-TailSize:], size)
		}
		entries, err := ParseTrailer(trailer, size)
		if err != nil {
			return
		}
		checkEntries(t, entries, trailer, size)
	})
}

// TestWriteFuzzSeeds writes the seeds above to testdata/fuzz with -update.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		return
	}
	for i, b := range packSeeds(t) {
		n, err := ParseTail(b[len(b)-TailSize:], int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		writeSeed(t, "FuzzParsePack", i, fmt.Sprintf("[]byte(%s)\n", strconv.Quote(string(b))))
		writeSeed(t, "FuzzParseTrailer", i, fmt.Sprintf("[]byte(%s)\nint64(%d)\n",
			strconv.Quote(string(b[len(b)-TrailerSize(n):])), len(b)))
	}
}

func writeSeed(t *testing.T, name string, i int, body string) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte("go test fuzz v1\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
}
