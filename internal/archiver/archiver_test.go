package archiver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/archiver"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/local"
	"github.com/coffer-backup/coffer/internal/storage/wrap"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/verify"
)

const pass = "archiver test passphrase"

// writeTree makes files: a few large random ones (several packs) and many
// small ones.
func writeTree(t *testing.T, dir string, seed uint64) {
	t.Helper()
	rng := mrand.New(mrand.NewPCG(seed, 7))
	for i := range 6 {
		b := make([]byte, 7<<20+rng.IntN(1<<20))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("big%d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%17))
		os.MkdirAll(sub, 0o755)
		b := fmt.Appendf(nil, "small file %d %x\n", i, rng.Uint64())
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", i)), bytes.Repeat(b, 1+i%50), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sameContent(t *testing.T, want, got string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: restored content differs (%v)", rel, err)
		}
		n++
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("compared %d files: %v", n, err)
	}
}

func open(t *testing.T, dir string, st storage.Storage) (*vault.Embedded, *repo.Repo) {
	t.Helper()
	e, err := vault.OpenEmbedded(context.Background(), dir, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	r, _, err := repo.Open(context.Background(), e.Machine, []byte(pass), true, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return e, r
}

// TestBackupThroughFaultyStorage: one storage request in ten fails (some
// after doing their work, as when a response is lost); with retries the
// backup, restore and verify all complete and nothing is lost.
func TestBackupThroughFaultyStorage(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	writeTree(t, src, 1)
	vdir := t.TempDir()
	base, err := local.New(filepath.Join(vdir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	// Every tenth call fails; half the runs lose the response after the work.
	faulty := wrap.Inject(base, wrap.Faults{Every: 10, AfterWrite: seed%2 == 0})
	st := wrap.Retry(faulty, wrap.RetryPolicy{Attempts: 8, Sleep: func(context.Context, time.Duration) error { return nil }})
	_, r := open(t, vdir, st)

	res, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: rand.Reader})
	if err != nil {
		t.Fatalf("backup through faulty storage: %v", err)
	}
	target := t.TempDir()
	if _, err := restorer.Restore(ctx, r, mustRoot(t, r, res), restorer.Options{Target: target}); err != nil {
		t.Fatalf("restore through faulty storage: %v", err)
	}
	sameContent(t, src, filepath.Join(target, src))
	points, _ := r.Vault.Points(ctx)
	vres, err := verify.Verify(ctx, r, points, verify.Options{})
	if err != nil || vres.Damaged != 0 {
		t.Fatalf("verify: %+v, %v", vres, err)
	}
	if faulty.Injected() == 0 {
		t.Fatal("no fault was injected; the test proves nothing")
	}
	t.Logf("%d faults injected and survived", faulty.Injected())
}

func mustRoot(t *testing.T, r *repo.Repo, res archiver.Result) [32]byte {
	t.Helper()
	m, err := r.Manifest(context.Background(), res.Point)
	if err != nil {
		t.Fatal(err)
	}
	return m.Root
}

// TestFailedBackupCommitsNothing: storage that keeps failing makes the
// backup fail with an error; no point is committed, the vault stays
// consistent, and the next backup on healthy storage works.
func TestFailedBackupCommitsNothing(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	writeTree(t, src, 2)
	vdir := t.TempDir()
	base, err := local.New(filepath.Join(vdir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	broken := wrap.Inject(base, wrap.Faults{Ops: wrap.OpPut, Every: 2})
	e, r := open(t, vdir, broken)
	_, err = archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: rand.Reader})
	if err == nil || !errors.Is(err, wrap.ErrInjected) {
		t.Fatalf("backup on failing storage: err = %v, want the storage error", err)
	}
	if pts, _ := r.Vault.Points(ctx); len(pts) != 0 {
		t.Fatalf("a failed backup committed %d points", len(pts))
	}
	e.Close()

	_, r = open(t, vdir, base)
	res, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if _, err := restorer.Restore(ctx, r, mustRoot(t, r, res), restorer.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	sameContent(t, src, filepath.Join(target, src))
}

// TestSeveralSources checks a source that is a file, and
// several sources sharing parents.
func TestSeveralSources(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	a, b := filepath.Join(base, "x", "a"), filepath.Join(base, "x", "y", "b.txt")
	os.MkdirAll(a, 0o755)
	os.MkdirAll(filepath.Dir(b), 0o755)
	os.WriteFile(filepath.Join(a, "in-a"), []byte("A"), 0o644)
	os.WriteFile(b, []byte("B"), 0o600)
	os.WriteFile(filepath.Join(base, "x", "y", "not-backed-up"), []byte("no"), 0o644)
	_, r := open(t, t.TempDir(), nil)
	res, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{a, b}, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Files != 2 {
		t.Errorf("files = %d, want 2", res.Stats.Files)
	}
	target := t.TempDir()
	if _, err := restorer.Restore(ctx, r, mustRoot(t, r, res), restorer.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{filepath.Join(a, "in-a"): "A", b: "B"} {
		if got, err := os.ReadFile(filepath.Join(target, p)); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v", p, got, err)
		}
	}
	if _, err := os.Stat(filepath.Join(target, base, "x", "y", "not-backed-up")); err == nil {
		t.Error("a sibling of a source was backed up")
	}
}

// TestLargeFileInSegments backs up a file large enough to be read in
// segments by several workers: it restores byte for byte, and reading it
// again gives the same chunks (nothing new is stored).
func TestLargeFileInSegments(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	size := archiver.SegmentFrom + 3<<20 + 12345
	b := make([]byte, size)
	rng := mrand.NewChaCha8([32]byte{1, 2, 3})
	rng.Read(b[:size/2])
	for i := size / 2; i < size; i++ { // a compressible half
		b[i] = byte(i / 4096)
	}
	if err := os.WriteFile(filepath.Join(src, "big"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, r := open(t, t.TempDir(), nil)
	res, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.BytesRead != uint64(size) {
		t.Errorf("read %d bytes, want %d", res.Stats.BytesRead, size)
	}
	target := t.TempDir()
	if _, err := restorer.Restore(ctx, r, mustRoot(t, r, res), restorer.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	sameContent(t, src, filepath.Join(target, src))
	again, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: rand.Reader, Parent: &res.Point})
	if err != nil {
		t.Fatal(err)
	}
	if again.Stats.BytesRead != 0 {
		t.Errorf("unchanged large file read again: %d bytes", again.Stats.BytesRead)
	}
	// A forced re-read (no parent) finds every chunk already stored.
	forced, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: rand.Reader, Parent: nil})
	if err != nil {
		t.Fatal(err)
	}
	if forced.Stats.BytesAdded > 64<<10 {
		t.Errorf("re-reading the same large file added %d bytes; its chunks should all be known", forced.Stats.BytesAdded)
	}
}
