package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcFloor is the heap size below which the garbage collector does not run
// (unless the heap is less than a fifth of it live).
const gcFloor = 48 << 20

// tuneGC sets how often the garbage collector runs: when the heap has
// grown by 25 % over the live heap, but not before it reaches gcFloor (or
// five times the live heap, if that is less). The large buffers of a backup
// (packs, chunker buffers) are few and reused, or live outside the Go
// heap, so the live heap is small; a plain 25 % would collect a heap of
// 20 MB every 5 MB of allocation, costing more CPU than it saves memory.
//
// Go offers no floor under the heap goal, so this uses the memory limit:
// GOGC=400 bounds the goal to five times the live heap, and after every
// collection the limit is set to the larger of gcFloor and 125 % of the
// live heap, plus the runtime's memory that is not heap. A GOGC or
// GOMEMLIMIT in the environment turns this off.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(400)
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	var arm func()
	adjust := func(struct{}) {
		metrics.Read(samples)
		v := make([]uint64, len(samples))
		for i, s := range samples {
			if s.Value.Kind() == metrics.KindUint64 {
				v[i] = s.Value.Uint64()
			}
		}
		live, total, released, objects, unused, free := v[0], v[1], v[2], v[3], v[4], v[5]
		heap := objects + unused + free
		var other uint64
		if total > released+heap {
			other = total - released - heap
		}
		debug.SetMemoryLimit(gcLimit(live, other+unused))
		arm()
	}
	// A cleanup runs after the collection that finds its object unreachable.
	// No limit until the first collection has measured the live heap:
	// until then GOGC=400 alone, from the runtime's 4 MB minimum, paces
	// the collector, and a large early allocation (the key derivation's
	// 64 MiB) does not meet a limit below it.
	arm = func() { runtime.AddCleanup(new([64]byte), adjust, struct{}{}) }
	arm()
}

// gcLimit is the memory limit for a live heap of live bytes and other
// bytes of runtime memory besides it.
func gcLimit(live, other uint64) int64 {
	goal := max(gcFloor, live+live/4) + other
	if goal > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(goal)
}
