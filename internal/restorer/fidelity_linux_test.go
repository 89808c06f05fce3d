package restorer_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/treetest"
)

// TestFidelity backs up a tree holding every kind of entry and metadata and
// restores it identical.
func TestFidelity(t *testing.T) {
	root := os.Geteuid() == 0
	src := t.TempDir()
	treetest.Build(t, src, treetest.Options{Root: root, Sparse: true, Deep: true})
	want := treetest.Scan(t, src)
	r := newRepo(t)
	start := time.Now()
	rootID := backup(t, r, src)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("backup took %v; a 10 GiB sparse file should take well under a second", d)
	}
	t.Logf("backup: %v", time.Since(start))
	tgt := t.TempDir()
	start = time.Now()
	res, err := restorer.Restore(context.Background(), r, rootID, restorer.Options{Target: tgt, Owners: root,
		Report: func(p restorer.Problem) { t.Errorf("restore: %s: %v", p.Path, p.Err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore: %v, %+v", time.Since(start), res)
	got := treetest.Scan(t, filepath.Join(tgt, src))
	treetest.Compare(t, want, got)
	if !root {
		t.Log("not root: device nodes and owners not checked")
	}
}
