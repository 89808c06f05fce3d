package pack

import (
	"sync"

	"github.com/coffer-backup/coffer/internal/offheap"
)

// Buffer is memory for assembling one pack at a time: TargetSize bytes
// that, where the system allows (Linux), come straight from the operating
// system (package offheap) and go back to it between packs. A backup holds
// one pack being filled and one or two being uploaded; the buffers of
// packs that are neither cost no resident memory, which a buffer of the Go
// heap would.
type Buffer struct {
	mem *offheap.Buffer // TargetSize bytes
}

// freeBufs keeps released buffers for reuse: mapped memory is never
// unmapped, because a transport may still read a pack it gave up on.
var freeBufs struct {
	mu   sync.Mutex
	bufs []*Buffer
}

// GetBuffer returns an unused buffer.
func GetBuffer() *Buffer {
	freeBufs.mu.Lock()
	defer freeBufs.mu.Unlock()
	if n := len(freeBufs.bufs); n > 0 {
		b := freeBufs.bufs[n-1]
		freeBufs.bufs = freeBufs.bufs[:n-1]
		return b
	}
	return &Buffer{mem: offheap.New(TargetSize, offheap.Huge)}
}

// PutBuffer gives back a buffer whose pack is stored (or dropped): its
// memory returns to the operating system until the buffer is used again.
func PutBuffer(b *Buffer) {
	if b == nil {
		return
	}
	b.mem.Release(0)
	freeBufs.mu.Lock()
	freeBufs.bufs = append(freeBufs.bufs, b)
	freeBufs.mu.Unlock()
}

// Bytes returns the buffer's memory, empty, with capacity TargetSize.
func (b *Buffer) Bytes() []byte { return b.mem.Bytes()[:0] }
