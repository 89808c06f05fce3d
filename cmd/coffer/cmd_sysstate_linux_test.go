package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSystemStateBackupRestore(t *testing.T) {
	vault := t.TempDir()
	mustCoffer(t, vault, "backup", "--system-state")
	tgt := t.TempDir()
	mustCoffer(t, vault, "restore", "latest", "--system-state", "--target", tgt)
	readme, err := os.ReadFile(filepath.Join(tgt, "README-system-state.md"))
	if err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(tgt, strings.TrimPrefix(filepath.Join(vault, "home"), "/"), "coffer-system-state")
	for _, p := range []string{filepath.Join(tgt, "etc", "passwd"), filepath.Join(stage, "mounts"), filepath.Join(stage, "passwd")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("not restored: %v", err)
		}
	}
	if !strings.Contains(string(readme), stage) {
		t.Errorf("README does not point at %s:\n%s", stage, readme)
	}
	// A point without system state says so.
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), "x")
	mustCoffer(t, vault, "backup", src)
	if _, errs, code := coffer(t, vault, "restore", "latest", "--system-state", "-t", t.TempDir()); code == 0 ||
		!strings.Contains(errs, "holds no system state") {
		t.Errorf("restore --system-state of a plain point: exit %d, %s", code, errs)
	}
}
