//go:build linux

package cache

import (
	"os"
	"path/filepath"
	"strings"
)

// fsInfo returns the type of the file system holding dir, from
// /proc/self/mountinfo, and whether its block device is removable (from
// /sys/dev/block).
func fsInfo(dir string) (string, bool) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	if p, err := filepath.EvalSymlinks(dir); err == nil {
		dir = p
	}
	m, ok := findMount(string(b), dir)
	if !ok {
		return "", false
	}
	return m.fsType, removable(m.dev)
}

type mount struct {
	dev    string // major:minor
	point  string
	fsType string
	source string
}

// findMount returns the mount holding path: the last-mounted of those
// with the longest mount point that contains it.
func findMount(mountinfo, path string) (mount, bool) {
	var best mount
	found := false
	for _, line := range strings.Split(mountinfo, "\n") {
		m, ok := parseMountinfo(line)
		if !ok || !within(path, m.point) {
			continue
		}
		if !found || len(m.point) >= len(best.point) {
			best, found = m, true
		}
	}
	return best, found
}

// parseMountinfo parses one line of /proc/self/mountinfo:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func parseMountinfo(line string) (mount, bool) {
	f := strings.Fields(line)
	sep := -1
	for i, x := range f {
		if x == "-" && i >= 6 {
			sep = i
			break
		}
	}
	if sep < 0 || len(f) < sep+3 {
		return mount{}, false
	}
	return mount{dev: f[2], point: unescape(f[4]), fsType: f[sep+1], source: f[sep+2]}, true
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			o := s[i+1 : i+4]
			if len(o) == 3 && o[0] >= '0' && o[0] <= '3' && o[1] >= '0' && o[1] <= '7' && o[2] >= '0' && o[2] <= '7' {
				b.WriteByte((o[0]-'0')<<6 | (o[1]-'0')<<3 | (o[2] - '0'))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removable reads the removable flag of a block device, or of the disk of
// a partition.
func removable(dev string) bool {
	base := filepath.Join("/sys/dev/block", dev)
	for _, p := range []string{filepath.Join(base, "removable"), filepath.Join(base, "..", "removable")} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b)) == "1"
		}
	}
	return false
}
