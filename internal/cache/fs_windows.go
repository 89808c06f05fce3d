//go:build windows

package cache

import "golang.org/x/sys/windows"

// FreeSpace returns the bytes available to this user on dir's volume.
func FreeSpace(dir string) (int64, error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, err
	}
	var free, total, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &free, &total, &totalFree); err != nil {
		return 0, err
	}
	return int64(free), nil
}

// fsInfo: Windows file system types are not looked up; a mapped network
// drive shows as a UNC path.
func fsInfo(dir string) (string, bool) {
	if len(dir) > 2 && (dir[:2] == `\\` || dir[:2] == "//") {
		return "smb", false
	}
	return "", false
}
