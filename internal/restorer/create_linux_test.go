package restorer_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"golang.org/x/sys/unix"
)

// A new file may get its final mode and owner from its creation; these
// tests restore every kind of mode and owner into targets where the
// creation would give something else (a setgid directory, a default ACL,
// a strict umask, files already there) and check what comes out.

const modeMTime = 1_600_000_000_123_456_789

// modeCase is a file to restore: its mode and, when restored as root, its
// owner. Empty files are finished without a write, the others after one.
type modeCase struct {
	mode     uint32
	uid, gid uint32
	empty    bool
}

func (c modeCase) name() string {
	s := fmt.Sprintf("f%04o-%d-%d", c.mode, c.uid, c.gid)
	if c.empty {
		s += "-empty"
	}
	return s
}

// modeCases lists modes with and without group and world bits, read-only
// ones and setuid, setgid and sticky ones, each (as root) owned by the
// restoring user and by others; extra adds gids (such as a setgid
// directory's).
func modeCases(root bool, extraGIDs ...uint32) []modeCase {
	modes := []uint32{0o644, 0o755, 0o444, 0o400, 0o600, 0o700, 0o640, 0o664, 0o666, 0o000,
		0o4755, 0o2755, 0o6755, 0o1755, 0o2700, 0o4700, 0o1700}
	owners := [][2]uint32{{uint32(os.Geteuid()), uint32(os.Getegid())}}
	if root {
		owners = append(owners, [2]uint32{1234, 5678}, [2]uint32{0, 5678}, [2]uint32{1234, 0})
		for _, g := range extraGIDs {
			owners = append(owners, [2]uint32{0, g}, [2]uint32{1234, g})
		}
	}
	var cs []modeCase
	for _, m := range modes {
		for _, o := range owners {
			cs = append(cs, modeCase{mode: m, uid: o[0], gid: o[1]})
		}
	}
	cs = append(cs, modeCase{mode: 0o644, uid: owners[0][0], gid: owners[0][1], empty: true},
		modeCase{mode: 0o4755, uid: owners[0][0], gid: owners[0][1], empty: true})
	if root {
		cs = append(cs, modeCase{mode: 0o644, uid: 1234, gid: 5678, empty: true})
	}
	return cs
}

// modeDirs are the directories of a mode point, each holding every case.
var modeDirs = []struct {
	name string
	mode uint32
}{{"d", 0o755}, {"sticky", 0o1777}, {"sgid", 0o2755}, {"private", 0o700}}

// modePoint stores a point holding the cases at its top and again in each
// of modeDirs.
func modePoint(t *testing.T, r *repo.Repo, cases []modeCase) vaultapi.ID {
	t.Helper()
	chunk := store(t, r, vaultapi.KindData, []byte("x"))[0]
	var files []format.Node
	for _, c := range cases {
		n := format.Node{Name: []byte(c.name()), Type: format.TypeFile, Mode: c.mode, UID: c.uid, GID: c.gid,
			MTime: modeMTime, ATime: modeMTime}
		if !c.empty {
			n.Size, n.Chunks = 1, []format.Chunk{{ID: chunk, Size: 1}}
		}
		files = append(files, n)
	}
	sub := tree(t, r, slices.Clone(files)...)
	top := slices.Clone(files)
	for _, d := range modeDirs {
		top = append(top, format.Node{Name: []byte(d.name), Type: format.TypeDir, Mode: d.mode,
			UID: uint32(os.Geteuid()), GID: uint32(os.Getegid()), MTime: modeMTime, ATime: modeMTime, Subtree: sub})
	}
	return tree(t, r, top...)
}

// checkModes checks every file of a mode point restored into tgt.
func checkModes(t *testing.T, tgt string, cases []modeCase, owners bool) {
	t.Helper()
	dirs := []string{""}
	for _, d := range modeDirs {
		dirs = append(dirs, d.name)
		checkEntry(t, filepath.Join(tgt, d.name), d.mode, uint32(os.Geteuid()), uint32(os.Getegid()), owners)
	}
	for _, d := range dirs {
		for _, c := range cases {
			checkEntry(t, filepath.Join(tgt, d, c.name()), c.mode, c.uid, c.gid, owners)
		}
	}
}

func checkEntry(t *testing.T, p string, mode, uid, gid uint32, owners bool) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	if got := st.Mode & 0o7777; got != mode {
		t.Errorf("%s: mode got %04o, want %04o", p, got, mode)
	}
	if owners && (st.Uid != uid || st.Gid != gid) {
		t.Errorf("%s: owner got %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
	}
	if got := st.Mtim.Nano(); got != modeMTime {
		t.Errorf("%s: mtime got %d, want %d", p, got, int64(modeMTime))
	}
}

