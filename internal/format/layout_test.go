package format

import (
	"bytes"
	"errors"
	"testing"
)

// materialize builds a file's bytes from its layout and chunk contents,
// once through AppendChunkPieces and once through At.
func materialize(t *testing.T, l *Layout, chunks [][]byte) ([]byte, []byte) {
	t.Helper()
	a := make([]byte, l.Size())
	for i, c := range chunks {
		for _, p := range l.AppendChunkPieces(nil, i) {
			copy(a[p.FileOff:p.FileOff+p.Len], c[p.ChunkOff:p.ChunkOff+p.Len])
		}
	}
	b := make([]byte, l.Size())
	for off := uint64(0); off < l.Size(); {
		i, co, n := l.At(off)
		if n == 0 {
			t.Fatalf("At(%d) made no progress", off)
		}
		if i >= 0 {
			copy(b[off:off+n], chunks[i][co:co+n])
		}
		off += n
	}
	return a, b
}

func TestLayout(t *testing.T) {
	chunks := [][]byte{[]byte("abcde"), []byte("fgh"), []byte("ijklmn")}
	nodeChunks := func() []Chunk {
		var cs []Chunk
		for _, c := range chunks {
			cs = append(cs, Chunk{Size: uint32(len(c))})
		}
		return cs
	}
	tests := []struct {
		name string
		size uint64
		ext  []Extent
		want string
	}{
		{"dense", 14, nil, "abcdefghijklmn"},
		{"holes", 24, []Extent{{2, 4}, {10, 7}, {20, 3}}, "\x00\x00abcd\x00\x00\x00\x00efghijk\x00\x00\x00lmn\x00"},
		{"tail data", 16, []Extent{{2, 14}}, "\x00\x00abcdefghijklmn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := NewLayout(&Node{Size: tt.size, Extents: tt.ext, Chunks: nodeChunks()})
			if err != nil {
				t.Fatal(err)
			}
			a, b := materialize(t, l, chunks)
			if string(a) != tt.want || !bytes.Equal(a, b) {
				t.Errorf("got %q and %q, want %q", a, b, tt.want)
			}
		})
	}
	bad := []*Node{
		{Size: 13, Chunks: nodeChunks()},
		{Size: 30, Extents: []Extent{{0, 10}, {5, 4}}, Chunks: nodeChunks()},
		{Size: 10, Extents: []Extent{{0, 14}}, Chunks: nodeChunks()},
		{Size: 30, Extents: []Extent{{0, 13}}, Chunks: nodeChunks()},
	}
	for i, n := range bad {
		if _, err := NewLayout(n); !errors.Is(err, ErrLayout) {
			t.Errorf("bad layout %d: got %v, want ErrLayout", i, err)
		}
	}
	l, err := NewLayout(&Node{Size: 1 << 40, Extents: []Extent{{1 << 40, 0}}})
	if err != nil || !l.Sparse() {
		t.Fatalf("all-hole file: %v, sparse %v", err, l != nil && l.Sparse())
	}
	if i, _, n := l.At(5); i != -1 || n != 1<<40-5 {
		t.Errorf("At in all-hole file: got %d, %d", i, n)
	}
}

// A dense file of one chunk, most files, has a layout of one allocation,
// and its pieces need none when appended to a caller's array.
func TestLayoutAllocations(t *testing.T) {
	n := &Node{Size: 5, Chunks: []Chunk{{Size: 5}}}
	if got := testing.AllocsPerRun(100, func() { _, _ = NewLayout(n) }); got != 1 {
		t.Errorf("NewLayout of a one-chunk file: %v allocations, want 1", got)
	}
	l, err := NewLayout(n)
	if err != nil {
		t.Fatal(err)
	}
	var arr [2]Piece
	if got := testing.AllocsPerRun(100, func() { _ = l.AppendChunkPieces(arr[:0], 0) }); got != 0 {
		t.Errorf("AppendChunkPieces into room enough: %v allocations, want 0", got)
	}
}

// AppendChunkPieces appends after what dst holds, for dense and sparse
// files alike.
func TestAppendChunkPieces(t *testing.T) {
	cs := []Chunk{{Size: 5}, {Size: 3}}
	dense, err := NewLayout(&Node{Size: 8, Chunks: cs})
	if err != nil {
		t.Fatal(err)
	}
	sparse, err := NewLayout(&Node{Size: 20, Extents: []Extent{{2, 4}, {10, 4}}, Chunks: cs})
	if err != nil {
		t.Fatal(err)
	}
	mark := Piece{FileOff: 99}
	for _, tt := range []struct {
		name string
		l    *Layout
		i    int
		want []Piece
	}{
		{"dense 0", dense, 0, []Piece{{0, 0, 5}}},
		{"dense 1", dense, 1, []Piece{{5, 0, 3}}},
		{"sparse 0", sparse, 0, []Piece{{2, 0, 4}, {10, 4, 1}}},
		{"sparse 1", sparse, 1, []Piece{{11, 0, 3}}},
	} {
		got := tt.l.AppendChunkPieces([]Piece{mark}, tt.i)
		want := append([]Piece{mark}, tt.want...)
		if len(got) != len(want) {
			t.Fatalf("%s: got %v, want %v", tt.name, got, want)
		}
		for k := range got {
			if got[k] != want[k] {
				t.Fatalf("%s: got %v, want %v", tt.name, got, want)
			}
		}
	}
}
