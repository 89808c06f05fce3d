// Package fusefs is the instant-restore mount: a read-only FUSE view of a
// machine's recovery points. The top folder holds one folder per point,
// named by the point's time (UTC), and a symlink "latest" to the newest;
// each point folder holds the point's files with their modes, owners,
// nanosecond times, symlinks, hard links (one inode number per link
// group), device numbers, extended attributes and ACLs, so `cp -a` out of
// the mount restores them. File content is fetched lazily, chunk by chunk,
// with read-ahead and a bounded chunk cache; sparse files answer
// SEEK_DATA/SEEK_HOLE so copies stay sparse. Requests are served
// concurrently. The mount exists on Linux only; elsewhere Mount returns
// ErrUnavailable.
package fusefs

import "errors"

// ErrUnavailable is returned when FUSE cannot be used here; its message
// says how to get it.
var ErrUnavailable = errors.New("FUSE is not available on this machine: install fuse3 " +
	"(Debian/Ubuntu: apt-get install fuse3; Fedora/RHEL: dnf install fuse3) and check that /dev/fuse exists (modprobe fuse)")
