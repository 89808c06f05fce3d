//go:build linux

// Command floor measures what the kernel alone charges for the file work of
// a backup and a restore of a corpus, with no compression, hashing or
// encryption: reading every file (open, fstat, read, close) and creating
// every file again (openat with O_CREAT, write, futimens, close, and a
// mkdir per folder). bench/run.sh runs it once per corpus it restores, and
// its report sets Coffer's backup and restore beside these floors.
//
//	go run ./bench/floor [-workers N] [-csv] [-keep] CORPUS SCRATCH
//
// SCRATCH must be on the file system to measure, with room for a copy of
// CORPUS; floor makes a folder in it and removes it at the end, unless
// -keep is given (then the folder's path is printed on stderr, for the
// caller to delete later). Run it on a warm page cache (read CORPUS once
// first) and not within six minutes of deleting many files on that file
// system, its own previous run included: without a journal, ext4 passes
// over inodes freed in the last minute, or the last six while their inode
// table block is not yet written back (recently_deleted in
// fs/ext4/ialloc.c), and creating files then costs many times more.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
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
	var o options
	flag.IntVar(&o.workers, "workers", 2, "goroutines doing the file work")
	flag.BoolVar(&o.csv, "csv", false, "print CSV (step,files,bytes,wall_s,user_s,sys_s) instead of text")
	flag.BoolVar(&o.keep, "keep", false, "keep the copy made in SCRATCH (its path goes to stderr)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: floor [-workers N] [-csv] [-keep] CORPUS SCRATCH")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 || o.workers < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(os.Stdout, flag.Arg(0), flag.Arg(1), o); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

type options struct {
	workers   int
	csv, keep bool
}

type file struct {
	rel  string
	size int64
}

// Steps, as the CSV names them.
const (
	stepRead   = "read"
	stepMkdir  = "mkdir"
	stepCreate = "create"
)

func run(w io.Writer, corpus, scratch string, o options) error {
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
	rep := &reporter{w: w, csv: o.csv}
	if o.csv {
		fmt.Fprintln(w, "step,files,bytes,wall_s,user_s,sys_s")
	} else {
		fmt.Fprintf(w, "%d files, %d folders, %.1f MB, %d workers\n", len(files), len(dirs), float64(total)/1e6, o.workers)
	}

	var maxSize int64
	for _, f := range files {
		maxSize = max(maxSize, f.size)
	}
	start, before := time.Now(), usage()
	err = each(len(files), o.workers, maxSize, func(f int, buf []byte) error {
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
		return fmt.Errorf("read: %w", err)
	}
	rep.line(stepRead, "read (open, fstat, read, close)", len(files), total, start, before)

	target, err := os.MkdirTemp(scratch, "floor-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "floor: kept", target)
	} else {
		defer os.RemoveAll(target)
	}
	start, before = time.Now(), usage()
	for _, d := range dirs[1:] { // dirs[0] is the corpus itself
		if err := unix.Mkdir(filepath.Join(target, d), 0o755); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
	}
	rep.line(stepMkdir, fmt.Sprintf("mkdir (%d folders)", len(dirs)-1), len(dirs)-1, 0, start, before)

	// The files' bytes come from one buffer of zeros: what the kernel does
	// with them does not depend on their values.
	times := [2]unix.Timespec{unix.NsecToTimespec(1e18), unix.NsecToTimespec(1e18)}
	start, before = time.Now(), usage()
	err = each(len(files), o.workers, maxSize, func(f int, buf []byte) error {
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
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	rep.line(stepCreate, "create (openat O_CREAT|O_EXCL, write, futimens, close)", len(files), total, start, before)
	return rep.err
}

// each runs fn for every file, spread over workers, each with a buffer of
// bufSize bytes.
func each(n, workers int, bufSize int64, fn func(f int, buf []byte) error) error {
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
	return errors.Join(errs...)
}

// cpu is the process's user and system CPU time so far.
type cpu struct{ user, sys time.Duration }

func usage() cpu {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpu{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

// reporter prints one line per step, as text or CSV.
type reporter struct {
	w   io.Writer
	csv bool
	err error
}

func (r *reporter) line(step, what string, items int, bytes int64, start time.Time, before cpu) {
	wall, after := time.Since(start), usage()
	user, sys := (after.user - before.user).Seconds(), (after.sys - before.sys).Seconds()
	var err error
	if r.csv {
		_, err = fmt.Fprintf(r.w, "%s,%d,%d,%.3f,%.3f,%.3f\n", step, items, bytes, wall.Seconds(), user, sys)
	} else {
		_, err = fmt.Fprintf(r.w, "%-56s %6.2f s wall %6.2f s user %6.2f s system\n", what, wall.Seconds(), user, sys)
	}
	if r.err == nil {
		r.err = err
	}
}
