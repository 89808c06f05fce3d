package chunker

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"slices"
	"testing"
	"testing/iotest"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "seed of the random test inputs (0: derive from the clock)")

// inputSeed returns the seed for random inputs and logs it so that a failure
// can be reproduced with -seed.
func inputSeed(t *testing.T) uint64 {
	t.Helper()
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("input seed %d (rerun with -seed %d)", s, s)
	return s
}

func checkSizes(t *testing.T, lens []int, total int) {
	t.Helper()
	sum := 0
	for i, n := range lens {
		sum += n
		last := i == len(lens)-1
		if n <= 0 || n > MaxSize || (!last && n < MinSize) {
			t.Fatalf("chunk %d of %d has length %d, want in [%d, %d]", i, len(lens), n, MinSize, MaxSize)
		}
	}
	if sum != total {
		t.Fatalf("chunk lengths sum to %d, want %d", sum, total)
	}
}

// chunkerLens runs a Chunker over r and returns the chunk lengths, checking
// that the chunks are the consecutive pieces of want.
func chunkerLens(t *testing.T, c *Chunker, want []byte) []int {
	t.Helper()
	var lens []int
	off := 0
	for {
		chunk, err := c.Next()
		if err == io.EOF {
			if chunk != nil {
				t.Fatalf("Next returned %d bytes with io.EOF", len(chunk))
			}
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if !bytes.Equal(chunk, want[off:off+len(chunk)]) {
			t.Fatalf("chunk %d at offset %d differs from the input", len(lens), off)
		}
		off += len(chunk)
		lens = append(lens, len(chunk))
	}
	if off != len(want) {
		t.Fatalf("chunks cover %d bytes, want %d", off, len(want))
	}
	if _, err := c.Next(); err != io.EOF {
		t.Fatalf("Next after EOF: got %v, want io.EOF", err)
	}
	return lens
}

func TestCutShortInputs(t *testing.T) {
	tab := NewTable(testSeed())
	data := randomData(7, MinSize+1)
	for _, n := range []int{0, 1, 63, 64, MinSize - 1, MinSize} {
		if got := tab.Cut(data[:n]); got != n {
			t.Errorf("Cut(%d bytes) = %d, want %d", n, got, n)
		}
	}
	if got := tab.Cut(data); got != MinSize+1 {
		t.Errorf("Cut(MinSize+1 bytes) = %d, want %d", got, MinSize+1)
	}
}

func TestCutRange(t *testing.T) {
	tab := NewTable(testSeed())
	seed := inputSeed(t)
	inputs := map[string][]byte{
		"random": randomData(seed, 24<<20),
		"text":   textData(seed, 24<<20),
		"zeros":  make([]byte, 9<<20+5),
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			checkSizes(t, cutAll(tab, data), len(data))
			// Cut must not look past MaxSize: the first cut of data and of
			// data truncated to MaxSize agree.
			if a, b := tab.Cut(data), tab.Cut(data[:MaxSize]); a != b {
				t.Errorf("Cut(data) = %d but Cut(data[:MaxSize]) = %d", a, b)
			}
		})
	}
}

