package offheap

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

var pageSize = unix.Getpagesize()

func mapAnon(n int, huge bool) ([]byte, bool) {
	if n <= 0 {
		return nil, false
	}
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, false
	}
	// Asked either way: with huge pages "always", a buffer written only
	// in part would otherwise become resident 2 MiB at a time.
	advice := unix.MADV_NOHUGEPAGE
	if huge {
		advice = unix.MADV_HUGEPAGE
	}
	_ = unix.Madvise(mem, advice)
	return mem, true
}

func release(mem []byte) { _ = unix.Madvise(mem, unix.MADV_DONTNEED) }

func unmap(mem []byte) { _ = unix.Munmap(mem) }

func resident(mem []byte) int {
	vec := make([]byte, (len(mem)+pageSize-1)/pageSize)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(mem))),
		uintptr(len(mem)), uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if errno != 0 {
		return -1
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n * pageSize
}
