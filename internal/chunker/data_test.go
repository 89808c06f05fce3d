package chunker

import (
	"encoding/binary"
	"io"
)

// splitMix64 is the SplitMix64 generator (Steele, Lea, Flood 2014), used to
// make deterministic test inputs: state += 0x9e3779b97f4a7c15, then the
// output is the state mixed by two xor-shift-multiply rounds and a final
// xor-shift.
type splitMix64 uint64

func (s *splitMix64) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// randomData returns n bytes: the SplitMix64 outputs from state seed, each
// written as 8 little-endian bytes (the last one truncated).
func randomData(seed uint64, n int) []byte {
	s := splitMix64(seed)
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], s.next())
	}
	return b[:n:n]
}

// textWords is the vocabulary of textData.
var textWords = []string{
	"the", "of", "and", "to", "in", "is", "for", "that", "with", "on",
	"func", "return", "err", "nil", "if", "else", "range", "type", "struct", "var",
	"chunk", "vault", "backup", "restore", "pack", "blob", "tree", "key", "index", "error",
	"data", "file", "path", "size", "read", "write", "hash", "seed", "table", "buffer",
	"=", ":=", "{", "}", "(", ")", "//", "0", "1", "42",
}

// textData returns n bytes of text-like data: words from textWords chosen by
// SplitMix64 from state seed (output mod len(textWords)), separated by a
// space, or by a newline and a tab when an output is divisible by 8.
func textData(seed uint64, n int) []byte {
	s := splitMix64(seed)
	b := make([]byte, 0, n+16)
	for len(b) < n {
		r := s.next()
		b = append(b, textWords[r%uint64(len(textWords))]...)
		if (r>>32)%8 == 0 {
			b = append(b, '\n', '\t')
		} else {
			b = append(b, ' ')
		}
	}
	return b[:n:n]
}

// shortReader returns reads of pseudo-random lengths between 1 and max bytes.
type shortReader struct {
	data []byte
	rng  splitMix64
	max  int
}

func (r *shortReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := 1 + int(r.rng.next()%uint64(r.max))
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// cutAll splits data with repeated calls to Cut and returns the chunk lengths.
func cutAll(t *Table, data []byte) []int {
	var lens []int
	for len(data) > 0 {
		n := t.Cut(data)
		lens = append(lens, n)
		data = data[n:]
	}
	return lens
}

// testSeed is the chunker seed of the golden vectors: bytes 0, 1, ..., 31.
func testSeed() [32]byte {
	var s [32]byte
	for i := range s {
		s[i] = byte(i)
	}
	return s
}
