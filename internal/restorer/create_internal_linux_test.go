package restorer

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/coffer-backup/coffer/internal/format"
	"golang.org/x/sys/unix"
)

// TestCreatorPlan checks when a creation may give a file its final mode
// and owner, and that a file going to another owner is never created
// readable by group or others.
func TestCreatorPlan(t *testing.T) {
	c := &creator{umask: 0o022, umaskKnown: true, uid: 0, gid: 0}
	plain := &dirInfo{known: true, gid: 0}
	sgid := &dirInfo{known: true, gid: 4321, setgid: true}
	acl := &dirInfo{known: true, defACL: true}
	unknown := &dirInfo{}
	squashed := &dirInfo{known: true, uid: 65534, gid: 65534}
	own := func(uid, gid int) metaOpts { return metaOpts{owners: true, uid: uid, gid: gid, xattrs: true} }
	noOwners := metaOpts{xattrs: true}
	withACL := []format.Xattr{{Name: "system.posix_acl_access", Value: []byte{2, 0, 0, 0}}}
	tests := []struct {
		name         string
		c            *creator
		di           *dirInfo
		mode         uint32
		xattrs       []format.Xattr
		m            metaOpts
		wantMode     uint32
		owned, moded bool
	}{
		{"own file 0644", c, plain, 0o644, nil, own(0, 0), 0o644, true, true},
		{"own file 0444", c, plain, 0o444, nil, own(0, 0), 0o444, true, true},
		{"own file 0755", c, plain, 0o755, nil, own(0, 0), 0o755, true, true},
		{"no owners 0644", c, plain, 0o644, nil, noOwners, 0o644, true, true},
		{"umask takes a bit", c, plain, 0o664, nil, own(0, 0), 0o600, false, false},
		{"unknown umask", &creator{uid: 0, gid: 0}, plain, 0o600, nil, own(0, 0), 0o600, false, false},
		{"setuid", c, plain, 0o4755, nil, own(0, 0), 0o600, false, false},
		{"setgid", c, plain, 0o2755, nil, own(0, 0), 0o600, false, false},
		{"sticky", c, plain, 0o1644, nil, own(0, 0), 0o600, false, false},
		{"default ACL", c, acl, 0o644, nil, own(0, 0), 0o600, false, false},
		{"unknown directory", c, unknown, 0o644, nil, own(0, 0), 0o600, false, false},
		{"access ACL set after", c, plain, 0o644, withACL, own(0, 0), 0o600, false, false},
		{"access ACL left out", c, plain, 0o644, withACL, metaOpts{owners: true}, 0o644, true, true},
		{"other user, private", c, plain, 0o600, nil, own(1234, 0), 0o600, false, true},
		{"other user, read-only", c, plain, 0o400, nil, own(1234, 0), 0o400, false, true},
		{"other user, 0700", c, plain, 0o700, nil, own(1234, 0), 0o700, false, true},
		{"other user, group bits", c, plain, 0o640, nil, own(1234, 0), 0o600, false, false},
		{"other user, world bits", c, plain, 0o604, nil, own(1234, 0), 0o600, false, false},
		{"other group, world bits", c, plain, 0o644, nil, own(0, 5678), 0o600, false, false},
		{"setgid directory, its group", c, sgid, 0o644, nil, own(0, 4321), 0o644, true, true},
		{"setgid directory, our group", c, sgid, 0o644, nil, own(0, 0), 0o600, false, false},
		{"setgid directory, our group, private", c, sgid, 0o600, nil, own(0, 0), 0o600, false, true},
		{"directory of another owner (root squashed)", c, squashed, 0o644, nil, own(0, 0), 0o600, false, false},
		{"directory of another owner, private", c, squashed, 0o600, nil, own(0, 0), 0o600, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &format.Node{Type: format.TypeFile, Mode: tt.mode, Xattrs: tt.xattrs}
			mode, owned, moded := tt.c.plan(tt.di, n, tt.m)
			if mode != tt.wantMode || owned != tt.owned || moded != tt.moded {
				t.Errorf("got mode %04o owned %v moded %v, want %04o %v %v", mode, owned, moded, tt.wantMode, tt.owned, tt.moded)
			}
		})
	}
}

// TestNewCreatorUmask reads the umask without changing it.
func TestNewCreatorUmask(t *testing.T) {
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	c := newCreator()
	if !c.umaskKnown || c.umask != 0o027 {
		t.Errorf("got umask %04o (known %v), want 0027", c.umask, c.umaskKnown)
	}
	if now := syscall.Umask(0o027); now != 0o027 {
		t.Errorf("umask after reading: got %04o, want 0027", now)
	}
}

// TestCreateFresh creates files on real directories: one the restore makes
// gets its mode and owner from the creation; one found in place of a
// fresh file is truncated and gets everything set explicitly.
func TestCreateFresh(t *testing.T) {
	root := os.Geteuid() == 0
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "there"), []byte("old content"), 0o606); err != nil {
		t.Fatal(err)
	}
	if root {
		if err := os.Chown(filepath.Join(dir, "there"), 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
	h, err := openTarget(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer closeHandle(h)
	c := &creator{umask: 0o022, umaskKnown: true, uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}
	var di dirInfo
	m := metaOpts{owners: root, uid: os.Geteuid(), gid: os.Getegid()}
	n := &format.Node{Type: format.TypeFile, Mode: 0o644, MTime: 1e18, ATime: 1e18}
	tests := []struct {
		name         string
		owned, moded bool
	}{
		{"new", true, true},
		{"there", false, false},
	}
	for _, tt := range tests {
		f, err := c.create(h, &di, tt.name, true, n, m)
		if err != nil {
			t.Fatal(err)
		}
		if f.owned != tt.owned || f.moded != tt.moded {
			t.Errorf("%s: got owned %v moded %v, want %v %v", tt.name, f.owned, f.moded, tt.owned, tt.moded)
		}
		if err := f.finish(n); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, tt.name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o7777 != 0o644 || st.Size != 0 || st.Mtim.Nano() != 1e18 {
			t.Errorf("%s: got mode %04o size %d mtime %d, want 0644 0 %d", tt.name, st.Mode&0o7777, st.Size, st.Mtim.Nano(), int64(1e18))
		}
		if root && (st.Uid != 0 || st.Gid != 0) {
			t.Errorf("%s: got owner %d:%d, want 0:0", tt.name, st.Uid, st.Gid)
		}
	}
	if !di.known || di.setgid || di.defACL {
		t.Errorf("directory: got known %v setgid %v default ACL %v, want true false false", di.known, di.setgid, di.defACL)
	}
}
