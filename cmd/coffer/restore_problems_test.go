//go:build linux

package main

import (
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
	if code != exitDamaged || !strings.Contains(errs, "restore incomplete") || !strings.Contains(errs, "damaged") ||
		!strings.Contains(errs, filepath.Join(target, src, "big.bin")) {
		t.Fatalf("restore of a damaged vault: exit %d, want %d, naming big.bin\nstdout: %s\nstderr: %s", code, exitDamaged, out, errs)
	}
	if _, err := os.Lstat(filepath.Join(target, src, "big.bin")); err == nil {
		t.Errorf("the damaged big.bin was left in the target")
	}
	if _, err := os.Stat(filepath.Join(target, src, "docs", "hello.txt")); err != nil {
		t.Errorf("an undamaged file was not restored: %v", err)
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
