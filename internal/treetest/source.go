package treetest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// SourceLike writes a tree shaped like a source tree into dir, the same
// for the same seed: folders of about 20 files, most of a few KiB, some of
// tens of KiB, and one of 2 MiB in every 500, of text made of a small
// vocabulary (zstd shrinks it about fivefold, like program source). It
// returns the number of bytes written. Benchmarks of the backup and
// restore pipelines use it: per-file costs dominate there, as they do on
// real trees.
func SourceLike(tb testing.TB, dir string, seed uint64, files int) int64 {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	words := make([]string, 400)
	for i := range words {
		var b strings.Builder
		for range 2 + rng.IntN(8) {
			b.WriteByte(byte('a' + rng.IntN(26)))
		}
		words[i] = b.String()
	}
	var total int64
	var sub string
	for i := range files {
		if i%20 == 0 {
			sub = filepath.Join(dir, fmt.Sprintf("d%03d", i/400), fmt.Sprintf("s%03d", i/20))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				tb.Fatal(err)
			}
		}
		size := 512 + rng.IntN(8<<10)
		switch {
		case i%500 == 499:
			size = 2 << 20
		case i%10 == 9:
			size = 16<<10 + rng.IntN(112<<10)
		}
		var b strings.Builder
		b.Grow(size + 16)
		for b.Len() < size {
			b.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(10) == 0 {
				b.WriteString(";\n\t")
			} else {
				b.WriteByte(' ')
			}
		}
		data := b.String()[:size]
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d.c", i)), []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
		total += int64(size)
	}
	return total
}
