package repo_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/coffer-backup/coffer/internal/archiver"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// offline fails every pack read.
type offline struct{ vaultapi.Vault }

func (offline) ReadPack(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, errors.New("offline")
}

func readAll(t *testing.T, r *repo.Repo, c *repo.ChunkCache, n *format.Node) ([]byte, error) {
	t.Helper()
	f, err := r.OpenFile(context.Background(), c, n)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, f.Size())
	_, err = f.ReadAt(b, 0)
	return b, err
}

func TestDiskCache(t *testing.T) {
	ctx := context.Background()
	e, err := vault.OpenEmbedded(ctx, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	keys, _ := format.NewKeys(rand.Reader)
	r, _ := repo.New(e.Machine, keys)
	src := t.TempDir()
	data := make([]byte, 6<<20)
	rand.Read(data)
	os.WriteFile(filepath.Join(src, "f"), data, 0o644)
	res, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := r.Manifest(ctx, res.Point)
	n, err := r.Lookup(ctx, m.Root, filepath.Join(src, "f"))
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	d, err := repo.OpenDiskCache(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	c := r.NewChunkCache(1, 2) // memory keeps almost nothing
	c.UseDisk(d)
	if got, err := readAll(t, r, c, n); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("first read: %v", err)
	}
	d.Close()

	// Offline, a new cache on the same folder serves the file from disk.
	off, _ := repo.New(offline{e.Machine}, keys)
	d, err = repo.OpenDiskCache(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	c = off.NewChunkCache(1, 2)
	c.UseDisk(d)
	if got, err := readAll(t, off, c, n); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read from the disk cache: %v", err)
	}
	d.Close()

	// A damaged cached chunk is dropped and fetched again.
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(n.Chunks) {
		t.Fatalf("%d files cached, want %d", len(ents), len(n.Chunks))
	}
	p := filepath.Join(dir, ents[0].Name())
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	os.WriteFile(p, b, 0o600)
	d, _ = repo.OpenDiskCache(dir, 64<<20)
	c = r.NewChunkCache(1, 2)
	c.UseDisk(d)
	if got, err := readAll(t, r, c, n); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with a damaged cached chunk: %v", err)
	}
	d.Close()

	// The budget holds.
	d, _ = repo.OpenDiskCache(dir, 2<<20)
	d.Close()
	var total int64
	ents, _ = os.ReadDir(dir)
	for _, e := range ents {
		info, _ := e.Info()
		total += info.Size()
	}
	if total > 2<<20 {
		t.Errorf("cache holds %d bytes, budget %d", total, 2<<20)
	}
}