func TestChunkerMatchesCut(t *testing.T) {
	tab := NewTable(testSeed())
	seed := inputSeed(t)
	buf := make([]byte, MinBufSize)
	type input struct {
		name string
		data []byte
	}
	inputs := []input{
		{"empty", nil},
		{"one", []byte{1}},
		{"min", randomData(seed, MinSize)},
		{"min+1", randomData(seed, MinSize+1)},
		{"max", randomData(seed, MaxSize)},
		{"max+1", randomData(seed, MaxSize+1)},
		{"random", randomData(seed, 3*MinBufSize+12345)},
		{"text", textData(seed, 2*BufSize+777)},
		{"zeros", make([]byte, 3*MaxSize+3)},
	}
	for _, in := range inputs {
		want := cutAll(tab, in.data)
		checkSizes(t, want, len(in.data))
		readers := map[string]func() io.Reader{
			"bytes":   func() io.Reader { return bytes.NewReader(in.data) },
			"half":    func() io.Reader { return iotest.HalfReader(bytes.NewReader(in.data)) },
			"dataerr": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(in.data)) },
			"short":   func() io.Reader { return &shortReader{data: in.data, rng: splitMix64(seed), max: 100000} },
		}
		if len(in.data) <= MaxSize+1 {
			readers["onebyte"] = func() io.Reader { return iotest.OneByteReader(bytes.NewReader(in.data)) }
			readers["tiny"] = func() io.Reader { return &shortReader{data: in.data, rng: splitMix64(seed), max: 7} }
		}
		for rname, mk := range readers {
			t.Run(in.name+"/"+rname, func(t *testing.T) {
				for _, b := range [][]byte{nil, buf} {
					got := chunkerLens(t, New(mk(), tab, b), in.data)
					if !slices.Equal(got, want) {
						t.Fatalf("Chunker lengths %v, want (from Cut) %v", got, want)
					}
				}
			})
		}
	}
}

func TestChunkerReset(t *testing.T) {
	tab := NewTable(testSeed())
	a, b := randomData(1, 10<<20), textData(2, 3<<20)
	c := New(bytes.NewReader(a), tab, nil)
	if _, err := c.Next(); err != nil {
		t.Fatalf("Next: %v", err)
	}
	c.Reset(bytes.NewReader(b))
	if got, want := chunkerLens(t, c, b), cutAll(tab, b); !slices.Equal(got, want) {
		t.Fatalf("after Reset: lengths %v, want %v", got, want)
	}
	c.Reset(bytes.NewReader(nil))
	if chunk, err := c.Next(); chunk != nil || err != io.EOF {
		t.Fatalf("empty stream: Next = %d bytes, %v; want nil, io.EOF", len(chunk), err)
	}
}

func TestChunkerReadError(t *testing.T) {
	tab := NewTable(testSeed())
	data := randomData(3, 30<<20)
	want := cutAll(tab, data)
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(data[:20<<20]), iotest.ErrReader(boom))
	c := New(r, tab, nil)
	var got []int
	var err error
	for {
		var chunk []byte
		if chunk, err = c.Next(); err != nil {
			break
		}
		got = append(got, len(chunk))
	}
	if !errors.Is(err, boom) {
		t.Fatalf("Next error = %v, want one wrapping %v", err, boom)
	}
	if len(got) == 0 || !slices.Equal(got, want[:len(got)]) {
		t.Fatalf("lengths before the error %v, want a non-empty prefix of %v", got, want)
	}
	// A chunk may only be returned while its boundary is certain: it ends
	// at a boundary the content chose (so equal to Cut's, checked above),
	// within the bytes read before the error.
	if end := sum(got); end > 20<<20 {
		t.Fatalf("chunks end at %d, past the error at %d", end, 20<<20)
	}
	if _, err2 := c.Next(); !errors.Is(err2, boom) {
		t.Fatalf("Next after error = %v, want the error again", err2)
	}
}

func TestChunkerNoProgress(t *testing.T) {
	c := New(zeroReader{}, NewTable(testSeed()), nil)
	if _, err := c.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("Next = %v, want io.ErrNoProgress", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestNewSmallBufferPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New with a too small buffer did not panic")
		}
	}()
	New(bytes.NewReader(nil), NewTable(testSeed()), make([]byte, MinBufSize-1))
}

func TestAverageSize(t *testing.T) {
	tab := NewTable(testSeed())
	seed := inputSeed(t)
	data := randomData(seed, 96<<20)
	lens := cutAll(tab, data)
	checkSizes(t, lens, len(data))
	mean := float64(len(data)) / float64(len(lens))
	t.Logf("%d chunks, mean %.0f bytes (%.2f x AvgSize)", len(lens), mean, mean/AvgSize)
	if mean < 0.7*AvgSize || mean > 1.3*AvgSize {
		t.Fatalf("mean chunk size %.0f, want within 30%% of %d", mean, AvgSize)
	}
}

