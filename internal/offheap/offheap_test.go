package offheap

import (
	"runtime"
	"testing"
)

func TestBufferZeroedAndUsable(t *testing.T) {
	for _, huge := range []bool{Huge, !Huge} {
		b := New(3<<20+100, huge)
		mem := b.Bytes()
		if len(mem) != 3<<20+100 {
			t.Fatalf("len %d, want %d", len(mem), 3<<20+100)
		}
		for i, c := range mem {
			if c != 0 {
				t.Fatalf("byte %d of a new buffer is %d", i, c)
			}
		}
		for i := range mem {
			mem[i] = byte(i)
		}
		b.Release(1 << 20)
		for i, c := range mem {
			want := byte(i)
			if b.Mapped() && i >= 1<<20 {
				want = 0 // released pages read as zero
			}
			if c != want {
				t.Fatalf("huge %v: byte %d after Release(1 MiB) is %d, want %d", huge, i, c, want)
			}
		}
		mem[len(mem)-1] = 7 // still usable
		if mem[len(mem)-1] != 7 {
			t.Fatal("a released buffer does not keep what is written to it")
		}
		b.Free()
		if b.Bytes() != nil || b.Mapped() {
			t.Fatal("a freed buffer still has memory")
		}
	}
}

// TestReleaseRoundsUp: Release keeps the page that holds offset from.
func TestReleaseRoundsUp(t *testing.T) {
	b := New(4*pageSize, !Huge)
	defer b.Free()
	mem := b.Bytes()
	for i := range mem {
		mem[i] = 1
	}
	b.Release(pageSize + 1)
	if !b.Mapped() {
		return // nothing is released on the heap
	}
	for i := range 2 * pageSize {
		if mem[i] != 1 {
			t.Fatalf("byte %d, in a page Release(pageSize+1) keeps, was cleared", i)
		}
	}
	for i := 2 * pageSize; i < len(mem); i++ {
		if mem[i] != 0 {
			t.Fatalf("byte %d, past the rounded offset, was kept", i)
		}
	}
	b.Release(len(mem)) // nothing to release
	b.Release(-5)       // all of it
	if mem[0] != 0 {
		t.Fatal("Release of a negative offset kept the first page")
	}
}

// TestResidentOnlyAsWritten: a mapped buffer costs memory for the pages
// written to it, and none once released.
func TestResidentOnlyAsWritten(t *testing.T) {
	b := New(8<<20, !Huge)
	defer b.Free()
	if runtime.GOOS != "linux" {
		if b.Mapped() || b.Resident() != -1 {
			t.Fatalf("outside Linux: mapped %v, resident %d", b.Mapped(), b.Resident())
		}
		return
	}
	if !b.Mapped() {
		t.Fatal("on Linux the buffer should be mapped")
	}
	if r := b.Resident(); r != 0 {
		t.Fatalf("new buffer: %d bytes resident, want 0", r)
	}
	mem := b.Bytes()
	for i := 0; i < 3<<20; i += pageSize {
		mem[i] = 1
	}
	if r := b.Resident(); r != 3<<20 {
		t.Fatalf("after writing 3 MiB: %d bytes resident", r)
	}
	b.Release(1 << 20)
	if r := b.Resident(); r != 1<<20 {
		t.Fatalf("after Release(1 MiB): %d bytes resident, want 1 MiB", r)
	}
	b.Release(0)
	if r := b.Resident(); r != 0 {
		t.Fatalf("after Release(0): %d bytes resident", r)
	}
}

func TestHeapBuffer(t *testing.T) {
	b := &Buffer{mem: make([]byte, 10)}
	b.Release(0) // no effect on the heap
	if b.Resident() != -1 || len(b.Bytes()) != 10 {
		t.Fatalf("heap buffer: resident %d, len %d", b.Resident(), len(b.Bytes()))
	}
	b.Free()
}
