package archiver_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/coffer-backup/coffer/internal/archiver"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/treetest"
	"github.com/coffer-backup/coffer/internal/vault"
)

// BenchmarkBackup backs up a source-like tree of 2,000 files (≈31 MB)
// into a new embedded vault each time: the whole pipeline from the walk
// to the commit, with keys made directly (no passphrase derivation).
func BenchmarkBackup(b *testing.B) {
	src := b.TempDir()
	n := treetest.SourceLike(b, src, 1, 2000)
	vaults := b.TempDir()
	keys, err := format.NewKeys(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(n)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		e, err := vault.OpenEmbedded(context.Background(), filepath.Join(vaults, strconv.Itoa(i)), nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		r, err := repo.New(e.Machine, keys)
		if err != nil {
			b.Fatal(err)
		}
		res, err := archiver.Backup(context.Background(), r, archiver.Options{Paths: []string{src}, Rand: rand.Reader})
		if err != nil {
			b.Fatal(err)
		}
		if res.Problems != 0 || res.Stats.BytesRead != uint64(n) {
			b.Fatalf("backup read %d bytes with %d problems, want %d bytes", res.Stats.BytesRead, res.Problems, n)
		}
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
