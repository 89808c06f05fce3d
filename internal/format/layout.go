package format

import (
	"errors"
	"fmt"
	"sort"
)

// Layout maps a file node's bytes to its chunks. Without extents the
// chunks, one after the other, are the file. With extents (a sparse file)
// they fill the extents in order and every other byte is a hole (zero).
type Layout struct {
	size   uint64
	ext    []Extent // never nil: a dense file is one extent
	extPos []uint64 // position in the chunk stream where each extent starts
	starts []uint64 // position in the chunk stream where each chunk starts; one more than chunks
	// Room for a dense file of at most one chunk (most files), so that its
	// layout is one allocation.
	ext1    [1]Extent
	extPos1 [1]uint64
	starts1 [2]uint64
}

// ErrLayout is wrapped by errors of inconsistent file nodes.
var ErrLayout = errors.New("file node: chunks and extents do not match the size")

// NewLayout checks that n's chunks and extents agree with its size and
// returns its layout.
func NewLayout(n *Node) (*Layout, error) {
	l := &Layout{size: n.Size}
	if len(n.Chunks) <= 1 {
		l.starts = l.starts1[:len(n.Chunks)+1]
	} else {
		l.starts = make([]uint64, len(n.Chunks)+1)
	}
	var total uint64
	for i, c := range n.Chunks {
		total += uint64(c.Size)
		l.starts[i+1] = total
	}
	if n.Extents == nil {
		if total != n.Size {
			return nil, fmt.Errorf("%w: chunks hold %d bytes, the file %d", ErrLayout, total, n.Size)
		}
		l.ext1[0] = Extent{Off: 0, Len: n.Size}
		l.ext, l.extPos = l.ext1[:], l.extPos1[:]
		return l, nil
	}
	var end, data uint64
	for _, x := range n.Extents {
		if x.Len == 0 {
			if x.Off > n.Size {
				return nil, fmt.Errorf("%w: extent beyond the end", ErrLayout)
			}
			continue
		}
		if x.Off < end || x.Off+x.Len < x.Off || x.Off+x.Len > n.Size {
			return nil, fmt.Errorf("%w: extents overlap or pass the end", ErrLayout)
		}
		l.ext = append(l.ext, x)
		l.extPos = append(l.extPos, data)
		data += x.Len
		end = x.Off + x.Len
	}
	if data != total {
		return nil, fmt.Errorf("%w: chunks hold %d bytes, the extents %d", ErrLayout, total, data)
	}
	return l, nil
}

// Size is the file's size.
func (l *Layout) Size() uint64 { return l.size }

// Sparse reports whether the file has holes.
func (l *Layout) Sparse() bool {
	return len(l.ext) != 1 || l.ext[0].Off != 0 || l.ext[0].Len != l.size
}

// Piece is a run of a file's bytes that come from one chunk.
type Piece struct {
	FileOff, ChunkOff, Len uint64
}

// AppendChunkPieces appends the runs of the file that chunk i fills to
// out and returns it.
func (l *Layout) AppendChunkPieces(out []Piece, i int) []Piece {
	s, e := l.starts[i], l.starts[i+1]
	if len(l.ext) == 1 && l.ext[0].Off == 0 && l.ext[0].Len == l.size { // dense
		return append(out, Piece{FileOff: s, ChunkOff: 0, Len: e - s})
	}
	k := sort.Search(len(l.ext), func(k int) bool { return l.extPos[k]+l.ext[k].Len > s })
	for ; s < e && k < len(l.ext); k++ {
		in := s - l.extPos[k]
		n := min(l.ext[k].Len-in, e-s)
		out = append(out, Piece{FileOff: l.ext[k].Off + in, ChunkOff: s - l.starts[i], Len: n})
		s += n
	}
	return out
}

// At says where file offset off comes from: chunk i (or -1 for a hole, or
// past the end) at offset chunkOff, and for how many bytes from off that
// stays so (0 past the end).
func (l *Layout) At(off uint64) (i int, chunkOff, n uint64) {
	if off >= l.size {
		return -1, 0, 0
	}
	k := sort.Search(len(l.ext), func(k int) bool { return l.ext[k].Off+l.ext[k].Len > off })
	if k == len(l.ext) {
		return -1, 0, l.size - off
	}
	if off < l.ext[k].Off {
		return -1, 0, l.ext[k].Off - off
	}
	s := l.extPos[k] + off - l.ext[k].Off
	i = sort.Search(len(l.starts)-1, func(i int) bool { return l.starts[i+1] > s })
	n = min(l.starts[i+1]-s, l.ext[k].Off+l.ext[k].Len-off)
	return i, s - l.starts[i], n
}
