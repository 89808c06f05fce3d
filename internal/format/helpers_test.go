package format

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the current code")

// seqReader is the fixed "random" source of the golden vectors: it yields
// the bytes next, next+1, next+2, ... (mod 256).
type seqReader struct{ next byte }

func (r *seqReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	return len(p), nil
}

// Golden keys, as written in doc/FORMAT.md: bytes 00..1f, 20..3f, 40..5f.
const (
	goldenDataKey    = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	goldenIDKey      = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	goldenChunkerKey = "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
)

func goldenKeys(t testing.TB) *Keys {
	t.Helper()
	var k Keys
	for _, x := range []struct {
		dst []byte
		hex string
	}{{k.Data[:], goldenDataKey}, {k.ID[:], goldenIDKey}, {k.Chunker[:], goldenChunkerKey}} {
		if _, err := hex.Decode(x.dst, []byte(x.hex)); err != nil {
			t.Fatal(err)
		}
	}
	return &k
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hexLines renders b as lower-case hex, 32 bytes a line.
func hexLines(b []byte) []byte {
	var out bytes.Buffer
	for len(b) > 0 {
		n := min(32, len(b))
		out.WriteString(hex.EncodeToString(b[:n]))
		out.WriteByte('\n')
		b = b[n:]
	}
	return out.Bytes()
}

// checkGolden compares got with testdata/name (hex when the name ends in
// .hex, bytes otherwise), rewriting the file first with -update. It
// returns the pinned bytes.
func checkGolden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	isHex := strings.HasSuffix(name, ".hex")
	if *update {
		out := got
		if isHex {
			out = hexLines(got)
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if isHex {
		want = mustHex(t, string(want))
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Errorf("%s: encoding changed at byte %d of %d (pinned %d bytes):\ngot  %x\nwant %x",
			name, i, len(got), len(want), got[i:min(len(got), i+32)], want[i:min(len(want), i+32)])
	}
	return want
}

func readTestdata(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", name))
}
