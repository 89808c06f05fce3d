package vaultwire

import (
	"encoding/binary"
	"fmt"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Filter is a Bloom filter of blob IDs: the vault sends one of a
// machine's blob index (GET /v1/blobs/filter) so that the agent answers
// "not held" for most new blobs without a round trip. Blob IDs are keyed
// hashes, uniformly distributed, so the filter's bit positions come from
// the ID's own bytes: position i is (h1 + i·h2) mod m, with h1 and h2 the
// little-endian uint64s of bytes 0–7 and 8–15 (h2 made odd).
type Filter struct {
	k    uint8
	bits []uint64
}

const (
	filterMagic   = "CFBF"
	filterVersion = 1
	// FilterHeader is the encoded header size: magic, version, k, two
	// reserved bytes, and the number of 64-bit words (uint64).
	FilterHeader = 4 + 1 + 1 + 2 + 8
	// MaxFilterWords bounds a filter: 64 MiB.
	MaxFilterWords = 8 << 20
	filterK        = 7
	bitsPerID      = 10 // with k = 7, about 1% false positives
)

// NewFilter returns an empty filter sized for n IDs.
func NewFilter(n int) *Filter {
	words := min(max((n*bitsPerID+63)/64, 16), MaxFilterWords)
	return &Filter{k: filterK, bits: make([]uint64, words)}
}

func (f *Filter) positions(id *vaultapi.ID, fn func(word int, mask uint64) bool) bool {
	m := uint64(len(f.bits)) * 64
	h1 := binary.LittleEndian.Uint64(id[0:8])
	h2 := binary.LittleEndian.Uint64(id[8:16]) | 1
	for i := uint64(0); i < uint64(f.k); i++ {
		p := (h1 + i*h2) % m
		if !fn(int(p/64), 1<<(p%64)) {
			return false
		}
	}
	return true
}

// Add adds an ID.
func (f *Filter) Add(id vaultapi.ID) {
	f.positions(&id, func(w int, mask uint64) bool { f.bits[w] |= mask; return true })
}

// MayHave reports whether id may be in the set: false means surely not.
func (f *Filter) MayHave(id vaultapi.ID) bool {
	return f.positions(&id, func(w int, mask uint64) bool { return f.bits[w]&mask != 0 })
}

// Encode returns the filter's wire form.
func (f *Filter) Encode() []byte {
	b := make([]byte, FilterHeader, FilterHeader+8*len(f.bits))
	copy(b, filterMagic)
	b[4], b[5] = filterVersion, f.k
	binary.BigEndian.PutUint64(b[8:], uint64(len(f.bits)))
	for _, w := range f.bits {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	return b
}

// DecodeFilter decodes a filter.
func DecodeFilter(b []byte) (*Filter, error) {
	if len(b) < FilterHeader || string(b[:4]) != filterMagic || b[4] != filterVersion {
		return nil, fmt.Errorf("%w: not a blob filter (version %d)", vaultapi.ErrBadRequest, filterVersion)
	}
	k := b[5]
	n := binary.BigEndian.Uint64(b[8:])
	if k < 1 || k > 32 || n < 1 || n > MaxFilterWords || uint64(len(b)-FilterHeader) != 8*n {
		return nil, fmt.Errorf("%w: blob filter with k=%d and %d words in %d bytes", vaultapi.ErrBadRequest, k, n, len(b))
	}
	f := &Filter{k: k, bits: make([]uint64, n)}
	for i := range f.bits {
		f.bits[i] = binary.LittleEndian.Uint64(b[FilterHeader+8*i:])
	}
	return f, nil
}
