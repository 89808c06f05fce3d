//go:build linux

package archiver

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNamesMatchesReadDir lists directories of a few entries and of more
// than one getdents buffer holds, with names of odd bytes, and compares
// with os.ReadDir.
func TestNamesMatchesReadDir(t *testing.T) {
	for _, n := range []int{0, 1, 7, 3000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			for i := range n {
				name := fmt.Sprintf("entry-%04d-%s", i, []byte{byte(0x80 + i%64), 'x', byte(1 + i%31)})
				if i%100 == 0 {
					name += "-" + strings.Repeat("long", 50)
				}
				if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			d, err := openRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer d.close()
			got, err := d.names()
			if err != nil {
				t.Fatal(err)
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, e := range ents {
				want = append(want, e.Name())
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("names: got %d, want %d (or different names)", len(got), len(want))
			}
		})
	}
}

func BenchmarkNamesReaddirnames(b *testing.B) {
	dir := b.TempDir()
	for i := range 500 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%04d.c", i)), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		f, err := os.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Readdirnames(-1); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

func BenchmarkNames(b *testing.B) {
	dir := b.TempDir()
	for i := range 500 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%04d.c", i)), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		d, err := openRoot(dir)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.names(); err != nil {
			b.Fatal(err)
		}
		d.close()
	}
}
