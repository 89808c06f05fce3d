package archiver

import (
	"testing"

	"github.com/coffer-backup/coffer/internal/chunker"
	"github.com/coffer-backup/coffer/internal/offheap"
)

// TestChunkBufferGivenBack: a worker's chunker buffer keeps its first
// megabyte resident between files, and gives back what a larger file
// (or segment) made resident beyond it.
func TestChunkBufferGivenBack(t *testing.T) {
	buf := offheap.New(chunker.BufSize, !offheap.Huge)
	defer buf.Free()
	if !buf.Mapped() {
		t.Fatal("on Linux the chunker buffer should lie outside the Go heap")
	}
	c := &chunking{buf: buf}
	mem := buf.Bytes()
	fill := func(n int) {
		for i := 0; i < n; i++ {
			mem[i] = 1
		}
	}
	fill(600 << 10)
	c.read(600 << 10)
	if r := buf.Resident(); r < 600<<10 {
		t.Fatalf("after a 600 KiB file: %d bytes resident, want the file's pages kept", r)
	}
	fill(len(mem))
	c.read(20 << 20) // a file larger than the buffer
	if r := buf.Resident(); r != residentChunkBuf {
		t.Fatalf("after a 20 MiB file: %d bytes resident, want %d", r, residentChunkBuf)
	}
	fill(residentChunkBuf + 1)
	c.read(residentChunkBuf + 1)
	if r := buf.Resident(); r != residentChunkBuf {
		t.Fatalf("after a file of a byte over the kept part: %d bytes resident, want %d", r, residentChunkBuf)
	}
}
