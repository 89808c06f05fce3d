package pack

import "golang.org/x/sys/unix"

// mapAnon maps n bytes of private anonymous memory.
func mapAnon(n int) ([]byte, bool) {
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, false
	}
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
	return mem, true
}

// release frees the pages of mapped memory at once; they read as zero
// when next touched.
func release(mem []byte) { _ = unix.Madvise(mem, unix.MADV_DONTNEED) }
