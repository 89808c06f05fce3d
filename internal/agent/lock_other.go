//go:build !unix && !windows

package agent

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("lock held")

// Without file locks (plan9, wasm), the lock is the process's own.
func lockFile(*os.File) error   { return nil }
func unlockFile(*os.File) error { return nil }
