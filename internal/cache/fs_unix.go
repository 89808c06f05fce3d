//go:build unix

package cache

import "golang.org/x/sys/unix"

// FreeSpace returns the bytes available to this user on dir's file system.
func FreeSpace(dir string) (int64, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		return 0, err
	}
	return int64(s.Bavail) * int64(s.Bsize), nil
}
