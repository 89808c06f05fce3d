package archiver_test

import (
	"context"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/coffer-backup/coffer/internal/archiver"
	"github.com/coffer-backup/coffer/internal/exclude"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/verify"
)

// aheadATime sets the access time of each path (not following symlinks)
// an hour ahead, keeping its mtime, so that the backups of a step, which
// read it, do not move it between them (see freezeATimes).
func aheadATime(t *testing.T, paths ...string) {
	t.Helper()
	ahead := time.Now().Add(time.Hour).UnixNano()
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		ts := []unix.Timespec{unix.NsecToTimespec(ahead), st.Mtim}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}

// countDirs counts the folders under dir, dir included, and those of
// them that hold a file with several links.
func countDirs(t *testing.T, dir string) (dirs, linked int) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs++
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 1 && !seen[filepath.Dir(p)] {
			seen[filepath.Dir(p)] = true
			linked++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs, linked
}

// TestFolderIndexKeepsTrees changes a source in every way its folders can
// change and checks, after each change, that a backup using the folder
// index gives exactly the tree of a backup that compares every folder
// with the parent point, and that the index spared the folders it should.
func TestFolderIndexKeepsTrees(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	reuseSource(t, src)
	ixDir := filepath.Join(t.TempDir(), "folders")
	_, r := open(t, t.TempDir(), nil)
	rr := reuseRun{t: t, r: r, src: src}
	same, undo := archiver.CountFoldersSame()
	defer undo()
	p := func(s string) string { return filepath.Join(src, s) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	backup := func(parent *vaultapi.Point, index bool, patterns []string) (archiver.Result, [32]byte, uint64) {
		t.Helper()
		o := archiver.Options{Paths: []string{src}, Rand: rand.Reader, Parent: parent}
		if index {
			o.FolderIndex = ixDir
		}
		if len(patterns) > 0 {
			m, err := exclude.Compile(patterns)
			must(err)
			o.Exclude, o.ExcludeNames = m, patterns
		}
		before := same()
		res, err := archiver.Backup(ctx, r, o)
		must(err)
		return res, rr.srcTree(res), same() - before
	}

	freezeATimes(t, src)
	prev, prevRoot, _ := backup(nil, true, nil)
	// The first backup read every file, which moved their access times.
	prev, prevRoot, _ = backup(&prev.Point, true, nil)

	// step makes a change, then backs up with the index and without, on
	// the same parent, and compares; the backup with the index is the
	// next step's parent.
	step := func(what string, patterns []string, change func(), wantSame func(n uint64) bool, wantChanged bool) {
		t.Helper()
		change()
		res, root, n := backup(&prev.Point, true, patterns)
		_, rootNo, nNo := backup(&prev.Point, false, patterns)
		if root != rootNo {
			treeDiff(t, r, root, rootNo, src+"/")
			t.Fatalf("%s: source tree %x with the folder index, %x comparing every folder", what, root[:4], rootNo[:4])
		}
		if nNo != 0 {
			t.Fatalf("%s: %d folders kept by the index in a backup without one", what, nNo)
		}
		if !wantSame(n) {
			dirs, linked := countDirs(t, src)
			t.Fatalf("%s: %d folders kept by the index (%d folders, %d of them with hard links)", what, n, dirs, linked)
		}
		if changed := root != prevRoot; changed != wantChanged {
			t.Fatalf("%s: source tree changed %v, want %v", what, changed, wantChanged)
		}
		if len(patterns) == 0 {
			prev, prevRoot = res, root
		}
	}
	all := func(n uint64) bool {
		dirs, linked := countDirs(t, src)
		return n == uint64(dirs-linked)
	}
	some := func(n uint64) bool {
		dirs, _ := countDirs(t, src)
		return n > 0 && n < uint64(dirs)
	}
	none := func(n uint64) bool { return n == 0 }

	step("nothing changed", nil, func() {}, all, false)
	// Only the ctime tells this change (Coffer reads with O_NOATIME).
	step("content changed, size and times put back", nil, func() {
		f := p("d2/e1/f3")
		var st unix.Stat_t
		must(unix.Lstat(f, &st))
		old, err := os.ReadFile(f)
		must(err)
		b := append([]byte(nil), old...)
		b[0] ^= 1
		must(os.WriteFile(f, b, 0o644))
		must(unix.UtimesNanoAt(unix.AT_FDCWD, f, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW))
	}, some, true)
	step("mode changed", nil, func() {
		must(os.Chmod(p("d0/e0/f1"), 0o600))
		aheadATime(t, p("d0/e0/f1"))
	}, some, true)
	step("file added deep", nil, func() {
		must(os.WriteFile(p("d3/e2/new"), []byte("new file\n"), 0o644))
		aheadATime(t, p("d3/e2/new"))
	}, some, true)
	step("folder removed", nil, func() { must(os.RemoveAll(p("d2/e0"))) }, some, true)
	step("folder added", nil, func() {
		must(os.MkdirAll(p("d0/e9/deeper"), 0o755))
		must(os.WriteFile(p("d0/e9/deeper/x"), []byte("x\n"), 0o644))
		aheadATime(t, p("d0/e9"), p("d0/e9/deeper"), p("d0/e9/deeper/x"))
	}, some, true)
	step("symlink replaced", nil, func() {
		must(os.Remove(p("link")))
		must(os.Symlink("d3/e1/f2", p("link")))
		aheadATime(t, p("link"))
	}, some, true)
	step("extended attribute set", nil, func() {
		must(unix.Setxattr(p("d1/e0/f2"), "user.coffer-test", []byte("v"), 0))
		aheadATime(t, p("d1/e0/f2"))
	}, some, true)
	// Into the one group of links: the numbers of several groups follow
	// the order the walkers meet them in, with the index or without.
	step("hard link added", nil, func() {
		must(os.Link(p("d1/e1/f1"), p("d3/e0/hard2")))
		aheadATime(t, p("d1/e1/f1"))
	}, some, true)
	step("renamed", nil, func() {
		must(os.Rename(p("d1/e2/f4"), p("d1/e2/f4-renamed")))
		aheadATime(t, p("d1/e2/f4-renamed"))
	}, some, true)
	step("nothing changed again", nil, func() {}, all, false)
	// Other exclusions are another index: none of this one's folders.
	step("with an exclusion", []string{"f4"}, func() {}, none, true)
	step("back without it", nil, func() {}, all, false)

	// A damaged index is not used, and the backup writes a good one.
	files, err := os.ReadDir(ixDir)
	must(err)
	if len(files) != 2 {
		t.Fatalf("%d files in the index folder, want 2 (one per set of exclusions)", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(ixDir, f.Name()))
		must(err)
		b[len(b)/2] ^= 0x40
		must(os.WriteFile(filepath.Join(ixDir, f.Name()), b, 0o600))
	}
	step("index damaged", nil, func() {}, none, false)
	step("index written again", nil, func() {}, all, false)

	// A log an interrupted backup left goes, and so does the index of
	// settings no backup used for 60 days; a younger one stays.
	stale := filepath.Join(ixDir, "0123.interrupted.log")
	oldIx := filepath.Join(ixDir, "00000000000000000000000000000000")
	youngIx := filepath.Join(ixDir, "11111111111111111111111111111111")
	for _, f := range []string{stale, oldIx, youngIx} {
		must(os.WriteFile(f, []byte("x"), 0o600))
	}
	must(os.Chtimes(oldIx, time.Now(), time.Now().Add(-61*24*time.Hour)))
	must(os.Chtimes(youngIx, time.Now(), time.Now().Add(-59*24*time.Hour)))
	step("files left in the index folder", nil, func() {}, all, false)
	for f, want := range map[string]bool{stale: false, oldIx: false, youngIx: true} {
		if _, err := os.Stat(f); (err == nil) != want {
			t.Fatalf("%s: stat %v; want it kept: %v", filepath.Base(f), err, want)
		}
	}
	must(os.Remove(youngIx))

	// An index written for another point than the parent is not used.
	older := prev
	step("one more", nil, func() {}, all, false)
	if _, _, n := backup(&older.Point, true, nil); n != 0 {
		t.Fatalf("index of another point: %d folders kept, want 0", n)
	}

	target := t.TempDir()
	if _, err := restorer.Restore(ctx, r, mustRoot(t, r, prev), restorer.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	sameContent(t, src, filepath.Join(target, src))
	points, err := r.Vault.Points(ctx)
	must(err)
	if res, err := verify.Verify(ctx, r, points, verify.Options{}); err != nil || res.Damaged != 0 {
		t.Fatalf("verify: %+v, %v", res, err)
	}
}

// TestFolderIndexDisagrees: an index that names another folder's tree
// for a folder (only a bug could write one) is caught when that folder
// must be rebuilt: the backup fails, commits nothing, says what to do and
// deletes the index, and the next backup, comparing every folder, is
// right.
func TestFolderIndexDisagrees(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	reuseSource(t, src)
	freezeATimes(t, src)
	ixDir := filepath.Join(t.TempDir(), "folders")
	_, r := open(t, t.TempDir(), nil)
	rr := reuseRun{t: t, r: r, src: src}
	opts := archiver.Options{Paths: []string{src}, Rand: rand.Reader, FolderIndex: ixDir}
	first, err := archiver.Backup(ctx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Parent = &first.Point
	second, err := archiver.Backup(ctx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	opts.Parent = &second.Point
	if err := archiver.SwapFolderTree(r, opts, dirs, filepath.Join(src, "d0"), filepath.Join(src, "d1", "e0")); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(src, "d0", "e1", "f2")
	if err := os.WriteFile(f, []byte("changed under d0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	aheadATime(t, f)
	before, err := r.Vault.Points(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = archiver.Backup(ctx, r, opts)
	if err == nil || !strings.Contains(err.Error(), "folder index disagrees") || !strings.Contains(err.Error(), "run the backup again") {
		t.Fatalf("backup on a wrong index: %v; want the disagreement reported", err)
	}
	after, err := r.Vault.Points(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%d points after the failed backup, want %d", len(after), len(before))
	}
	if files, _ := os.ReadDir(ixDir); len(files) != 0 {
		t.Fatalf("%d files left in the index folder, want none", len(files))
	}
	res, err := archiver.Backup(ctx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	noIx := opts
	noIx.FolderIndex = ""
	resNo, err := archiver.Backup(ctx, r, noIx)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := rr.srcTree(res), rr.srcTree(resNo); a != b {
		treeDiff(t, r, a, b, src+"/")
		t.Fatalf("after the index was deleted: source tree %x, %x comparing every folder", a[:4], b[:4])
	}
}

// TestBackupKeepsFolderATimes: listing a folder does not move its access
// time (Coffer opens folders with O_NOATIME, as files), so that a daily
// backup does not change every folder's entry in its parent, and the
// next backup keeps every tree through the folder index.
func TestBackupKeepsFolderATimes(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	reuseSource(t, src)
	// An access time a day older than the mtime: relatime would move it.
	old := time.Now().Add(-48 * time.Hour)
	var dirs []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	atimes := map[string]unix.Timespec{}
	for _, d := range dirs {
		var st unix.Stat_t
		if err := unix.Lstat(d, &st); err != nil {
			t.Fatal(err)
		}
		ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), st.Mtim}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, d, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
		atimes[d] = ts[0]
	}
	_, r := open(t, t.TempDir(), nil)
	o := archiver.Options{Paths: []string{src}, Rand: rand.Reader, FolderIndex: filepath.Join(t.TempDir(), "folders")}
	first, err := archiver.Backup(ctx, r, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		var st unix.Stat_t
		if err := unix.Lstat(d, &st); err != nil {
			t.Fatal(err)
		}
		if st.Atim != atimes[d] {
			t.Fatalf("%s: access time moved by the backup, %v to %v", d, atimes[d], st.Atim)
		}
	}
	// The first backup read the symlink, which moved its access time
	// (readlink has no O_NOATIME); later ones take its target from the
	// parent point while its ctime and inode are the same.
	o.Parent = &first.Point
	second, err := archiver.Backup(ctx, r, o)
	if err != nil {
		t.Fatal(err)
	}
	same, undo := archiver.CountFoldersSame()
	defer undo()
	o.Parent = &second.Point
	if _, err := archiver.Backup(ctx, r, o); err != nil {
		t.Fatal(err)
	}
	total, linked := countDirs(t, src)
	if n := same(); n != uint64(total-linked) {
		t.Fatalf("third backup: %d folders kept by the index, want %d", n, total-linked)
	}
}
