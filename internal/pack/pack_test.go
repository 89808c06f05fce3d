package pack

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/zeebo/blake3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the current code")

// goldenBlobs are the three blobs of the golden pack. The pack format does
// not look inside blobs, so they are plain bytes here; their IDs are the
// unkeyed BLAKE3-256 of the bytes.
var goldenBlobs = [][]byte{
	[]byte("first blob"),
	bytes.Repeat([]byte{0xab}, 100),
	[]byte("third blob, the last before the trailer"),
}

func goldenPack(t testing.TB) vaultapi.Pack {
	t.Helper()
	w := NewWriter(nil)
	for _, b := range goldenBlobs {
		w.Add(vaultapi.KindData, blake3.Sum256(b), b)
	}
	return w.Finish()
}

func hexLines(b []byte) []byte {
	var out bytes.Buffer
	for len(b) > 0 {
		n := min(32, len(b))
		out.WriteString(hex.EncodeToString(b[:n]))
		out.WriteByte('\n')
		b = b[n:]
	}
	return out.Bytes()
}

// TestGoldenPack pins the pack encoding and its name. A failure means
// stored packs would change: bump Version instead of regenerating, unless
// the change is intended (then run go test -update and update doc/FORMAT.md).
func TestGoldenPack(t *testing.T) {
	p := goldenPack(t)
	path := filepath.Join("testdata", "pack-3-blobs.hex")
	namePath := filepath.Join("testdata", "pack-3-blobs.name")
	if *update {
		if err := os.WriteFile(path, hexLines(p.Data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(namePath, []byte(p.Name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := hex.DecodeString(strings.Join(strings.Fields(string(text)), ""))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Data, pinned) {
		t.Errorf("pack encoding changed:\ngot  %x\nwant %x", p.Data, pinned)
	}
	name, err := os.ReadFile(namePath)
	if err != nil {
		t.Fatal(err)
	}
	if got := Name(pinned); got != strings.TrimSpace(string(name)) || p.Name != got {
		t.Errorf("pack name %s (writer %s), pinned %s", got, p.Name, name)
	}
	entries, err := Parse(pinned)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(entries, p.Entries) {
		t.Errorf("parsed entries %+v, writer's %+v", entries, p.Entries)
	}
	off := uint64(HeaderSize)
	for i, e := range entries {
		if e.Offset != off || !bytes.Equal(pinned[e.Offset:e.Offset+uint64(e.Length)], goldenBlobs[i]) {
			t.Errorf("entry %d: %+v", i, e)
		}
		off += uint64(e.Length)
	}
}

func TestLayout(t *testing.T) {
	p := goldenPack(t)
	d := p.Data
	if string(d[:8]) != "CFPK\x01\x00\x00\x00" {
		t.Errorf("header %q", d[:8])
	}
	if string(d[len(d)-8:]) != "\x03\x00\x00\x00CFPT" {
		t.Errorf("tail %q", d[len(d)-8:])
	}
	if len(d) != HeaderSize+10+100+39+TrailerSize(3) || TrailerSize(3) != 3*45+8 {
		t.Errorf("size %d", len(d))
	}
	// First entry: kind, ID, offset (LE 64), length (LE 32).
	e := d[len(d)-TrailerSize(3):]
	id := blake3.Sum256(goldenBlobs[0])
	if e[0] != 1 || !bytes.Equal(e[1:33], id[:]) || binary.LittleEndian.Uint64(e[33:]) != 8 || binary.LittleEndian.Uint32(e[41:]) != 10 {
		t.Errorf("first entry %x", e[:45])
	}
	if !ValidName(p.Name) || ValidName(strings.ToUpper(p.Name)) || ValidName(p.Name[1:]) || ValidName(p.Name[1:]+"g") {
		t.Error("ValidName")
	}
}

func TestWriterGroups(t *testing.T) {
	w := NewWriter(nil)
	ids := []vaultapi.ID{{1}, {2}, {3}}
	write := func(dst []byte) ([]byte, error) { return append(dst, "group"...), nil }
	if err := w.AddGroupFunc(vaultapi.KindData, ids, write); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]vaultapi.ID{nil, {{2}, {1}}, {{1}, {1}}} {
		if err := w.AddGroupFunc(vaultapi.KindData, bad, write); err == nil {
			t.Errorf("AddGroupFunc took IDs %v", bad)
		}
	}
	w.Add(vaultapi.KindData, vaultapi.ID{9}, []byte("single"))
	if w.Count() != 4 || w.Size() != HeaderSize+5+6 {
		t.Fatalf("count %d size %d", w.Count(), w.Size())
	}
	// A group of n chunks takes n trailer entries.
	limit := HeaderSize + 11 + 7 + TrailerSize(4+3)
	if !w.Fits(7, 3, limit) || w.Fits(7, 4, limit) {
		t.Error("Fits does not count a group's entries")
	}
	p := w.Finish()
	es, err := Parse(p.Data)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range es[:3] {
		if e.ID != ids[i] || e.Offset != HeaderSize || e.Length != 5 {
			t.Errorf("group entry %d: %+v", i, e)
		}
	}
	if es[3].Offset != HeaderSize+5 || es[3].Length != 6 {
		t.Errorf("blob after the group: %+v", es[3])
	}
}

func TestWriterCounts(t *testing.T) {
	w := NewWriter(make([]byte, 5, 100))
	if w.Size() != HeaderSize || w.Count() != 0 {
		t.Fatalf("new writer: size %d count %d", w.Size(), w.Count())
	}
	w.Add(vaultapi.KindTree, vaultapi.ID{1}, []byte("abc"))
	w.Add(vaultapi.KindInfo, vaultapi.ID{2}, []byte("de"))
	if w.Size() != HeaderSize+5 || w.Count() != 2 {
		t.Fatalf("size %d count %d", w.Size(), w.Count())
	}
	p := w.Finish()
	if _, err := Parse(p.Data); err != nil {
		t.Fatalf("metadata pack: %v", err)
	}
}

// build makes a pack from raw parts, for malformed inputs.
func build(header []byte, blobs []byte, entries []vaultapi.PackEntry) []byte {
	return AppendTrailer(append(bytes.Clone(header), blobs...), entries)
}

func TestParseRejects(t *testing.T) {
	hdr := []byte("CFPK\x01\x00\x00\x00")
	ent := func(kind vaultapi.Kind, off uint64, n uint32) vaultapi.PackEntry {
		return vaultapi.PackEntry{Kind: kind, ID: vaultapi.ID{byte(off)}, Offset: off, Length: n}
	}
	// member is an entry of a group: its ID is {id}.
	member := func(kind vaultapi.Kind, off uint64, n uint32, id byte) vaultapi.PackEntry {
		return vaultapi.PackEntry{Kind: kind, ID: vaultapi.ID{id}, Offset: off, Length: n}
	}
	d := vaultapi.KindData
	good := build(hdr, []byte("aaabb"), []vaultapi.PackEntry{ent(d, 8, 3), ent(d, 11, 2)})
	if _, err := Parse(good); err != nil {
		t.Fatalf("good pack: %v", err)
	}
	grouped := []vaultapi.PackEntry{member(d, 8, 3, 1), member(d, 8, 3, 2), member(d, 8, 3, 9), ent(d, 11, 2), member(d, 11+2, 1, 5), member(d, 13, 1, 6)}
	if es, err := Parse(build(hdr, []byte("aaabbc"), grouped)); err != nil || !slices.Equal(es, grouped) {
		t.Fatalf("pack with groups: %+v, %v", es, err)
	}
	withCount := func(b []byte, n uint32) []byte {
		b = bytes.Clone(b)
		binary.LittleEndian.PutUint32(b[len(b)-8:], n)
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"header only", hdr},
		{"garbage", bytes.Repeat([]byte("garbage!"), 20)},
		{"bad magic", append([]byte("CFPX"), good[4:]...)},
		{"version 2", append([]byte("CFPK\x02"), good[5:]...)},
		{"reserved byte set", append([]byte("CFPK\x01\x00\x01\x00"), good[8:]...)},
		{"bad trailer magic", append(bytes.Clone(good[:len(good)-1]), 'X')},
		{"no entries", build(hdr, nil, nil)},
		{"count too large", withCount(good, 3)},
		{"count too small", withCount(good, 1)},
		{"count huge", withCount(good, 1<<32-1)},
		{"truncated", good[:len(good)-1]},
		{"truncated at start", append(bytes.Clone(hdr), good[9:]...)},
		{"gap", build(hdr, []byte("aaaXbb"), []vaultapi.PackEntry{ent(d, 8, 3), ent(d, 12, 2)})},
		{"overlap", build(hdr, []byte("aaabb"), []vaultapi.PackEntry{ent(d, 8, 3), ent(d, 10, 3)})},
		{"out of order", build(hdr, []byte("aaabb"), []vaultapi.PackEntry{ent(d, 11, 2), ent(d, 8, 3)})},
		{"gap after header", build(hdr, []byte("Xaaabb"), []vaultapi.PackEntry{ent(d, 9, 3), ent(d, 12, 2)})},
		{"bytes after last blob", build(hdr, []byte("aaabbX"), []vaultapi.PackEntry{ent(d, 8, 3), ent(d, 11, 2)})},
		{"blob past trailer", build(hdr, []byte("aaabb"), []vaultapi.PackEntry{ent(d, 8, 3), ent(d, 11, 3)})},
		{"zero-length blob", build(hdr, []byte("aaa"), []vaultapi.PackEntry{ent(d, 8, 3), ent(d, 11, 0)})},
		{"kind 0", build(hdr, []byte("aaa"), []vaultapi.PackEntry{ent(0, 8, 3)})},
		{"kind 4", build(hdr, []byte("aaa"), []vaultapi.PackEntry{ent(4, 8, 3)})},
		{"data after tree", build(hdr, []byte("aaabb"), []vaultapi.PackEntry{ent(vaultapi.KindTree, 8, 3), ent(d, 11, 2)})},
		{"info after data", build(hdr, []byte("aaabb"), []vaultapi.PackEntry{ent(d, 8, 3), ent(vaultapi.KindInfo, 11, 2)})},
		{"group listing a chunk twice", build(hdr, []byte("aaabb"), []vaultapi.PackEntry{ent(d, 8, 3), ent(d, 8, 3), ent(d, 11, 2)})},
		{"group out of order", build(hdr, []byte("aaabb"), []vaultapi.PackEntry{member(d, 8, 3, 2), member(d, 8, 3, 1), ent(d, 11, 2)})},
		{"group of two kinds", build(hdr, []byte("aaabb"), []vaultapi.PackEntry{member(vaultapi.KindTree, 8, 3, 1), member(vaultapi.KindInfo, 8, 3, 2), ent(vaultapi.KindTree, 11, 2)})},
		{"group member of another length", build(hdr, []byte("aaabb"), []vaultapi.PackEntry{member(d, 8, 3, 1), member(d, 8, 2, 2), ent(d, 11, 2)})},
		{"group apart", build(hdr, []byte("aaabb"), []vaultapi.PackEntry{member(d, 8, 3, 1), ent(d, 11, 2), member(d, 8, 3, 2)})},
	} {
		if e, err := Parse(tc.b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: got %+v, %v; want ErrFormat", tc.name, e, err)
		}
	}
}

// TestParseTrailerReadsFromTheEnd follows what a reader of a stored pack
// does: read the tail, then the trailer, from the end of the object.
func TestParseTrailerReadsFromTheEnd(t *testing.T) {
	p := goldenPack(t)
	size := int64(len(p.Data))
	if err := CheckHeader(p.Data[:HeaderSize]); err != nil {
		t.Fatal(err)
	}
	n, err := ParseTail(p.Data[size-TailSize:], size)
	if err != nil || n != 3 {
		t.Fatalf("ParseTail: %d, %v", n, err)
	}
	entries, err := ParseTrailer(p.Data[size-int64(TrailerSize(n)):], size)
	if err != nil || !reflect.DeepEqual(entries, p.Entries) {
		t.Fatalf("ParseTrailer: %+v, %v", entries, err)
	}
	for _, tc := range []struct {
		name    string
		trailer []byte
		size    int64
	}{
		{"pack size too small", p.Data[size-int64(TrailerSize(n)):], size - 1},
		{"pack size too large", p.Data[size-int64(TrailerSize(n)):], size + 1},
		{"negative size", p.Data[size-int64(TrailerSize(n)):], -1},
		{"trailer with an extra byte", p.Data[size-int64(TrailerSize(n))-1:], size},
		{"trailer short", p.Data[size-int64(TrailerSize(n))+1:], size},
		{"tail only", p.Data[size-TailSize:], size},
		{"too short", p.Data[size-3:], size},
	} {
		if _, err := ParseTrailer(tc.trailer, tc.size); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", tc.name, err)
		}
	}
}

func TestLargePack(t *testing.T) {
	w := NewWriter(nil)
	blob := make([]byte, 1<<20)
	for i := 0; w.Size() < TargetSize; i++ {
		w.Add(vaultapi.KindData, vaultapi.ID{byte(i), byte(i >> 8)}, blob)
	}
	p := w.Finish()
	entries, err := Parse(p.Data)
	if err != nil || len(entries) != 16 || Name(p.Data) != p.Name {
		t.Fatalf("%d entries, %v", len(entries), err)
	}
}

func BenchmarkParse(b *testing.B) {
	w := NewWriter(nil)
	blob := make([]byte, 4<<10)
	for i := range 4096 {
		w.Add(vaultapi.KindData, vaultapi.ID{byte(i), byte(i >> 8)}, blob)
	}
	p := w.Finish()
	b.SetBytes(int64(TrailerSize(4096)))
	for b.Loop() {
		if _, err := Parse(p.Data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkName(b *testing.B) {
	data := make([]byte, TargetSize)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Name(data)
	}
}

func ExampleParse() {
	w := NewWriter(nil)
	w.Add(vaultapi.KindData, vaultapi.ID{1}, []byte("sealed bytes"))
	p := w.Finish()
	entries, err := Parse(p.Data)
	fmt.Println(len(p.Data), entries[0].Offset, entries[0].Length, err)
	// Output: 73 8 12 <nil>
}
