//go:build unix && !linux

package cache

// fsInfo: the file system type and removable devices are looked up on
// Linux only (from /proc/self/mountinfo and /sys).
func fsInfo(string) (string, bool) { return "", false }
