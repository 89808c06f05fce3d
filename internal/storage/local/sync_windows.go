package local

import "syscall"

var errNotDir = syscall.ENOTDIR

// syncDir does nothing on Windows, which cannot sync a directory handle;
// NTFS journals its metadata.
func syncDir(dir string) error { return nil }
