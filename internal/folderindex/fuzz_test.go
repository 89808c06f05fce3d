package folderindex

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Run with go test ./internal/folderindex -run '^$' -fuzz FuzzDecode.
// Seeds are encoded indexes, added here and written to
// testdata/fuzz/FuzzDecode by go test -update.
//
// The fuzzer cannot forge testMAC, so besides the input as it is, the
// target decodes the input with its last 32 bytes replaced by the MAC of
// the rest: mutations then reach the parser behind the MAC.
func FuzzDecode(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		if len(b) >= macSize {
			checkDecode(t, seal(bytes.Clone(b[:len(b)-macSize])))
		}
	})
}

// checkDecode decodes b and, if it is accepted, checks that its entries
// encode back to b.
func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	ix, err := Decode(b, testMAC)
	if err != nil {
		if !errors.Is(err, ErrIndex) || ix != nil {
			t.Fatalf("Decode returned %v, %v; want nil and an ErrIndex", ix, err)
		}
		return
	}
	if again := reencode(t, ix, testMAC); !bytes.Equal(again, b) {
		t.Fatalf("re-encoding is not canonical:\nin  %x\nout %x", b, again)
	}
}

// fuzzSeeds returns indexes of 0, 1 and several entries, and three made
// by hand that Decode refuses only after their MAC: keys out of order, a
// non-minimal chunk count and a count too large for the file.
func fuzzSeeds() [][]byte {
	seeds := [][]byte{encode(nil), encode(severalEntries()[:1]), encode(severalEntries())}
	e := severalEntries()[0].e
	unsorted := newRaw(2)
	unsorted.entry(key(2), e)
	unsorted.entry(key(1), e)
	nonMinimal := newRaw(1)
	nonMinimal.entry(key(1), Entry{})
	nonMinimal.Truncate(nonMinimal.Len() - 1)
	nonMinimal.Write([]byte{0x80, 0x00})
	huge := newRaw(1 << 40)
	huge.entry(key(1), e)
	for _, r := range []*rawBody{unsorted, nonMinimal, huge} {
		seeds = append(seeds, seal(r.Bytes()))
	}
	return seeds
}

// TestWriteFuzzSeeds writes fuzzSeeds to testdata/fuzz/FuzzDecode when run
// with -update, so that plain go test runs them too.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		return
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, b := range fuzzSeeds() {
		text := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
