//go:build linux

package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestRunCSV runs floor on a small tree and checks its CSV: the three
// steps with their counts, and a kept copy holding every folder and file
// at its size.
func TestRunCSV(t *testing.T) {
	corpus := t.TempDir()
	sizes := map[string]int{"a.txt": 0, "b.bin": 70000, "d/c.txt": 12, "d/e/f.txt": 4096}
	var total int
	for name, n := range sizes {
		p := filepath.Join(corpus, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), n), 0o644); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if err := os.Symlink("a.txt", filepath.Join(corpus, "link")); err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	var out bytes.Buffer
	if err := run(&out, corpus, scratch, options{workers: 3, csv: true, keep: true}); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][3]string{
		{"step", "files", "bytes"},
		{stepRead, "4", strconv.Itoa(total)},
		{stepMkdir, "2", "0"},
		{stepCreate, "4", strconv.Itoa(total)},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d CSV rows, want %d: %q", len(recs), len(want), recs)
	}
	for i, w := range want {
		if len(recs[i]) != 6 || [3]string(recs[i][:3]) != w {
			t.Errorf("row %d: %q, want %q…", i, recs[i], w)
		}
		if i > 0 {
			for _, v := range recs[i][3:] {
				if f, err := strconv.ParseFloat(v, 64); err != nil || f < 0 {
					t.Errorf("row %d: time %q", i, v)
				}
			}
		}
	}
	kept, err := filepath.Glob(filepath.Join(scratch, "floor-*"))
	if err != nil || len(kept) != 1 {
		t.Fatalf("kept copies: %v, %v", kept, err)
	}
	for name, n := range sizes {
		info, err := os.Stat(filepath.Join(kept[0], name))
		switch {
		case err != nil:
			t.Errorf("copy of %s: %v", name, err)
		case info.Size() != int64(n):
			t.Errorf("copy of %s: %d bytes, want %d", name, info.Size(), n)
		}
	}
}

// TestRunRemovesCopy: without keep, nothing stays in the scratch folder.
func TestRunRemovesCopy(t *testing.T) {
	corpus, scratch := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(corpus, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(&out, corpus, scratch, options{workers: 1}); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("left in scratch: %v", left)
	}
	if !bytes.Contains(out.Bytes(), []byte("create (openat")) {
		t.Errorf("text output: %q", out.String())
	}
}
