//go:build linux

package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreMetDamage: a byte of the vault's largest data pack is
// flipped. The restore goes on with the rest, names the damaged file, says
// it is incomplete, and exits with the code for damage (5), as verify does.
func TestRestoreMetDamage(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, 3)
	e.mustRun("backup", src)

	var biggest string
	var size int64
	filepath.WalkDir(filepath.Join(e.vault, "data", "packs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil && info.Size() > size {
				biggest, size = p, info.Size()
			}
		}
		return nil
	})
	if size < 1<<20 {
		t.Fatalf("no data pack found (largest object %d bytes)", size)
	}
	b, err := os.ReadFile(biggest)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(biggest, b, 0o600); err != nil {
		t.Fatal(err)
	}

	if _, errs, code := e.run("verify"); code != exitDamaged {
		t.Fatalf("verify of the damaged vault: exit %d, want %d\n%s", code, exitDamaged, errs)
	}
	target := filepath.Join(t.TempDir(), "restore")
	out, errs, code := e.run("restore", "latest", "--target", target)
	if code != exitDamaged || !strings.Contains(errs, "restore incomplete") {
		t.Fatalf("restore of a damaged vault: exit %d, want %d\nstdout: %s\nstderr: %s", code, exitDamaged, out, errs)
	}
	// Which file the flipped byte hit depends on the order of blobs in the
	// pack: take the names the restore reports, and check every file.
	damaged := map[string]bool{}
	for _, l := range strings.Split(errs, "\n") {
		if p, ok := strings.CutPrefix(l, "error: "); ok {
			if i := strings.Index(p, ": vault data damaged"); i > 0 {
				damaged[p[:i]] = true
			}
		}
	}
	if len(damaged) == 0 {
		t.Fatalf("no damaged file named\nstderr: %s", errs)
	}
	checked := 0
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		got := filepath.Join(target, p)
		if damaged[got] {
			if _, err := os.Lstat(got); err == nil {
				t.Errorf("the damaged %s was left in the target", got)
			}
			return nil
		}
		want, _ := os.ReadFile(p)
		b, err := os.ReadFile(got)
		if err != nil || !bytes.Equal(b, want) {
			t.Errorf("undamaged %s: restored %d bytes (%v), want %d", p, len(b), err, len(want))
		}
		checked++
		return nil
	})
	if checked == 0 {
		t.Error("no undamaged file to check")
	}
}

// TestRestorePartialExit: an entry that cannot be restored for a reason
// other than damage (a folder in the target where a file goes) gives the
// partial exit code (3) and a final line saying the restore is incomplete.
func TestRestorePartialExit(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.txt", "b.txt"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.mustRun("backup", src)
	target := filepath.Join(t.TempDir(), "restore")
	if err := os.MkdirAll(filepath.Join(target, src, "b.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, errs, code := e.run("restore", "latest", "--target", target)
	if code != exitPartial || !strings.Contains(errs, "restore incomplete: 1 entry could not") || !strings.Contains(errs, "b.txt") {
		t.Fatalf("restore onto a folder in the way: exit %d, want %d\nstdout: %s\nstderr: %s", code, exitPartial, out, errs)
	}
	if b, err := os.ReadFile(filepath.Join(target, src, "a.txt")); err != nil || string(b) != "a.txt\n" {
		t.Errorf("a.txt: %q, %v", b, err)
	}
}
