package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// plainGC hands a restore the runtime's own pacing once tuneGC set the
// lean one, and leaves a GOGC or GOMEMLIMIT from the environment alone.
func TestPlainGC(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		gcLean.Store(false)
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	})

	tuneGC(func(string) string { return "" })
	if !gcLean.Load() || debug.SetGCPercent(-1) != 400 {
		t.Fatal("tuneGC did not set its pacing")
	}
	debug.SetGCPercent(400)
	debug.SetMemoryLimit(64 << 20) // as its first adjustment would
	plainGC()
	if p := debug.SetGCPercent(-1); p != 100 {
		t.Errorf("after plainGC, GOGC %d, want 100", p)
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("after plainGC, memory limit %d, want none", l)
	}

	gcLean.Store(false)
	debug.SetGCPercent(50)
	tuneGC(func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	})
	plainGC()
	if p := debug.SetGCPercent(-1); p != 50 || gcLean.Load() {
		t.Errorf("with GOGC=50 in the environment: GOGC %d, lean %v; want 50 and off", p, gcLean.Load())
	}
}
