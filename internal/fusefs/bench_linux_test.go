package fusefs_test

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/coffer-backup/coffer/internal/fusefs"
	"github.com/coffer-backup/coffer/internal/repo"
)

// BenchmarkMountRead1GiB reads a 1 GiB file of random bytes through a
// fresh mount each time (cold chunk cache and page cache), as cp would.
// Run with: go test ./internal/fusefs/ -run '^$' -bench MountRead -benchtime 3x
func BenchmarkMountRead1GiB(b *testing.B) { benchMountRead(b, false) }

// BenchmarkMountRead1GiBDiskCache is the same with the disk tier of the
// chunk cache on (each chunk read is also written, sealed, to disk).
func BenchmarkMountRead1GiBDiskCache(b *testing.B) { benchMountRead(b, true) }

func benchMountRead(b *testing.B, disk bool) {
	const size = 1 << 30
	src := b.TempDir()
	f, err := os.Create(filepath.Join(src, "big"))
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	if _, err := io.CopyN(f, rng, size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	r := newRepo(b)
	backup(b, r, src)
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		o := fusefs.Options{}
		if disk {
			d, err := repo.OpenDiskCache(b.TempDir(), 2<<30)
			if err != nil {
				b.Fatal(err)
			}
			o.Cache = r.NewChunkCache(256<<20, 16)
			o.Cache.UseDisk(d)
			b.Cleanup(func() { d.Close() })
		}
		mnt := mount(b, r, o)
		in, err := os.Open(filepath.Join(mnt, "latest", src, "big"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		// Plain 1 MiB read calls (io.Discard would read in 8 KiB pieces).
		n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{in}, buf)
		b.StopTimer()
		in.Close()
		if err != nil || n != size {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		b.StartTimer()
	}
}

// BenchmarkReaderNoFUSE reads the same file in-process, without FUSE, to
// tell the mount's cost from the fetch pipeline's.
func BenchmarkReaderNoFUSE(b *testing.B) {
	const size = 1 << 30
	src := b.TempDir()
	f, _ := os.Create(filepath.Join(src, "big"))
	io.CopyN(f, rand.NewChaCha8([32]byte{1}), size)
	f.Close()
	r := newRepo(b)
	backup(b, r, src)
	ctx := context.Background()
	buf := make([]byte, 128<<10)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		n, _ := r.Lookup(ctx, mustRoot(b, r), filepath.Join(src, "big"))
		fr, err := r.OpenFile(ctx, r.NewChunkCache(256<<20, 16), n)
		if err != nil {
			b.Fatal(err)
		}
		for off := int64(0); off < size; off += int64(len(buf)) {
			if _, err := fr.ReadAt(buf, off); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	}
}
