//go:build unix

package restorer

import (
	"fmt"
	"os"

	"github.com/coffer-backup/coffer/internal/format"
	"golang.org/x/sys/unix"
)

// setMeta sets owner (when asked), mode and times of a restored entry,
// never following a symlink.
func setMeta(path string, n *format.Node, owners bool) error {
	if owners {
		if err := os.Lchown(path, int(n.UID), int(n.GID)); err != nil {
			return fmt.Errorf("set owner: %w", err)
		}
	}
	if n.Type != format.TypeSymlink {
		if err := unix.Fchmodat(unix.AT_FDCWD, path, n.Mode&0o7777, 0); err != nil {
			return fmt.Errorf("set mode: %w", err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(n.ATime), unix.NsecToTimespec(n.MTime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// makeSpecial creates a FIFO or device node.
func makeSpecial(path string, n *format.Node) error {
	var mode uint32
	switch n.Type {
	case format.TypeFIFO:
		mode = unix.S_IFIFO
	case format.TypeCharDev:
		mode = unix.S_IFCHR
	case format.TypeBlockDev:
		mode = unix.S_IFBLK
	default:
		return fmt.Errorf("cannot restore a %s", n.Type)
	}
	_ = os.Remove(path)
	if err := unix.Mknod(path, mode|(n.Mode&0o7777), int(n.Rdev)); err != nil {
		return fmt.Errorf("create %s: %w", n.Type, err)
	}
	return nil
}