func TestSeedsDiffer(t *testing.T) {
	data := randomData(inputSeed(t), 32<<20)
	s2 := testSeed()
	s2[31] ^= 1
	a, b := cutAll(NewTable(testSeed()), data), cutAll(NewTable(s2), data)
	if slices.Equal(a, b) {
		t.Fatalf("seeds differing in one bit give the same boundaries %v", a)
	}
	// Boundaries should be essentially unrelated: count shared cut offsets.
	shared := 0
	offs := map[int]bool{}
	for off, i := 0, 0; i < len(a); i++ {
		off += a[i]
		offs[off] = true
	}
	for off, i := 0, 0; i < len(b)-1; i++ {
		off += b[i]
		if offs[off] {
			shared++
		}
	}
	if shared > 2 {
		t.Errorf("%d of %d boundaries shared between two seeds, want at most 2", shared, len(b)-1)
	}
}

// TestShiftIsLocal checks the dedup property: an edit changes only the chunks
// around it.
func TestShiftIsLocal(t *testing.T) {
	tab := NewTable(testSeed())
	seed := inputSeed(t)
	orig := randomData(seed, 48<<20)
	insert := randomData(seed+1, 1013)
	edits := map[string][]byte{
		"prepend": slices.Concat(insert, orig),
		"middle":  slices.Concat(orig[:20<<20], insert, orig[20<<20:]),
		"delete":  slices.Concat(orig[:5<<20], orig[5<<20+77:]),
	}
	known := map[string]bool{}
	for _, c := range split(tab, orig) {
		known[string(c)] = true
	}
	for name, edited := range edits {
		t.Run(name, func(t *testing.T) {
			chunks := split(tab, edited)
			fresh := 0
			for _, c := range chunks {
				if !known[string(c)] {
					fresh++
				}
			}
			t.Logf("%d of %d chunks new", fresh, len(chunks))
			if fresh > 3 {
				t.Fatalf("%d of %d chunks differ after a local edit, want at most 3", fresh, len(chunks))
			}
		})
	}
}

func split(tab *Table, data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := tab.Cut(data)
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

// refCut is Cut written as literally as the specification: the gear hash is
// rolled one byte at a time from MinSize-64, and the first position whose hash
// has the mask of its region clear ends the chunk.
func refCut(t *Table, data []byte) int {
	n := min(len(data), MaxSize)
	if n <= MinSize {
		return n
	}
	var h uint64
	for i := MinSize - 64; i < n; i++ {
		h = h<<1 + t.gear[data[i]]
		if i < MinSize {
			continue
		}
		mask := maskL
		if i < AvgSize {
			mask = maskS
		}
		if h&mask == 0 {
			return i + 1
		}
	}
	return n
}

func TestCutMatchesReference(t *testing.T) {
	tab := NewTable(testSeed())
	seed := inputSeed(t)
	for name, data := range map[string][]byte{
		"random": randomData(seed, 24<<20),
		"text":   textData(seed, 16<<20),
	} {
		t.Run(name, func(t *testing.T) {
			for off, i := 0, 0; off < len(data); i++ {
				// Odd and even lengths around the normalization point and the
				// maximum exercise the loops' tails.
				for _, end := range []int{len(data), off + AvgSize - 1, off + AvgSize + 1, off + MaxSize - 1} {
					d := data[off:min(end, len(data))]
					if got, want := tab.Cut(d), refCut(tab, d); got != want {
						t.Fatalf("chunk %d at %d (len %d): Cut = %d, reference = %d", i, off, len(d), got, want)
					}
				}
				off += tab.Cut(data[off:])
			}
		})
	}
}

func sum(lens []int) int {
	n := 0
	for _, l := range lens {
		n += l
	}
	return n
}
