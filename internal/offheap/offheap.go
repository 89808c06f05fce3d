// Package offheap provides large byte buffers outside the Go heap.
//
// On Linux a Buffer is a private anonymous mapping: its pages become
// resident only when written, Release gives them back to the system at
// once, and the collector neither counts nor scans them, so a buffer that
// is large but mostly unused (a chunker's, sized for the largest chunk)
// costs only the part in use and does not raise the heap's goal.
// Elsewhere a Buffer is an ordinary slice and Release does nothing.
package offheap

// Buffer is a fixed-size block of memory, zeroed when made.
type Buffer struct {
	mem    []byte
	mapped bool
}

// Huge asks New for transparent huge pages where the system offers them
// on request: fewer page faults for a buffer written from end to end, at
// the price of residency in 2 MiB steps.
const Huge = true

// New returns a buffer of n bytes. huge is Huge for a buffer that is
// always written in full before it is released.
func New(n int, huge bool) *Buffer {
	if mem, ok := mapAnon(n, huge); ok {
		return &Buffer{mem: mem, mapped: true}
	}
	return &Buffer{mem: make([]byte, n)}
}

// Bytes returns the whole buffer.
func (b *Buffer) Bytes() []byte { return b.mem }

// Mapped reports whether the buffer lies outside the Go heap.
func (b *Buffer) Mapped() bool { return b.mapped }

// Release gives the buffer's pages from offset from on back to the system
// (from is rounded up to a page boundary); they read as zero when next
// touched. The buffer stays usable.
func (b *Buffer) Release(from int) {
	if !b.mapped || from >= len(b.mem) {
		return
	}
	from = (max(from, 0) + pageSize - 1) &^ (pageSize - 1)
	if from < len(b.mem) {
		release(b.mem[from:])
	}
}

// Resident returns how many bytes of the buffer are in memory now, in
// whole pages, or -1 where the system does not tell (a buffer of the Go
// heap, or a system other than Linux).
func (b *Buffer) Resident() int {
	if !b.mapped {
		return -1
	}
	return resident(b.mem)
}

// Free unmaps a mapped buffer; neither it nor any slice of its bytes may
// be used afterwards. A buffer of the Go heap is left to the collector.
func (b *Buffer) Free() {
	if b.mapped {
		unmap(b.mem)
	}
	b.mem, b.mapped = nil, false
}
