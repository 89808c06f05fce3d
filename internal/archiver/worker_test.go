package archiver

import (
	"runtime"
	"testing"
)

// TestDefaultWorkers: one file worker per core the runtime may use, and
// never fewer than two.
func TestDefaultWorkers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, c := range []struct{ procs, want int }{{1, 2}, {2, 2}, {3, 3}, {8, 8}, {32, 32}} {
		runtime.GOMAXPROCS(c.procs)
		if got := DefaultWorkers(); got != c.want {
			t.Errorf("GOMAXPROCS=%d: %d workers, want %d", c.procs, got, c.want)
		}
	}
}
