package chunker

import (
	"encoding/binary"

	"github.com/zeebo/blake3"
)

// Chunk size limits. Every chunk but the last of a stream is at least MinSize
// and at most MaxSize bytes long; the normalization point is AvgSize.
const (
	MinSize = 256 << 10
	AvgSize = 1 << 20
	MaxSize = 4 << 20
)

// GearContext is the BLAKE3 derive_key context string from which the gear
// table is derived. Changing it changes every chunk boundary.
const GearContext = "coffer 2026-11-23 chunker gear table v1"

// Masks of the normalized cut rule. Before AvgSize a candidate cut must have
// the 22 bits of maskS clear (probability 2^-22, "harder"); from AvgSize on,
// the 18 bits of maskL (probability 2^-18, "easier"). That is normalization
// level 2 around log2(AvgSize) = 20 bits. The bits are the highest ones below
// bit 63: bit k of the gear hash depends on the last k+1 bytes, so these bits
// see a window of 42 to 63 bytes; bit 63 is left out so that the hash can be
// rolled two bytes at a time with masks shifted left by one.
const (
	maskS uint64 = 0x7fff_fe00_0000_0000 // bits 41..62, 22 bits
	maskL uint64 = 0x7fff_e000_0000_0000 // bits 45..62, 18 bits
)

// window is the number of bytes the gear hash depends on. Hashing starts
// window bytes before MinSize so that the hash at every candidate position is
// a function of the 64 bytes ending there, independent of where the chunk began.
const window = 64

// Table is a keyed gear table; safe for concurrent use once built.
type Table struct {
	gear  [256]uint64
	gear2 [256]uint64 // gear shifted left by one, for rolling two bytes at once
}

// NewTable derives the gear table from a machine's 32-byte chunker seed:
// entry i is bytes 8i..8i+7, little-endian, of the 2048-byte output of
// BLAKE3 in derive_key mode with context GearContext and key material seed.
func NewTable(seed [32]byte) *Table {
	var out [256 * 8]byte
	blake3.DeriveKey(GearContext, seed[:], out[:])
	t := new(Table)
	for i := range t.gear {
		t.gear[i] = binary.LittleEndian.Uint64(out[8*i:])
		t.gear2[i] = t.gear[i] << 1
	}
	return t
}

// Cut returns the length of the first chunk of data. If len(data) <= MinSize it
// returns len(data). Otherwise it returns a boundary n with MinSize <= n <= min(len(data), MaxSize);
// if no boundary is found before min(len(data), MaxSize) it returns that limit. Callers
// that are not at end of input must pass at least MaxSize bytes (or all that remain).
//
// The boundary is the smallest n > MinSize such that the gear hash of the 64
// bytes ending at data[n-1] has all bits of the small-chunk mask clear (if
// n <= AvgSize) or all bits of the large-chunk mask clear (if n > AvgSize).
func (t *Table) Cut(data []byte) int {
	n, _ := t.cut(data)
	return n
}

// cut is Cut that also reports whether the boundary is one the content
// chose (a hash match), which no bytes after data can move, rather than
// the end of data or MaxSize.
func (t *Table) cut(data []byte) (int, bool) {
	n := len(data)
	if n <= MinSize {
		return n, false
	}
	if n > MaxSize {
		n = MaxSize
	}
	normal := min(AvgSize, n)
	g, g2 := &t.gear, &t.gear2
	var h uint64
	for _, b := range data[MinSize-window : MinSize] {
		h = h<<1 + g[b]
	}
	// Two bytes per step ("rolling two bytes each time", FastCDC 2020): after
	// h<<2 + g2[b0], h holds the hash after b0 shifted left by one, which is
	// tested with the mask shifted left by one; adding g[b1] completes the
	// hash after b1. Masks stop below bit 63, so the results are those of the
	// one-byte loop.
	//
	// In both loops d ends at the loop's limit, so d[0] is at offset
	// limit-len(d) of data, and a cut after it gives a chunk one longer.
	d := data[MinSize:normal]
	for len(d) >= 2 {
		h = h<<2 + g2[d[0]]
		if h&(maskS<<1) == 0 {
			return normal - len(d) + 1, true
		}
		h += g[d[1]]
		if h&maskS == 0 {
			return normal - len(d) + 2, true
		}
		d = d[2:]
	}
	if len(d) == 1 {
		h = h<<1 + g[d[0]]
		if h&maskS == 0 {
			return normal, true
		}
	}
	d = data[normal:n]
	for len(d) >= 2 {
		h = h<<2 + g2[d[0]]
		if h&(maskL<<1) == 0 {
			return n - len(d) + 1, true
		}
		h += g[d[1]]
		if h&maskL == 0 {
			return n - len(d) + 2, true
		}
		d = d[2:]
	}
	if len(d) == 1 {
		h = h<<1 + g[d[0]]
		if h&maskL == 0 {
			return n, true
		}
	}
	return n, false
}
