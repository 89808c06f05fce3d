//go:build !linux

package offheap

// Buffers come from the Go heap outside Linux.

const pageSize = 4096

func mapAnon(int, bool) ([]byte, bool) { return nil, false }

func release([]byte) {}

func unmap([]byte) {}

func resident([]byte) int { return -1 }
