package chunker

import (
	"bytes"
	"slices"
	"testing"
)

// fuzzInput expands the fuzzer's bytes to n bytes so that inputs reach the
// sizes where boundaries occur: pattern repeated, each repetition r xored with
// r*151 so that the result is not periodic. An empty pattern gives zeros, and
// n == 0 gives the pattern itself.
func fuzzInput(pattern []byte, n int) []byte {
	if n == 0 {
		return pattern
	}
	out := make([]byte, n)
	if len(pattern) == 0 {
		return out
	}
	for i := range out {
		out[i] = pattern[i%len(pattern)] ^ byte((i/len(pattern))*151)
	}
	return out
}

func FuzzChunker(f *testing.F) {
	f.Add([]byte("hello"), uint32(0), uint64(1), uint16(3))
	f.Add([]byte{}, uint32(MaxSize+1), uint64(2), uint16(4096))
	f.Add(bytes.Repeat([]byte("coffer chunker "), 40), uint32(3*MaxSize), uint64(3), uint16(65535))
	f.Add([]byte{0xff, 0x00, 0x7f}, uint32(MinSize+1), uint64(4), uint16(1))
	tab := NewTable(testSeed())
	buf := make([]byte, MinBufSize)
	f.Fuzz(func(t *testing.T, pattern []byte, size uint32, readSeed uint64, maxRead uint16) {
		data := fuzzInput(pattern, int(size%(3*MaxSize+1)))
		lens := cutAll(tab, data)
		checkSizes(t, lens, len(data))
		off := 0
		for i, n := range lens {
			if want := refCut(tab, data[off:]); n != want {
				t.Fatalf("chunk %d at %d: Cut = %d, reference = %d", i, off, n, want)
			}
			off += n
		}
		r := &shortReader{data: data, rng: splitMix64(readSeed), max: 1 + int(maxRead)}
		if got := chunkerLens(t, New(r, tab, buf), data); !slices.Equal(got, lens) {
			t.Fatalf("Chunker lengths %v, Cut lengths %v", got, lens)
		}
	})
}
