package restorer_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/treetest"
)

// BenchmarkRestore restores a source-like tree of 2,000 files (≈31 MB)
// from the embedded vault into a new folder each time: planning, fetching
// in pack order, decrypting, decompressing and creating the files.
func BenchmarkRestore(b *testing.B) {
	src := b.TempDir()
	n := treetest.SourceLike(b, src, 1, 2000)
	r := newRepo(b)
	root := backup(b, r, src)
	dst := b.TempDir()
	b.SetBytes(n)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		res, err := restorer.Restore(context.Background(), r, root, restorer.Options{Target: filepath.Join(dst, strconv.Itoa(i))})
		if err != nil {
			b.Fatal(err)
		}
		if res.Files != 2000 || res.Bytes != uint64(n) || res.Problems != 0 {
			b.Fatalf("restored %d files, %d bytes, %d problems; want 2000 files, %d bytes", res.Files, res.Bytes, res.Problems, n)
		}
	}
}
