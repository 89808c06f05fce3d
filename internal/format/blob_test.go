package format

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sync"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

var (
	allKinds  = []vaultapi.Kind{vaultapi.KindData, vaultapi.KindTree, vaultapi.KindInfo}
	allLevels = []Level{LevelNone, LevelAuto, LevelFastest, LevelDefault, LevelBetter}
)

func newSealer(t testing.TB, k *Keys, level Level) *Sealer {
	t.Helper()
	s, err := NewSealer(k, rand.Reader, level)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newOpener(t testing.TB, k *Keys) *Opener {
	t.Helper()
	o, err := NewOpener(k)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// testInputs are plaintexts of every shape: empty, below the compression
// threshold, compressible, incompressible, and a full-size chunk.
func testInputs(seed uint64) map[string][]byte {
	r := mrand.New(mrand.NewPCG(seed, 1))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	return map[string][]byte{
		"empty":      {},
		"one":        {'x'},
		"short":      []byte("below the compression threshold"),
		"threshold":  bytes.Repeat([]byte{'a'}, minCompress),
		"text-64KiB": bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 64<<10/44),
		"random-1K":  random(1000),
		"random-4M":  random(4 << 20),
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	keys := goldenKeys(t)
	h := NewHasher(keys)
	o := newOpener(t, keys)
	for _, level := range allLevels {
		s := newSealer(t, keys, level)
		for name, plain := range testInputs(1) {
			for _, kind := range allKinds {
				id := h.ID(plain)
				sealed, _, err := s.Seal(nil, kind, id, plain, nil)
				if err != nil {
					t.Fatalf("level %d %s %s: seal: %v", level, name, kind, err)
				}
				if len(sealed) > len(plain)+Overhead {
					t.Errorf("level %d %s: sealed %d bytes, more than %d+Overhead", level, name, len(sealed), len(plain))
				}
				comp := manualOpen(t, keys, kind, id, bytes.Clone(sealed))[0]
				wantComp := byte(compRaw)
				if level != LevelNone && len(plain) >= minCompress && (name == "threshold" || name == "text-64KiB") {
					wantComp = compZstd
				}
				if comp != wantComp {
					t.Errorf("level %d %s: compression byte %d, want %d", level, name, comp, wantComp)
				}
				got, err := o.Open(nil, kind, id, sealed)
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("level %d %s %s: open: %d bytes, %v", level, name, kind, len(got), err)
				}
			}
		}
	}
}

func TestSealReusesBuffers(t *testing.T) {
	keys := goldenKeys(t)
	s, o := newSealer(t, keys, LevelFastest), newOpener(t, keys)
	plain := bytes.Repeat([]byte("reuse "), 1000)
	id := NewHasher(keys).ID(plain)
	dst := []byte("prefix:")
	sealed, scratch, err := s.Seal(dst, vaultapi.KindData, id, plain, make([]byte, 0, 1<<16))
	if err != nil {
		t.Fatal(err)
	}
	if string(sealed[:7]) != "prefix:" || cap(scratch) < 1<<16 {
		t.Fatalf("Seal must append to dst and reuse scratch")
	}
	got, err := o.Open(make([]byte, 5), vaultapi.KindData, id, sealed[7:])
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %v", err)
	}
}

func TestOpenRejectsWrongKindOrID(t *testing.T) {
	keys := goldenKeys(t)
	s, o := newSealer(t, keys, LevelFastest), newOpener(t, keys)
	plain := []byte("bound to its kind and ID")
	id := NewHasher(keys).ID(plain)
	sealed, _, err := s.Seal(nil, vaultapi.KindTree, id, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := id
	other[31] ^= 1
	for _, tc := range []struct {
		name string
		kind vaultapi.Kind
		id   vaultapi.ID
	}{
		{"data kind", vaultapi.KindData, id},
		{"info kind", vaultapi.KindInfo, id},
		{"unknown kind", 9, id},
		{"other ID", vaultapi.KindTree, other},
		{"zero ID", vaultapi.KindTree, vaultapi.ID{}},
	} {
		if _, err := o.Open(nil, tc.kind, tc.id, bytes.Clone(sealed)); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: got %v, want ErrAuth", tc.name, err)
		}
	}
	if _, err := newOpener(t, &Keys{}).Open(nil, vaultapi.KindTree, id, bytes.Clone(sealed)); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong data key: got %v, want ErrAuth", err)
	}
}

