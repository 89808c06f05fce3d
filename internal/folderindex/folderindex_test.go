package folderindex

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []testEntry
	}{
		{"empty", nil},
		{"one", severalEntries()[:1]},
		{"several", severalEntries()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := encode(tc.entries)
			ix, err := Decode(data, testMAC)
			if err != nil {
				t.Fatal(err)
			}
			if ix.Len() != len(tc.entries) {
				t.Errorf("Len = %d, want %d", ix.Len(), len(tc.entries))
			}
			if ix.Point() != testPoint || ix.Scope() != testScope {
				t.Errorf("Point, Scope = %s, %s; want %s, %s", ix.Point().Short(), ix.Scope().Short(), testPoint.Short(), testScope.Short())
			}
			for _, x := range tc.entries {
				got, ok := ix.Get(x.k)
				if !ok {
					t.Errorf("Get(%x): not found", x.k)
					continue
				}
				if !equalEntry(got, x.e) {
					t.Errorf("Get(%x) = %+v, want %+v", x.k, got, x.e)
				}
			}
			for _, k := range []Key{key(0x01), key(0x20), key(0xfe), {0x10, 0x10}} {
				if e, ok := ix.Get(k); ok {
					t.Errorf("Get(%x) = %+v for an absent key", k, e)
				}
			}
			if again := reencode(t, ix, testMAC); !bytes.Equal(again, data) {
				t.Errorf("re-encoding differs:\ngot  %x\nwant %x", again, data)
			}
		})
	}
}

// TestEncodeMatchesFormat checks Encode against the format as written in
// the package comment, built by hand.
func TestEncodeMatchesFormat(t *testing.T) {
	entries := severalEntries()
	want := newRaw(uint64(len(entries)))
	// Key order by hand: key(0x00), k1, k2, key(0x30), key(0xff).
	for _, i := range []int{4, 3, 1, 0, 2} {
		want.entry(entries[i].k, entries[i].e)
	}
	if got := encode(entries); !bytes.Equal(got, seal(want.Bytes())) {
		t.Errorf("Encode:\ngot  %x\nwant %x", got, seal(want.Bytes()))
	}
}

// TestGolden pins the encoding of severalEntries under testMAC in
// testdata/several.hex; rewrite it with go test -update only when the
// format changes on purpose (and then change version).
func TestGolden(t *testing.T) {
	got := encode(severalEntries())
	path := filepath.Join("testdata", "several.hex")
	if *update {
		var out strings.Builder
		for b := got; len(b) > 0; b = b[min(32, len(b)):] {
			out.WriteString(hex.EncodeToString(b[:min(32, len(b))]) + "\n")
		}
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	want, err := hex.DecodeString(strings.Join(strings.Fields(string(text)), ""))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoding changed:\ngot  %x\nwant %x", got, want)
	}
	if _, err := Decode(want, testMAC); err != nil {
		t.Errorf("the pinned file does not decode: %v", err)
	}
}

func TestNilIndex(t *testing.T) {
	var ix *Index
	if _, ok := ix.Get(key(1)); ok {
		t.Error("Get on a nil Index found an entry")
	}
	if ix.Len() != 0 || !ix.Point().IsZero() || !ix.Scope().IsZero() {
		t.Errorf("nil Index: Len %d, Point %s, Scope %s; want 0 and zero IDs", ix.Len(), ix.Point().Short(), ix.Scope().Short())
	}
}

func TestGetChunksDoNotOverlap(t *testing.T) {
	ix, err := Decode(encode(severalEntries()), testMAC)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := ix.Get(key(0x00))
	_ = append(e.Chunks, id(0x99)) // must not write into the next entry's chunks
	k1 := key(0x10)
	if e, _ := ix.Get(k1); e.Chunks != nil {
		t.Errorf("Get(%x).Chunks = %v, want nil for an entry without chunks", k1, e.Chunks)
	}
	if got, _ := ix.Get(key(0x30)); got.Chunks[0] != id(0x31) {
		t.Errorf("appending to one entry's chunks changed another's")
	}
}

func TestBuilderReplaces(t *testing.T) {
	b := NewBuilder()
	b.Add(key(1), Entry{FP: fp(1), Tree: id(1), Chunks: []vaultapi.ID{id(1)}})
	b.Add(key(2), Entry{FP: fp(2), Tree: id(2)})
	later := Entry{FP: fp(9), Tree: id(9), Chunks: []vaultapi.ID{id(9), id(9)}}
	b.Add(key(1), later)
	if b.Len() != 2 {
		t.Errorf("Len = %d, want 2", b.Len())
	}
	ix, err := Decode(b.Encode(testPoint, testScope, testMAC), testMAC)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ix.Get(key(1)); !equalEntry(got, later) {
		t.Errorf("Get = %+v, want the later Add %+v", got, later)
	}
}

func TestBuilderZeroValue(t *testing.T) {
	var b Builder
	if b.Len() != 0 {
		t.Errorf("Len = %d, want 0", b.Len())
	}
	if got, want := b.Encode(testPoint, testScope, testMAC), encode(nil); !bytes.Equal(got, want) {
		t.Errorf("zero Builder encodes %x, want %x", got, want)
	}
	b.Add(key(1), Entry{})
	if b.Len() != 1 {
		t.Errorf("Len = %d, want 1", b.Len())
	}
}

func TestBuilderConcurrent(t *testing.T) {
	const workers, each = 8, 100
	b := NewBuilder()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				k := Key{byte(w), byte(i)}
				b.Add(k, Entry{FP: fp(byte(i)), Tree: id(byte(w)), Chunks: []vaultapi.ID{id(byte(i))}})
				if i%10 == 0 {
					_ = b.Len()
					_ = b.Encode(testPoint, testScope, testMAC)
				}
			}
		})
	}
	wg.Wait()
	if b.Len() != workers*each {
		t.Fatalf("Len = %d, want %d", b.Len(), workers*each)
	}
	ix, err := Decode(b.Encode(testPoint, testScope, testMAC), testMAC)
	if err != nil {
		t.Fatal(err)
	}
	for w := range workers {
		for i := range each {
			k := Key{byte(w), byte(i)}
			want := Entry{FP: fp(byte(i)), Tree: id(byte(w)), Chunks: []vaultapi.ID{id(byte(i))}}
			if got, ok := ix.Get(k); !ok || !equalEntry(got, want) {
				t.Fatalf("Get(%x) = %+v, %v; want %+v", k, got, ok, want)
			}
		}
	}
}

func ExampleBuilder() {
	mac := testMAC // in Coffer, a keyed hash under the machine's keys
	b := NewBuilder()
	b.Add(Key{1}, Entry{FP: FP{7}, Tree: vaultapi.ID{2}, Chunks: []vaultapi.ID{{3}, {4}}})
	ix, err := Decode(b.Encode(vaultapi.ID{5}, vaultapi.ID{6}, mac), mac)
	if err != nil {
		fmt.Println(err)
		return
	}
	e, ok := ix.Get(Key{1})
	fmt.Println(ok, e.FP == FP{7}, len(e.Chunks), ix.Point().Short())
	// Output: true true 2 05000000
}
