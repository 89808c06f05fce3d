package chunker

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt from the current implementation")

const goldenFile = "golden.txt"

// goldenInputs are the inputs whose chunk lengths are pinned, chunked with the
// table of testSeed (bytes 0..31). Both generators are defined in data_test.go.
var goldenInputs = []struct {
	name string
	data func() []byte
}{
	{"random", func() []byte { return randomData(1, 40<<20) }}, // SplitMix64 from state 1, 40 MiB
	{"text", func() []byte { return textData(2, 24<<20+123) }}, // text words from state 2
	{"zeros", func() []byte { return make([]byte, 9<<20) }},
}

// golden renders the vectors: the first four gear entries, then one line per
// input with its chunk lengths.
func golden() []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, "# Coffer chunker golden vectors; regenerate with go test -run TestGolden -update.")
	fmt.Fprintln(&b, "# Seed: bytes 00 01 .. 1f. Inputs: see goldenInputs in golden_test.go.")
	tab := NewTable(testSeed())
	for i := range 4 {
		fmt.Fprintf(&b, "gear[%d] %#016x\n", i, tab.gear[i])
	}
	for _, in := range goldenInputs {
		data := in.data()
		fmt.Fprintf(&b, "%s %d:", in.name, len(data))
		for _, n := range cutAll(tab, data) {
			fmt.Fprintf(&b, " %d", n)
		}
		fmt.Fprintln(&b)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", goldenFile)
	got := golden()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gs, ws := bufio.NewScanner(bytes.NewReader(got)), bufio.NewScanner(bytes.NewReader(want))
	gs.Buffer(nil, 1<<20)
	ws.Buffer(nil, 1<<20)
	for line := 1; ; line++ {
		g, w := gs.Scan(), ws.Scan()
		if !g && !w {
			break
		}
		if gs.Text() != ws.Text() {
			t.Errorf("%s line %d:\n got %s\nwant %s", path, line, gs.Text(), ws.Text())
		}
	}
}
