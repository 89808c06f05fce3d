package local_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/local"
	"github.com/coffer-backup/coffer/internal/storage/storagetest"
)

func newStore(t *testing.T) *local.Store {
	t.Helper()
	s, err := local.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatalf("local.New: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage { return newStore(t) })
}

func TestTempFilesNeverListed(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.Put(ctx, "a/b", bytes.NewReader([]byte("x")), 1, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// A crashed Put leaves a temporary file behind.
	stale := filepath.Join(s.Dir(), ".coffer-tmp", "put-123")
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := s.List(ctx, "", func(i storage.Info) error { names = append(names, i.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/b"}; !slices.Equal(names, want) {
		t.Errorf("List: got %q, want %q", names, want)
	}
	if err := s.Put(ctx, ".coffer-tmp/x", bytes.NewReader([]byte("x")), 1, storage.PutOptions{}); err == nil {
		t.Errorf("Put into the temporary directory: no error, want one")
	}

	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	n, err := s.Clean(old.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("Clean: got %d, %v; want 1, nil", n, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file still there: %v", err)
	}
	if _, err := s.Stat(ctx, "a/b"); err != nil {
		t.Errorf("Clean touched an object: %v", err)
	}
}

func TestFileWhereDirectoryExpected(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if err := s.Put(ctx, "a", bytes.NewReader([]byte("x")), 1, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "a/b"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(a/b) under file a: got %v, want ErrNotFound", err)
	}
	if err := s.Put(ctx, "a/b", bytes.NewReader([]byte("x")), 1, storage.PutOptions{}); err == nil {
		t.Errorf("Put(a/b) under file a: no error, want one")
	}
}

func BenchmarkPut(b *testing.B) {
	s, err := local.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("coffer"), 1<<20/6)
	b.SetBytes(int64(len(data)))
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if err := s.Put(ctx, "bench/obj", bytes.NewReader(data), int64(len(data)), storage.PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
