package vaultclient_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/coffer-backup/coffer/internal/archiver"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultserver/servertest"
)

// TestTwoMachinesConcurrently backs up and restores two registered
// machines at once through one vault server; neither sees the other's
// points.
func TestTwoMachinesConcurrently(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	type result struct {
		point string
		err   error
	}
	names := []string{"alpha", "beta"}
	results := make([]result, len(names))
	clients := make([]vaultapi.Vault, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		c := env.Machine(t, name)
		clients[i] = c
		src := filepath.Join(t.TempDir(), name)
		files := makeFiles(t, src, rand.New(rand.NewPCG(seed, uint64(i))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].err = func() error {
				r, created, err := repo.Open(ctx, c, []byte("passphrase of "+name+" machine"), true, crand.Reader)
				if err != nil || !created {
					return fmt.Errorf("open: created %v, %v", created, err)
				}
				res, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: crand.Reader, Compression: format.LevelFastest})
				if err != nil {
					return fmt.Errorf("backup: %w", err)
				}
				results[i].point = res.Point.ID
				// A second backup deduplicates against the first.
				res2, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: crand.Reader, Parent: &res.Point})
				if err != nil {
					return fmt.Errorf("second backup: %w", err)
				}
				if res2.Stats.BytesAdded > 64<<10 {
					return fmt.Errorf("second backup added %d bytes", res2.Stats.BytesAdded)
				}
				m, err := r.Manifest(ctx, res.Point)
				if err != nil {
					return err
				}
				target := filepath.Join(t.TempDir(), "restore")
				rr, err := restorer.Restore(ctx, r, m.Root, restorer.Options{Target: target})
				if err != nil || rr.Problems > 0 {
					return fmt.Errorf("restore: %d problems, %v", rr.Problems, err)
				}
				for rel, want := range files {
					got, err := os.ReadFile(filepath.Join(target, src, rel))
					if err != nil || !bytes.Equal(got, want) {
						return fmt.Errorf("restored %s differs (%v)", rel, err)
					}
				}
				points, err := c.Points(ctx)
				if err != nil || len(points) != 2 {
					return fmt.Errorf("points: %d, %v", len(points), err)
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("%s: %v", names[i], r.err)
		}
	}
	// Neither sees the other's point.
	for i, name := range names {
		other := results[1-i].point
		if _, err := clients[i].Point(ctx, other); !errors.Is(err, vaultapi.ErrNotFound) {
			t.Errorf("%s asking for the other machine's point %s: %v, want not found", name, other, err)
		}
		points, err := clients[i].Points(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range points {
			if p.ID == other {
				t.Errorf("%s lists the other machine's point", name)
			}
		}
	}
}

func makeFiles(t *testing.T, dir string, rng *rand.Rand) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for i := range 20 {
		n := rng.IntN(300 << 10)
		if i == 0 {
			n = 3 << 20 // a few chunks
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.IntN(16)) // compressible
		}
		rel := fmt.Sprintf("d%d/f%d", i%3, i)
		files[rel] = b
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}
