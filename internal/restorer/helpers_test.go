package restorer_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/coffer-backup/coffer/internal/archiver"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// newRepo opens a fresh embedded vault with new keys.
func newRepo(t testing.TB) *repo.Repo {
	t.Helper()
	return newRepoIn(t, t.TempDir())
}

// newRepoIn is newRepo with the vault in dir.
func newRepoIn(t testing.TB, dir string) *repo.Repo {
	t.Helper()
	e, err := vault.OpenEmbedded(context.Background(), dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	keys, err := format.NewKeys(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.New(e.Machine, keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// backup backs up paths and returns the point's root tree.
func backup(t testing.TB, r *repo.Repo, paths ...string) vaultapi.ID {
	t.Helper()
	res, err := archiver.Backup(context.Background(), r, archiver.Options{Paths: paths, Rand: rand.Reader,
		Report: func(p archiver.Problem) { t.Logf("backup: %s: %v", p.Path, p.Err) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Problems > 0 {
		t.Fatalf("backup skipped %d entries", res.Problems)
	}
	m, err := r.Manifest(context.Background(), res.Point)
	if err != nil {
		t.Fatal(err)
	}
	return m.Root
}