func TestOpenRejectsEveryBitFlip(t *testing.T) {
	keys := goldenKeys(t)
	o := newOpener(t, keys)
	h := NewHasher(keys)
	for _, level := range []Level{LevelNone, LevelFastest} {
		s := newSealer(t, keys, level)
		plain := bytes.Repeat([]byte("flip me "), 20)
		id := h.ID(plain)
		sealed, _, err := s.Seal(nil, vaultapi.KindData, id, plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range sealed {
			for bit := range 8 {
				b := bytes.Clone(sealed)
				b[i] ^= 1 << bit
				if got, err := o.Open(nil, vaultapi.KindData, id, b); !errors.Is(err, ErrAuth) {
					t.Fatalf("level %d: bit %d of byte %d flipped: got %q, %v; want ErrAuth", level, bit, i, got, err)
				}
			}
		}
		for n := range len(sealed) {
			if _, err := o.Open(nil, vaultapi.KindData, id, bytes.Clone(sealed[:n])); !errors.Is(err, ErrAuth) {
				t.Fatalf("truncated to %d bytes: got %v, want ErrAuth", n, err)
			}
		}
		if _, err := o.Open(nil, vaultapi.KindData, id, append(bytes.Clone(sealed), 0)); !errors.Is(err, ErrAuth) {
			t.Fatalf("extended by a byte: got %v, want ErrAuth", err)
		}
	}
}

func TestSealerRotatesPrefix(t *testing.T) {
	keys := goldenKeys(t)
	s, err := NewSealer(keys, &seqReader{next: 0}, LevelNone)
	if err != nil {
		t.Fatal(err)
	}
	if s.limit != 1<<32 {
		t.Fatalf("per-prefix limit %d, want 2^32", s.limit)
	}
	s.limit = 3
	o := newOpener(t, keys)
	plain := []byte("rotate")
	id := NewHasher(keys).ID(plain)
	for i := range 10 {
		sealed, _, err := s.Seal(nil, vaultapi.KindData, id, plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Prefix p is the p-th block of 16 bytes of seqReader: 16p, 16p+1, ...
		p, c := i/3, i%3
		want := make([]byte, nonceSize)
		for j := range prefixSize {
			want[j] = byte(16*p + j)
		}
		want[nonceSize-1] = byte(c)
		if got := sealed[1:25]; !bytes.Equal(got, want) {
			t.Fatalf("blob %d: nonce %x, want %x", i, got, want)
		}
		if _, err := o.Open(nil, vaultapi.KindData, id, sealed); err != nil {
			t.Fatalf("blob %d: %v", i, err)
		}
	}
}

type failReader struct{ n int }

func (r *failReader) Read(p []byte) (int, error) {
	if r.n < len(p) {
		return 0, errors.New("entropy exhausted")
	}
	r.n -= len(p)
	return len(p), nil
}

func TestSealerRandFailure(t *testing.T) {
	keys := goldenKeys(t)
	if _, err := NewSealer(keys, &failReader{}, LevelNone); err == nil {
		t.Fatal("NewSealer with a failing reader: no error")
	}
	s, err := NewSealer(keys, &failReader{n: prefixSize}, LevelNone)
	if err != nil {
		t.Fatal(err)
	}
	s.limit = 1
	if _, _, err := s.Seal(nil, vaultapi.KindData, vaultapi.ID{}, []byte("a"), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Seal(nil, vaultapi.KindData, vaultapi.ID{}, []byte("b"), nil); err == nil {
		t.Fatal("rotation with a failing reader: no error")
	}
}

func TestSealRefusesHugeBlob(t *testing.T) {
	s := newSealer(t, goldenKeys(t), LevelNone)
	if _, _, err := s.Seal(nil, vaultapi.KindData, vaultapi.ID{}, make([]byte, MaxPlain+1), nil); err == nil {
		t.Fatal("sealing MaxPlain+1 bytes: no error")
	}
}

// TestOpenerCacheManyPrefixes opens blobs of many Sealers (one prefix
// each), from many goroutines, past the cache's reset point.
func TestOpenerCacheManyPrefixes(t *testing.T) {
	keys := goldenKeys(t)
	h := NewHasher(keys)
	o := newOpener(t, keys)
	type blob struct {
		id     vaultapi.ID
		sealed []byte
		plain  []byte
	}
	var blobs []blob
	for i := range 5000 {
		s, err := NewSealer(keys, rand.Reader, LevelNone)
		if err != nil {
			t.Fatal(err)
		}
		plain := fmt.Appendf(nil, "blob %d", i)
		id := h.ID(plain)
		sealed, _, err := s.Seal(nil, vaultapi.KindData, id, plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, blob{id, sealed, plain})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 2 {
				for i := g; i < len(blobs); i += 2 {
					b := blobs[i]
					got, err := o.Open(nil, vaultapi.KindData, b.id, bytes.Clone(b.sealed))
					if err != nil || !bytes.Equal(got, b.plain) {
						errs <- fmt.Errorf("round %d blob %d: %q, %v", round, i, got, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	o.mu.Lock()
	n := len(o.aead)
	o.mu.Unlock()
	if n == 0 || n > 4097 {
		t.Errorf("subkey cache holds %d entries, want 1..4097", n)
	}
}

func TestOpenRefusesUnknownCompression(t *testing.T) {
	keys := goldenKeys(t)
	// Build a blob with compression byte 2 by hand, properly sealed.
	prefix := make([]byte, prefixSize)
	aead, err := subkeyAEAD(&keys.Data, prefix)
	if err != nil {
		t.Fatal(err)
	}
	var id vaultapi.ID
	sealed := append([]byte{blobVersion}, make([]byte, nonceSize)...)
	sealed = aead.Seal(sealed, make([]byte, 12), []byte{2, 'x'}, append([]byte{byte(vaultapi.KindData)}, id[:]...))
	_, err = newOpener(t, keys).Open(nil, vaultapi.KindData, id, sealed)
	if err == nil || errors.Is(err, ErrAuth) {
		t.Fatalf("unknown compression: got %v, want a non-auth error", err)
	}
}

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Level
		ok   bool
	}{
		{"", LevelAuto, true}, {"auto", LevelAuto, true}, {"fastest", LevelFastest, true},
		{"none", LevelNone, true}, {"off", LevelNone, true}, {"default", LevelDefault, true},
		{"better", LevelBetter, true}, {"max", LevelBetter, true}, {"ultra", 0, false},
	} {
		got, err := ParseLevel(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseLevel(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestNonceBound checks the numbers doc/FORMAT.md states: with N sealers
// the chance that two drew the same 128-bit prefix is about N²/2^129.
func TestNonceBound(t *testing.T) {
	p := func(n float64) float64 { return n * (n - 1) / 2 / math.Pow(2, 128) }
	for _, tc := range []struct {
		log2N, log2P float64
	}{{20, -89}, {32, -65}, {40, -49}, {48, -33}} {
		got := math.Log2(p(math.Pow(2, tc.log2N)))
		if math.Abs(got-tc.log2P) > 0.01 {
			t.Errorf("N=2^%v: log2 p = %.2f, want %v", tc.log2N, got, tc.log2P)
		}
	}
}

// TestAutoProbe checks LevelAuto's choice for single blobs: SpeedFastest
// for a large blob whose start compresses at least probeRatio times,
// SpeedDefault for a large one that compresses less and for every small
// one, and that either way the blob opens to its plaintext.
func TestAutoProbe(t *testing.T) {
	keys := goldenKeys(t)
	h := NewHasher(keys)
	o := newOpener(t, keys)
	r := mrand.New(mrand.NewPCG(7, 7))
	var redundant, text []byte
	for i := 0; len(redundant) < 1<<20; i++ {
		redundant = fmt.Appendf(redundant, "#define REG_%05d_FIELD_MASK 0x%08x\n", i, 1<<(i%32))
	}
	words := []string{"backup", "vault", "restore", "chunk", "pack", "group", "point", "tree", "key", "blob"}
	for len(text) < 1<<20 {
		text = fmt.Appendf(text, "%s %d ", words[r.IntN(len(words))], r.IntN(1000))
	}
	auto := newSealer(t, keys, LevelAuto)
	for _, tc := range []struct {
		name  string
		s     *Sealer
		plain []byte
		want  func(s *Sealer) any
	}{
		{"redundant", auto, redundant, func(s *Sealer) any { return s.genc }},
		{"text", auto, text, func(s *Sealer) any { return s.enc }},
		{"redundant-small", auto, redundant[:probeMin-1], func(s *Sealer) any { return s.enc }},
		{"redundant-default", newSealer(t, keys, LevelDefault), redundant, func(s *Sealer) any { return s.enc }},
	} {
		enc, _ := tc.s.encoder(nil, tc.plain)
		if any(enc) != tc.want(tc.s) {
			t.Errorf("%s: wrong encoder", tc.name)
		}
		id := h.ID(tc.plain)
		sealed, _, err := tc.s.Seal(nil, vaultapi.KindData, id, tc.plain, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got, err := o.Open(nil, vaultapi.KindData, id, sealed); err != nil || !bytes.Equal(got, tc.plain) {
			t.Errorf("%s: open: %d bytes, %v", tc.name, len(got), err)
		}
	}
	if auto.enc == auto.genc {
		t.Fatal("auto: one encoder for both")
	}
}

// A reused buffer too small for a blob's plaintext is replaced by one
// rounded up to whole MiB, so that blobs of growing sizes do not allocate
// at each; a buffer large enough is used as it is, and no buffer means
// the exact size.
func TestOpenGrowsReusedBuffer(t *testing.T) {
	keys := goldenKeys(t)
	s, o := newSealer(t, keys, LevelFastest), newOpener(t, keys)
	plain := bytes.Repeat([]byte("grow the buffer "), 20000) // 320,000 bytes
	id := NewHasher(keys).ID(plain)
	sealed, _, err := s.Seal(nil, vaultapi.KindData, id, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	if comp := manualOpen(t, keys, vaultapi.KindData, id, bytes.Clone(sealed))[0]; comp != compZstd {
		t.Fatalf("the test blob is not compressed (%d)", comp)
	}
	for _, tt := range []struct {
		name    string
		dst     []byte
		wantCap int
	}{
		{"reused, too small", make([]byte, 0, 1000), growStep},
		{"reused, large enough", make([]byte, 0, 400000), 400000},
	} {
		got, err := o.Open(tt.dst, vaultapi.KindData, id, bytes.Clone(sealed))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: open: %d bytes, %v", tt.name, len(got), err)
		}
		if cap(got) != tt.wantCap {
			t.Errorf("%s: buffer of %d bytes, want %d", tt.name, cap(got), tt.wantCap)
		}
	}
	got, err := o.Open(nil, vaultapi.KindData, id, bytes.Clone(sealed))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open into nil: %v", err)
	}
	if cap(got) >= growStep {
		t.Errorf("open into nil: buffer of %d bytes, want about %d", cap(got), len(plain))
	}
}
