package format

import (
	"fmt"
	"testing"
)

// sourceTree is a directory as a source tree has them: n small files of
// one owner, each one chunk.
func sourceTree(n int) *Tree {
	tr := &Tree{}
	for i := range n {
		nd := Node{
			Name: fmt.Appendf(nil, "file-%05d.c", i), Type: TypeFile, Mode: 0o644, UID: 1000, GID: 1000,
			User: "builder", Group: "builder", MTime: 1700000000123456789 + int64(i), ATime: 1700000000123456789,
			CTime: 1700000000123456789 + int64(i), Size: uint64(1000 + i), Inode: uint64(500000 + i), Dev: 2049, Links: 1,
			Chunks: []Chunk{{Size: uint32(1000 + i)}},
		}
		nd.Chunks[0].ID[0], nd.Chunks[0].ID[1] = byte(i), byte(i>>8)
		tr.Nodes = append(tr.Nodes, nd)
	}
	return tr
}

func BenchmarkDecodeSourceTree(b *testing.B) {
	enc := encodeTree(b, sourceTree(200))
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeTree(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSourceTree(b *testing.B) {
	tr := sourceTree(200)
	enc := encodeTree(b, tr)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if enc, err = tr.AppendEncode(enc[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSizeHint checks that a typical tree encodes in one allocation,
// without reserving much more than it needs.
func TestSizeHint(t *testing.T) {
	tr := sourceTree(200)
	n := len(encodeTree(t, tr))
	if h := tr.sizeHint(); h < n || h > n*3/2 {
		t.Fatalf("sizeHint: got %d for an encoding of %d bytes, want %d to %d", h, n, n, n*3/2)
	}
}
