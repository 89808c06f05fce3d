package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func encodeTree(t testing.TB, tr *Tree) []byte {
	t.Helper()
	b, err := tr.AppendEncode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTreeEncodeDeterministic(t *testing.T) {
	want := encodeTree(t, goldenTree(t))
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		tr := goldenTree(t)
		r.Shuffle(len(tr.Nodes), func(i, j int) { tr.Nodes[i], tr.Nodes[j] = tr.Nodes[j], tr.Nodes[i] })
		SortNodes(tr.Nodes)
		if got := encodeTree(t, tr); !bytes.Equal(got, want) {
			t.Fatalf("encoding depends on the input order:\ngot  %x\nwant %x", got, want)
		}
	}
	// Appends to b.
	got, err := goldenTree(t).AppendEncode([]byte("x"))
	if err != nil || !bytes.Equal(got[1:], want) || got[0] != 'x' {
		t.Fatalf("AppendEncode does not append")
	}
}

func TestTreeEmpty(t *testing.T) {
	b := encodeTree(t, &Tree{})
	if !bytes.Equal(b, []byte{treeMagic, 0}) {
		t.Fatalf("empty tree encodes as %x, want 0100", b)
	}
	tr, err := DecodeTree(b)
	if err != nil || len(tr.Nodes) != 0 {
		t.Fatalf("decode empty tree: %v, %v", tr, err)
	}
}

