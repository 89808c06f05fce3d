package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"time"

	"github.com/spf13/cobra"
)

// addProfileFlags adds hidden flags that write pprof profiles, for the
// measurements recorded in BENCHMARKS.md.
func addProfileFlags(root *cobra.Command) {
	var cpu, mem, heap, trc string
	var heapAt time.Duration
	pf := root.PersistentFlags()
	pf.StringVar(&heap, "profile-heap", "", "write a heap profile to FILE at --profile-heap-at")
	pf.DurationVar(&heapAt, "profile-heap-at", 3*time.Second, "when to take the heap profile")
	_ = pf.MarkHidden("profile-heap")
	_ = pf.MarkHidden("profile-heap-at")
	pf.StringVar(&trc, "profile-trace", "", "write an execution trace to FILE")
	_ = pf.MarkHidden("profile-trace")
	var trcFile *os.File
	pf.StringVar(&cpu, "profile-cpu", "", "write a CPU profile to FILE")
	pf.StringVar(&mem, "profile-mem", "", "write an allocation profile to FILE")
	_ = pf.MarkHidden("profile-cpu")
	_ = pf.MarkHidden("profile-mem")
	var cpuFile *os.File
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if heap != "" {
			time.AfterFunc(heapAt, func() {
				if f, err := os.Create(heap); err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			})
		}
		if trc != "" {
			f, err := os.Create(trc)
			if err != nil {
				return fmt.Errorf("trace: %w", err)
			}
			trcFile = f
			if err := trace.Start(f); err != nil {
				return err
			}
		}
		if cpu == "" {
			return nil
		}
		f, err := os.Create(cpu)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		cpuFile = f
		return pprof.StartCPUProfile(f)
	}
	root.PersistentPostRunE = func(cmd *cobra.Command, args []string) error {
		if trcFile != nil {
			trace.Stop()
			trcFile.Close()
		}
		if cpuFile != nil {
			pprof.StopCPUProfile()
			cpuFile.Close()
		}
		if mem != "" {
			f, err := os.Create(mem)
			if err != nil {
				return fmt.Errorf("memory profile: %w", err)
			}
			defer f.Close()
			runtime.GC()
			return pprof.Lookup("allocs").WriteTo(f, 0)
		}
		return nil
	}
}
