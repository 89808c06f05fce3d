package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

func init() {
	if os.Getenv("MEMDEBUG") == "" {
		return
	}
	go func() {
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Fprintf(os.Stderr, "MEM g=%d heapInuse=%d heapIdleUnreleased=%d stack=%d sys=%d other=%d goal=%d ngc=%d\n",
				runtime.NumGoroutine(), m.HeapInuse>>20, (m.HeapIdle-m.HeapReleased)>>20, m.StackInuse>>20, m.Sys>>20, (m.MSpanInuse+m.MCacheInuse+m.BuckHashSys+m.GCSys+m.OtherSys)>>20, m.NextGC>>20, m.NumGC)
			time.Sleep(500 * time.Millisecond)
		}
	}()
}