func TestTreeEncodeErrors(t *testing.T) {
	n := func(name string) Node { return Node{Name: []byte(name), Type: TypeFile} }
	for _, tc := range []struct {
		name  string
		nodes []Node
		want  string
	}{
		{"unsorted", []Node{n("b"), n("a")}, "not sorted"},
		{"duplicate", []Node{n("a"), n("a")}, "not sorted"},
		{"empty name", []Node{n("")}, "empty name"},
		{"zero-size chunk", []Node{{Name: []byte("f"), Chunks: []Chunk{{Size: 0}}}}, "chunk of 0"},
		{"huge chunk", []Node{{Name: []byte("f"), Chunks: []Chunk{{Size: MaxPlain + 1}}}}, "chunk of"},
	} {
		_, err := (&Tree{Nodes: tc.nodes}).AppendEncode(nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// node encodes one tree entry from raw field bytes.
func rawTree(entries ...[]byte) []byte {
	b := []byte{treeMagic}
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	return b
}

func field(tag, wire uint64, payload ...byte) []byte {
	b := binary.AppendUvarint(nil, tag<<3|wire)
	if wire == wireBytes {
		b = binary.AppendUvarint(b, uint64(len(payload)))
	}
	return append(b, payload...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func varintBytes(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func TestDecodeTreeRejects(t *testing.T) {
	name := field(tagName, wireBytes, 'a')
	id := bytes.Repeat([]byte{7}, 32)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty input", nil},
		{"version 2", []byte{2, 0}},
		{"no count", []byte{treeMagic}},
		{"count past input", []byte{treeMagic, 5, 4, 0x0a, 1, 'a'}},
		{"trailing bytes", append(rawTree(name), 0)},
		{"entry length past input", []byte{treeMagic, 1, 9, 0x0a, 1, 'a'}},
		{"name missing", rawTree(cat(field(tagType, wireVarint, 1), field(tagMode, wireVarint, 1), field(tagUID, wireVarint, 1)))},
		{"empty name", rawTree(cat(field(tagName, wireBytes), field(tagType, wireVarint, 1), field(tagMode, wireVarint, 1)))},
		{"unsorted names", rawTree(field(tagName, wireBytes, 'b', 'b'), field(tagName, wireBytes, 'a', 'a'))},
		{"duplicate names", rawTree(field(tagName, wireBytes, 'a', 'a'), field(tagName, wireBytes, 'a', 'a'))},
		{"tag 0", rawTree(cat(name, field(0, wireVarint, 1)))},
		{"fields out of order", rawTree(cat(name, field(tagMode, wireVarint, 1), field(tagType, wireVarint, 1)))},
		{"field repeated", rawTree(cat(name, field(tagType, wireVarint, 1), field(tagType, wireVarint, 2)))},
		{"name repeated", rawTree(cat(name, name))},
		{"unknown wire type", rawTree(cat(name, field(tagType, 1, 1, 2, 3, 4, 5, 6, 7, 8)))},
		{"unknown wire type, unknown tag", rawTree(cat(name, field(99, 5, 1, 2, 3, 4)))},
		{"wrong wire type", rawTree(cat(name, field(tagType, wireBytes, 1)))},
		{"bytes for varint field", rawTree(cat(name, field(tagMTime, wireBytes, 1)))},
		{"varint for bytes field", rawTree(cat(field(tagName, wireVarint, 1)))},
		{"explicit zero", rawTree(cat(name, field(tagMode, wireVarint, 0)))},
		{"non-minimal varint", rawTree(cat(name, field(tagMode, wireVarint, 0x81, 0x00)))},
		{"non-minimal length", []byte{treeMagic, 1, 0x84, 0x00, 0x0a, 1, 'a'}},
		{"non-minimal count", []byte{treeMagic, 0x81, 0x00, 4, 0x0a, 1, 'a'}},
		{"truncated varint", rawTree(cat(name, []byte{tagMode << 3, 0x80}))},
		{"varint overflow", rawTree(cat(name, field(tagSize, wireVarint, bytes.Repeat([]byte{0xff}, 10)...), []byte{1}))},
		{"type past 255", rawTree(cat(name, field(tagType, wireVarint, varintBytes(256)...)))},
		{"mode past 32 bits", rawTree(cat(name, field(tagMode, wireVarint, varintBytes(1<<32)...)))},
		{"uid past 32 bits", rawTree(cat(name, field(tagUID, wireVarint, varintBytes(1<<32)...)))},
		{"links past 32 bits", rawTree(cat(name, field(tagLinks, wireVarint, varintBytes(1<<32)...)))},
		{"empty user", rawTree(cat(name, field(tagUser, wireBytes)))},
		{"empty group", rawTree(cat(name, field(tagGroup, wireBytes)))},
		{"short subtree", rawTree(cat(name, field(tagSubtree, wireBytes, id[:31]...)))},
		{"zero subtree", rawTree(cat(name, field(tagSubtree, wireBytes, make([]byte, 32)...)))},
		{"short chunk", rawTree(cat(name, field(tagChunk, wireBytes, id...)))},
		{"chunk of 0 bytes", rawTree(cat(name, field(tagChunk, wireBytes, append(id, 0)...)))},
		{"chunk past MaxPlain", rawTree(cat(name, field(tagChunk, wireBytes, append(id, varintBytes(MaxPlain+1)...)...)))},
		{"chunk with trailing bytes", rawTree(cat(name, field(tagChunk, wireBytes, append(id, 1, 0)...)))},
		{"xattr name past value", rawTree(cat(name, field(tagXattr, wireBytes, 5, 'a')))},
		{"extent with one varint", rawTree(cat(name, field(tagExtent, wireBytes, 1)))},
		{"extent with three varints", rawTree(cat(name, field(tagExtent, wireBytes, 1, 2, 3)))},
		{"field length past entry", rawTree(cat(name, []byte{tagTarget<<3 | wireBytes, 9, 'x'}))},
	} {
		tr, err := DecodeTree(tc.b)
		if !errors.Is(err, ErrTree) {
			t.Errorf("%s: %x: got %+v, %v; want ErrTree", tc.name, tc.b, tr, err)
		}
	}
}

// TestDecodeTreeSkipsNewFields checks the forward-compatibility rule: a
// field with a tag this version does not know is skipped, whatever its
// payload, if its wire type is known and the tag order holds.
func TestDecodeTreeSkipsNewFields(t *testing.T) {
	base := Node{Name: []byte("a"), Type: TypeFile, Mode: 0o644, Extents: []Extent{{1, 2}}}
	enc := encodeTree(t, &Tree{Nodes: []Node{base}})
	var fields []byte
	fields = base.appendFields(fields)
	withNew := rawTree(cat(fields,
		field(tagExtent+1, wireVarint, 0), // zero is fine for fields this version does not know
		field(tagExtent+1, wireBytes, 'x', 'y'),
		field(1000, wireBytes, bytes.Repeat([]byte{0xff}, 300)...),
	))
	got, err := DecodeTree(withNew)
	if err != nil {
		t.Fatal(err)
	}
	want, err := DecodeTree(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Nodes, want.Nodes) {
		t.Fatalf("with new fields: got %+v, want %+v", got, want)
	}
	if !got.SkippedFields() || want.SkippedFields() {
		t.Fatalf("SkippedFields: got %v with new fields, %v without; want true, false", got.SkippedFields(), want.SkippedFields())
	}
	// A new field must still come after the known ones.
	bad := rawTree(cat(field(tagName, wireBytes, 'a'), field(tagExtent+1, wireVarint, 1), field(tagType, wireVarint, 1)))
	if _, err := DecodeTree(bad); !errors.Is(err, ErrTree) {
		t.Fatalf("known field after a new one: %v, want ErrTree", err)
	}
}

// TestTreeRoundTripRandom encodes random trees and decodes them back.
func TestTreeRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		tr := randomTree(r)
		enc := encodeTree(t, tr)
		got, err := DecodeTree(enc)
		if err != nil {
			t.Fatalf("decode: %v\n%x", err, enc)
		}
		if again := encodeTree(t, got); !bytes.Equal(again, enc) {
			t.Fatalf("re-encoding differs")
		}
		normalize(tr)
		if !reflect.DeepEqual(got, tr) {
			t.Fatalf("round trip:\ngot  %+v\nwant %+v", got, tr)
		}
	}
}

// normalize turns the nil slices that decode as empty ones into empty
// slices and drops what encoding omits.
func normalize(tr *Tree) {
	if tr.Nodes == nil {
		tr.Nodes = []Node{}
	}
	for i := range tr.Nodes {
		n := &tr.Nodes[i]
		for j := range n.Xattrs {
			if n.Xattrs[j].Value == nil {
				n.Xattrs[j].Value = []byte{}
			}
		}
	}
}

func randomTree(r *rand.Rand) *Tree {
	bs := func(max int) []byte {
		b := make([]byte, r.IntN(max+1))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	u := func() uint64 {
		if r.IntN(3) == 0 {
			return 0
		}
		return r.Uint64() >> r.IntN(64)
	}
	s := func() int64 { return int64(u()) * int64(1-2*r.IntN(2)) }
	var tr Tree
	for range r.IntN(20) {
		n := Node{
			Name: append(bs(20), 'n'), Type: NodeType(u()), Mode: uint32(u()), UID: uint32(u()), GID: uint32(u()),
			User: string(bs(8)), Group: string(bs(8)), MTime: s(), ATime: s(), CTime: s(),
			Size: u(), Inode: u(), Dev: u(), Links: uint32(u()), Rdev: u(), LinkGroup: u(),
		}
		if r.IntN(2) == 0 {
			n.Target = bs(30)
		}
		if r.IntN(2) == 0 {
			copy(n.Subtree[:], append(bs(32), 1))
			n.Subtree[0] |= 1
		}
		for range r.IntN(4) {
			var c Chunk
			copy(c.ID[:], bs(32))
			c.Size = 1 + uint32(r.IntN(MaxPlain))
			n.Chunks = append(n.Chunks, c)
		}
		for range r.IntN(3) {
			n.Xattrs = append(n.Xattrs, Xattr{Name: string(bs(10)), Value: bs(10)})
		}
		for range r.IntN(3) {
			n.Extents = append(n.Extents, Extent{Off: u(), Len: u()})
		}
		tr.Nodes = append(tr.Nodes, n)
	}
	SortNodes(tr.Nodes)
	tr.Nodes = uniqueNames(tr.Nodes)
	return &tr
}

func uniqueNames(nodes []Node) []Node {
	out := nodes[:0]
	for i, n := range nodes {
		if i > 0 && bytes.Equal(nodes[i-1].Name, n.Name) {
			continue
		}
		out = append(out, n)
	}
	return out
}

func TestNodeTypeString(t *testing.T) {
	for typ, want := range map[NodeType]string{TypeFile: "file", TypeDir: "dir", TypeSymlink: "symlink",
		TypeFIFO: "fifo", TypeCharDev: "chardev", TypeBlockDev: "blockdev", TypeSocket: "socket", 99: "type(99)"} {
		if got := typ.String(); got != want {
			t.Errorf("%d: got %q, want %q", typ, got, want)
		}
	}
}

// TestTreeSpecExample pins the worked example of doc/FORMAT.md, "Trees".
func TestTreeSpecExample(t *testing.T) {
	tr := &Tree{Nodes: []Node{{Name: []byte("a"), Type: TypeFile, Mode: 0o644, MTime: -1}}}
	want := mustHex(t, "01 01 0a 0a0161 1001 18a403 4001")
	if got := encodeTree(t, tr); !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
}
