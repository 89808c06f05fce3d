//go:build !windows

package local

import (
	"os"
	"syscall"
)

var errNotDir = syscall.ENOTDIR

// syncDir makes the entries of directory dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
