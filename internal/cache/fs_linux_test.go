//go:build linux

package cache

import (
	"os"
	"testing"
)

const sampleMountinfo = `22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
40 22 0:35 / /home/ana/remote rw,relatime shared:20 - nfs4 server:/export rw,vers=4.2
41 22 0:36 / /mnt/my\040share rw,relatime shared:21 - cifs //nas/share rw
42 22 0:37 / /mnt/ssh rw,nosuid shared:22 - fuse.sshfs ana@host: rw
43 22 8:17 / /media/usb rw,relatime shared:23 - vfat /dev/sdb1 rw
44 40 0:38 / /home/ana/remote/local rw shared:24 - tmpfs tmpfs rw
`

func TestFindMount(t *testing.T) {
	for _, tc := range []struct {
		path, fsType string
		network      bool
	}{
		{"/var/cache/coffer", "ext4", false},
		{"/home/ana/remote/cache", "nfs4", true},
		{"/home/ana/remotely", "ext4", false},
		{"/home/ana/remote/local/cache", "tmpfs", false},
		{"/mnt/my share/coffer", "cifs", true},
		{"/mnt/ssh/x", "fuse.sshfs", true},
		{"/media/usb/coffer", "vfat", false},
	} {
		m, ok := findMount(sampleMountinfo, tc.path)
		if !ok || m.fsType != tc.fsType || IsNetworkFS(m.fsType) != tc.network {
			t.Errorf("findMount(%q): %+v %v, want %s (network %v)", tc.path, m, ok, tc.fsType, tc.network)
		}
	}
}

// TestFSInfoReal reads this machine's mountinfo for a temporary folder.
func TestFSInfoReal(t *testing.T) {
	typ, _ := fsInfo(os.TempDir())
	if typ == "" {
		t.Fatalf("no file system type found for %s", os.TempDir())
	}
	t.Logf("%s is on %s", os.TempDir(), typ)
}
