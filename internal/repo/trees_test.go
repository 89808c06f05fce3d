package repo_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/archiver"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// walkTrees loads every tree below root through r.Tree and returns their
// encodings by ID.
func walkTrees(t *testing.T, ctx context.Context, r *repo.Repo, root vaultapi.ID) map[vaultapi.ID][]byte {
	t.Helper()
	out := map[vaultapi.ID][]byte{}
	var walk func(id vaultapi.ID) error
	walk = func(id vaultapi.ID) error {
		tr, err := r.Tree(ctx, id)
		if err != nil {
			return err
		}
		enc, err := tr.AppendEncode(nil)
		if err != nil {
			return err
		}
		out[id] = enc
		for _, n := range tr.Nodes {
			if n.Type == format.TypeDir && !n.Subtree.IsZero() {
				if err := walk(n.Subtree); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		t.Fatal(err)
	}
	return out
}

// backedUp backs up src, once fill has filled it, into a new embedded
// vault, and returns the vault (closed when the test ends), the keys and
// the point's root tree.
func backedUp(t *testing.T, fill func(src string)) (*vault.Embedded, *format.Keys, vaultapi.ID) {
	t.Helper()
	ctx := context.Background()
	e, err := vault.OpenEmbedded(ctx, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	keys, _ := format.NewKeys(rand.Reader)
	r, _ := repo.New(e.Machine, keys)
	src := t.TempDir()
	fill(src)
	res, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Manifest(ctx, res.Point)
	if err != nil {
		t.Fatal(err)
	}
	return e, keys, m.Root
}

// TestPrefetch loads a point's trees while a prefetch runs, from several
// goroutines, and checks they are the trees loaded one by one; and that
// with the vault unreadable, waiting walks get errors, not a hang.
func TestPrefetch(t *testing.T) {
	ctx := context.Background()
	e, keys, root := backedUp(t, func(src string) {
		for i := range 5 {
			for j := range 4 {
				d := filepath.Join(src, fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", j), "c")
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, "f"), fmt.Appendf(nil, "%d %d", i, j), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
	fresh := func(v vaultapi.Vault) *repo.Repo {
		r, err := repo.New(v, keys)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	want := walkTrees(t, ctx, fresh(e.Machine), root)
	if len(want) < 5*4*2 {
		t.Fatalf("%d trees, want at least %d", len(want), 5*4*2)
	}

	p := fresh(e.Machine)
	p.Prefetch(ctx, root, 1<<16)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			got := walkTrees(t, ctx, p, root)
			if len(got) != len(want) {
				t.Errorf("with a prefetch: %d trees, want %d", len(got), len(want))
			}
			for id, enc := range want {
				if !bytes.Equal(got[id], enc) {
					t.Errorf("tree %s differs with a prefetch", id.Short())
				}
			}
		})
	}
	wg.Wait()

	off := fresh(offline{e.Machine})
	off.Prefetch(ctx, root, 1<<16)
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := off.Tree(tctx, root); err == nil || tctx.Err() != nil {
		t.Fatalf("Tree with the vault unreadable: got %v (context: %v), want a read error", err, tctx.Err())
	}
}

// TakeTree gives the tree Tree gives and leaves the cache without it; a
// tree taken twice is loaded twice, the same.
func TestTakeTree(t *testing.T) {
	ctx := context.Background()
	e, keys, root := backedUp(t, func(src string) {
		if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
			t.Fatal(err)
		}
	})
	p, _ := repo.New(e.Machine, keys)
	want, err := p.Tree(ctx, root)
	if err != nil || repo.CachedTrees(p) != 1 {
		t.Fatalf("Tree: %v, %d cached", err, repo.CachedTrees(p))
	}
	wantEnc, err := want.AppendEncode(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		got, err := p.TakeTree(ctx, root)
		if err != nil {
			t.Fatalf("TakeTree %d: %v", i, err)
		}
		if enc, err := got.AppendEncode(nil); err != nil || !bytes.Equal(enc, wantEnc) {
			t.Fatalf("TakeTree %d: another tree (%v)", i, err)
		}
		if n := repo.CachedTrees(p); n != 0 {
			t.Fatalf("after TakeTree %d: %d trees cached, want 0", i, n)
		}
	}
}
