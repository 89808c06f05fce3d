package agent

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrLocked is returned when another process holds the backup lock.
var ErrLocked = errors.New("another Coffer backup is running on this machine")

// LockName is the backup lock's file name in the agent's home.
const LockName = "backup.lock"

// Lock is a held backup lock: an advisory lock on a file (flock on Unix,
// LockFileEx on Windows), released by Unlock or when the process ends, so
// a crash never leaves a stale lock. The file holds the holder's PID, for
// messages.
type Lock struct{ f *os.File }

// TryLock takes the lock in file path without waiting; ErrLocked (wrapped,
// naming the holder's PID) if another process holds it.
func TryLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("backup lock: %w", err)
	}
	if err := lockFile(f); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, errWouldBlock) {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b[:n]))); perr == nil {
				return nil, fmt.Errorf("%w (process %d holds %s)", ErrLocked, pid, path)
			}
			return nil, fmt.Errorf("%w (%s is held)", ErrLocked, path)
		}
		return nil, fmt.Errorf("backup lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := unlockFile(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
