package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInit: init makes the keys and keeps them, so the first backup needs
// no passphrase; a second init makes none and checks the passphrase; a
// wrong or short passphrase is refused with its exit code.
func TestInit(t *testing.T) {
	e := newEnv(t)
	e.env["COFFER_PASSPHRASE"] = "too short"
	if _, errs, code := e.run("init"); code != exitUsage || !strings.Contains(errs, "16") {
		t.Fatalf("init with a short passphrase: exit %d, stderr %q; want %d naming the 16 characters", code, errs, exitUsage)
	}
	if _, err := os.Stat(filepath.Join(e.home, "keys")); !os.IsNotExist(err) {
		t.Fatalf("a refused init kept keys: %v", err)
	}

	e.env["COFFER_PASSPHRASE"] = testPass
	var res struct {
		Type    string `json:"type"`
		Created bool   `json:"created"`
		Vault   string `json:"vault"`
	}
	lastJSON(t, e.mustRun("init", "--json"), &res)
	if res.Type != "init" || !res.Created || res.Vault != e.vault {
		t.Fatalf("first init: %+v, want created in %s", res, e.vault)
	}
	lastJSON(t, e.mustRun("init", "--json"), &res)
	if res.Created {
		t.Fatalf("second init: %+v, want the keys found, not made again", res)
	}

	e.env["COFFER_PASSPHRASE"] = "a wrong passphrase of enough length"
	if _, _, code := e.run("init"); code != exitPassphrase {
		t.Fatalf("init with a wrong passphrase: exit %d, want %d", code, exitPassphrase)
	}

	// The first backup runs on the kept keys, without a passphrase.
	delete(e.env, "COFFER_PASSPHRASE")
	src := filepath.Join(t.TempDir(), "src")
	writeTree(t, src, map[string]string{"a.txt": "alpha", "d/b.txt": "beta"})
	var sum summary
	lastJSON(t, e.mustRun("backup", "--json", src), &sum)
	if sum.Files != 2 {
		t.Fatalf("backup after init: %+v, want 2 files", sum)
	}
	out := e.mustRun("init")
	if !strings.Contains(out, "already exist") {
		t.Fatalf("init on kept keys: %q, want it to say the keys exist", out)
	}
}
