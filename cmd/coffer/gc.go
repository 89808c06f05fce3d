package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// gcFloor is the heap size below which the garbage collector does not run
// (unless the heap is less than a fifth of it live). A first backup of
// the linux corpus keeps 20–32 MB live; at 48 MiB it ran 19 collections
// and peaked at ≈98 MiB resident, at 32 MiB 47–52 collections (0.1 CPU-s
// more) and ≈83 MiB.
const gcFloor = 32 << 20

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
	gcLean.Store(true)
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
		if !gcLean.Load() {
			return // plainGC turned this off
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

// gcLean says tuneGC's pacing is on.
var gcLean atomic.Bool

// plainGC turns tuneGC's pacing off for the rest of the process, for the
// runtime's own (GOGC=100). A restore's live heap is the point's trees
// and a record per file and chunk, about 110 MB for the linux corpus,
// and collecting every 25 % of growth over it scans all of it many times:
// 13 collections and 0.37 CPU-s in a full restore of that corpus, against
// 10 and 0.11 at GOGC=100, with the same peak RSS (the memory limit made
// the runtime return memory to the OS and take it back). No-op if the
// environment set GOGC or GOMEMLIMIT.
func plainGC() {
	if gcLean.Swap(false) {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	}
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
