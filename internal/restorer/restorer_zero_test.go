package restorer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/coffer-backup/coffer/internal/archiver"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/vault"
)

// TestZeroFiles restores files made only of zero bytes — one chunk and
// several — at their full size, and dense, as they were.
func TestZeroFiles(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	files := map[string]int{"small-zeros": 1000, "one-chunk-zeros": 200 << 10, "many-chunks-zeros": 9 << 20}
	for name, n := range files {
		if err := os.WriteFile(filepath.Join(src, name), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e, err := vault.OpenEmbedded(ctx, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	r, _, err := repo.Open(ctx, e.Machine, []byte("zero files test passphrase"), true, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	res, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Manifest(ctx, res.Point)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if _, err := restorer.Restore(ctx, r, m.Root, restorer.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	for name, n := range files {
		b, err := os.ReadFile(filepath.Join(target, src, name))
		if err != nil || len(b) != n || !bytes.Equal(b, make([]byte, n)) {
			t.Errorf("%s: restored %d bytes (%v), want %d zero bytes", name, len(b), err, n)
		}
	}
}
