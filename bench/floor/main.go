//go:build linux

// Command floor measures what the kernel alone charges for the file work of
// a backup and a restore of a corpus, with no compression, hashing or
// encryption: reading every file (open, fstat, read, close) and creating
// every file again (openat with O_CREAT, write, futimens, close, and a
// mkdir per folder). BENCHMARKS.md compares Coffer's backup and restore
// with these floors.
//
//	go run ./bench/floor [-workers N] CORPUS SCRATCH
//
// SCRATCH must be on the file system to measure, with room for a copy of
// CORPUS; floor makes a folder in it and removes it at the end. Run it on
// a warm page cache (read CORPUS once first) and not within five minutes
// of deleting many files on that file system, its own previous run
// included: ext4 passes over inodes freed that recently while their inode
// table is not yet written back (recently_deleted in fs/ext4/ialloc.c),
// and creating files then costs many times more.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	workers := flag.Int("workers", 2, "goroutines doing the file work")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: floor [-workers N] CORPUS SCRATCH")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 || *workers < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *workers); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

type file struct {
	rel  string
	size int64
}

func run(corpus, scratch string, workers int) error {
	var dirs []string
	var files []file
	var total int64
	err := filepath.WalkDir(corpus, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(corpus, p)
		switch {
		case d.IsDir():
			dirs = append(dirs, rel)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			files = append(files, file{rel, info.Size()})
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("%d files, %d folders, %.1f MB, %d workers\n", len(files), len(dirs), float64(total)/1e6, workers)

	var maxSize int64
	for _, f := range files {
		maxSize = max(maxSize, f.size)
	}
	err = measure("read (open, fstat, read, close)", len(files), workers, maxSize, func(f int, buf []byte) error {
		fd, err := unix.Open(filepath.Join(corpus, files[f].rel), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		for off := 0; off < int(st.Size); {
			n, err := unix.Read(fd, buf[off:st.Size])
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			off += n
		}
		return nil
	})
	if err != nil {
		return err
	}

	target, err := os.MkdirTemp(scratch, "floor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(target)
	start, before := time.Now(), usage()
	for _, d := range dirs[1:] { // dirs[0] is the corpus itself
		if err := unix.Mkdir(filepath.Join(target, d), 0o755); err != nil {
			return err
		}
	}
	report(fmt.Sprintf("mkdir (%d folders)", len(dirs)-1), start, before)
	// The files' bytes come from one buffer of zeros: what the kernel does
	// with them does not depend on their values.
	times := [2]unix.Timespec{unix.NsecToTimespec(1e18), unix.NsecToTimespec(1e18)}
	return measure("create (openat O_CREAT|O_EXCL, write, futimens, close)", len(files), workers, maxSize, func(f int, buf []byte) error {
		fd, err := unix.Open(filepath.Join(target, files[f].rel), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for off := int64(0); off < files[f].size; {
			n, err := unix.Pwrite(fd, buf[off:files[f].size], off)
			if err != nil {
				return err
			}
			off += int64(n)
		}
		// futimens, as a restore sets a file's times: utimensat on the
		// descriptor itself (a NULL path).
		if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&times[0])), 0, 0, 0); e != 0 {
			return e
		}
		return nil
	})
}

// measure runs fn for every file, spread over workers, and reports the wall
// time and the process's CPU time.
func measure(what string, n, workers int, bufSize int64, fn func(f int, buf []byte) error) error {
	start, before := time.Now(), usage()
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, bufSize)
			for f := w; f < n && errs[w] == nil; f += workers {
				errs[w] = fn(f, buf)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	report(what, start, before)
	return nil
}

// cpu is the process's user and system CPU time so far.
type cpu struct{ user, sys time.Duration }

func usage() cpu {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpu{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

func report(what string, start time.Time, before cpu) {
	wall, after := time.Since(start), usage()
	fmt.Printf("%-56s %6.2f s wall %6.2f s user %6.2f s system\n", what, wall.Seconds(),
		(after.user - before.user).Seconds(), (after.sys - before.sys).Seconds())
}