// setDefaultACL gives dir the default ACL u::rwx,g::---,o::---, under which
// a new file gets no group or world bits whatever the umask. A file
// system without POSIX ACLs fails the test: tmpfs and ext4 have them.
func setDefaultACL(t *testing.T, dir string) {
	t.Helper()
	b := binary.LittleEndian.AppendUint32(nil, 2)                                     // the xattr format's version
	for _, e := range []struct{ tag, perm uint16 }{{0x01, 7}, {0x04, 0}, {0x20, 0}} { // user, group, other
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, 0xffffffff) // no ID
	}
	if err := unix.Setxattr(dir, "system.posix_acl_default", b, 0); err != nil {
		t.Fatalf("set a default ACL on %s (the file system must support POSIX ACLs): %v", dir, err)
	}
	// The test means something only if the ACL, not the umask, masks.
	probe := filepath.Join(dir, "probe")
	f, err := os.OpenFile(probe, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := uint32(fi.Mode().Perm()); got != 0o600 {
		t.Fatalf("a file created 0644 under the default ACL: mode got %04o, want 0600", got)
	}
	if err := os.Remove(probe); err != nil {
		t.Fatal(err)
	}
}

// TestCreateModes restores into targets where a new file's creation gives
// another mode or group than the stored one.
func TestCreateModes(t *testing.T) {
	root := os.Geteuid() == 0
	const dirGID = 4321
	tests := []struct {
		name  string
		extra []uint32
		prep  func(t *testing.T, tgt string)
	}{
		{"plain", nil, func(t *testing.T, tgt string) {}},
		{"setgid target", []uint32{dirGID}, func(t *testing.T, tgt string) {
			if root {
				if err := os.Chown(tgt, 0, dirGID); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(tgt, 0o755|os.ModeSetgid); err != nil {
				t.Fatal(err)
			}
		}},
		{"default ACL", nil, setDefaultACL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRepo(t)
			cases := modeCases(root, tt.extra...)
			pt := modePoint(t, r, cases)
			tgt := t.TempDir()
			tt.prep(t, tgt)
			run(t, r, pt, restorer.Options{Target: tgt, Owners: root, NumericOwner: true})
			checkModes(t, tgt, cases, root)
		})
	}
}

// TestCreateUmask restores with a umask that takes bits off new files.
// It changes the process's umask, so it must not run in parallel.
func TestCreateUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	root := os.Geteuid() == 0
	r := newRepo(t)
	cases := modeCases(root)
	pt := modePoint(t, r, cases)
	tgt := t.TempDir()
	run(t, r, pt, restorer.Options{Target: tgt, Owners: root, NumericOwner: true})
	checkModes(t, tgt, cases, root)
}

// TestCreateOverExisting restores over files already there with other
// modes and owners: of the same size (updated in place), of another size
// (replaced), and the same but for their metadata (kept).
func TestCreateOverExisting(t *testing.T) {
	root := os.Geteuid() == 0
	r := newRepo(t)
	cases := modeCases(root)
	pt := modePoint(t, r, cases)
	tgt := t.TempDir()
	dirs := []string{tgt}
	for _, d := range modeDirs {
		dirs = append(dirs, filepath.Join(tgt, d.name))
		if err := os.Mkdir(filepath.Join(tgt, d.name), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range dirs {
		for i, c := range cases {
			p := filepath.Join(d, c.name())
			content := []string{"y", "yy", "x"}[i%3] // update, replace, keep
			if c.empty {
				content = ""
			}
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if content == "x" || content == "" {
				if err := os.Chtimes(p, time.Unix(0, modeMTime), time.Unix(0, modeMTime)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(p, 0o606); err != nil {
				t.Fatal(err)
			}
			if root {
				if err := os.Chown(p, 2345, 6789); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	run(t, r, pt, restorer.Options{Target: tgt, Owners: root, NumericOwner: true})
	checkModes(t, tgt, cases, root)
	for _, d := range dirs {
		for _, c := range cases {
			if !root && c.mode&0o400 == 0 {
				continue // not readable but by root
			}
			want := "x"
			if c.empty {
				want = ""
			}
			if b, err := os.ReadFile(filepath.Join(d, c.name())); err != nil || string(b) != want {
				t.Errorf("%s: content got %q (%v), want %q", filepath.Join(d, c.name()), b, err, want)
			}
		}
	}
}
