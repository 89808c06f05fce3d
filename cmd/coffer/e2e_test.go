//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/localkeys"
	"github.com/coffer-backup/coffer/internal/vault"
)

// makeTree writes a small tree with the cases issue 2 names.
func makeTree(t *testing.T, dir string, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "docs", "deep", "er"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "docs", "hello.txt"), []byte("the secret plaintext marker 7f3c\n"), 0o644))
	big := make([]byte, 9<<20+12345)
	for i := range big {
		big[i] = byte(rng.Uint32() >> 24)
	}
	must(os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o600))
	var text bytes.Buffer
	for i := range 200000 {
		fmt.Fprintf(&text, "line %d of a compressible file %d\n", i, i%97)
	}
	must(os.WriteFile(filepath.Join(dir, "docs", "deep", "er", "text.log"), text.Bytes(), 0o640))
	must(os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644))
	must(os.WriteFile(filepath.Join(dir, "setuid"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Chmod(filepath.Join(dir, "setuid"), 0o4755|fs.ModeSetuid))
	must(syscall.Chmod(filepath.Join(dir, "setuid"), 0o4755))
	must(os.Mkdir(filepath.Join(dir, "sticky"), 0o755))
	must(syscall.Chmod(filepath.Join(dir, "sticky"), 0o1777))
	must(os.Symlink("docs/hello.txt", filepath.Join(dir, "link")))
	must(os.Symlink("/nonexistent/target", filepath.Join(dir, "dangling")))
	must(os.WriteFile(filepath.Join(dir, "docs", "caf\xe9-latin1"), []byte("not utf-8 name"), 0o644))
	long := strings.Repeat("n", 250)
	must(os.WriteFile(filepath.Join(dir, "docs", long), []byte("long name"), 0o644))
	// Deep path: more than 1000 bytes.
	p := filepath.Join(dir, "deep")
	for range 20 {
		p = filepath.Join(p, strings.Repeat("d", 60))
	}
	must(os.MkdirAll(p, 0o755))
	must(os.WriteFile(filepath.Join(p, "leaf"), []byte("leaf"), 0o644))
}

// treeDigest describes every entry of a tree: type, mode, size, ns mtime,
// owner, link target and content hash; directories' mtimes included.
func treeDigest(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d mtime=%d", st.Mode, st.Uid, st.Gid, st.Mtim.Nano())
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" size=%d sha=%x", len(b), sha256.Sum256(b))
		case syscall.S_IFLNK:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	w, g := treeDigest(t, want), treeDigest(t, got)
	// The top directory itself is compared by content, not its own times.
	delete(w, ".")
	delete(g, ".")
	for k, v := range w {
		if g[k] != v {
			t.Errorf("%s:\n got  %s\n want %s", k, g[k], v)
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			t.Errorf("%s: restored but not in the source", k)
		}
	}
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "source-tree-name-4c1e")
	makeTree(t, src, 1)

	var s1 summary
	lastJSON(t, e.mustRun("backup", "--json", src), &s1)
	if s1.Files < 8 || s1.Skipped != 0 {
		t.Fatalf("first backup summary: %+v", s1)
	}
	// Second backup of an unchanged tree reads nothing and adds almost nothing.
	var s2 summary
	lastJSON(t, e.mustRun("backup", "--json", src), &s2)
	// What it adds: the manifest and the trees of the parent directories
	// (/, /tmp, ...) whose times changed.
	if s2.BytesRead != 0 || s2.BytesAdded > 16<<10 {
		t.Errorf("unchanged backup read %d bytes and added %d; want 0 and < 16 KiB", s2.BytesRead, s2.BytesAdded)
	}

	target := filepath.Join(t.TempDir(), "restore")
	e.mustRun("restore", "latest", "--target", target)
	compareTrees(t, src, filepath.Join(target, src))

	// rsync agrees: no content or metadata difference.
	out, err := exec.Command("rsync", "-anci", "--delete", src+"/", filepath.Join(target, src)+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("rsync: %v\n%s", err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.HasPrefix(l, ".d..t") { // the top dir's own time is not compared
			t.Errorf("rsync -anci reports a difference: %s", l)
		}
	}

	// The vault holds no plaintext of the source.
	filepath.WalkDir(e.vault, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte("secret plaintext marker")) || bytes.Contains(b, []byte("line 1234 of a compressible")) ||
			bytes.Contains(b, []byte(filepath.Base(src))) || bytes.Contains(b, []byte("hello.txt")) ||
			bytes.Contains(b, []byte(strings.Repeat("n", 40))) {
			t.Errorf("vault file %s holds plaintext of the source", p)
		}
		return nil
	})

	e.mustRun("verify")
}

func TestRestoreOnePathAndLs(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, 2)
	e.mustRun("backup", "-q", src)
	ls := e.mustRun("ls", "latest", src+"/docs")
	if !strings.Contains(ls, "hello.txt") || !strings.Contains(ls, `"caf\xe9-latin1"`) {
		t.Errorf("ls output lacks entries:\n%s", ls)
	}
	target := t.TempDir()
	e.mustRun("restore", "latest", src+"/docs/hello.txt", "--target", target)
	b, err := os.ReadFile(filepath.Join(target, src, "docs", "hello.txt"))
	if err != nil || !bytes.Contains(b, []byte("marker")) {
		t.Fatalf("restored file: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(target, src, "big.bin")); err == nil {
		t.Error("restoring one path restored others too")
	}
	_, errs, code := e.run("restore", "latest", src+"/nope", "--target", target)
	if code != exitError || !strings.Contains(errs, "not found") {
		t.Errorf("restore of a missing path: exit %d, %s", code, errs)
	}
}

func TestChangedFilesAreReadAgain(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, 3)
	e.mustRun("backup", "-q", src)
	f := filepath.Join(src, "docs", "hello.txt")
	if err := os.WriteFile(f, []byte("changed content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var s summary
	lastJSON(t, e.mustRun("backup", "--json", src), &s)
	if s.BytesRead != uint64(len("changed content\n")) {
		t.Errorf("after changing one file the backup read %d bytes, want %d", s.BytesRead, len("changed content\n"))
	}
	target := t.TempDir()
	e.mustRun("restore", "latest", "--target", target)
	compareTrees(t, src, filepath.Join(target, src))
	// --verify hashes every chunk as well; the same tree comes out.
	target = t.TempDir()
	e.mustRun("restore", "latest", "--verify", "--target", target)
	compareTrees(t, src, filepath.Join(target, src))
}

func TestPassphrases(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a"), []byte("a"), 0o644)

	e.env["COFFER_PASSPHRASE"] = "too short"
	if _, errs, code := e.run("backup", src); code != exitUsage || !strings.Contains(errs, "at least 16") {
		t.Errorf("short passphrase: exit %d, %s", code, errs)
	}
	e.env["COFFER_PASSPHRASE"] = testPass
	e.mustRun("backup", "-q", src)

	e.env["COFFER_PASSPHRASE"] = "a wrong passphrase of some length"
	if _, errs, code := e.run("points"); code != exitPassphrase || !strings.Contains(errs, "wrong passphrase") {
		t.Errorf("wrong passphrase: exit %d, %s", code, errs)
	}
	// Without a passphrase the machine uses the keys it kept at the first
	// backup; key management still needs the passphrase; once forgotten,
	// nothing opens without it.
	e.env["COFFER_PASSPHRASE"] = ""
	e.mustRun("points")
	if _, errs, code := e.run("key", "add-recovery"); code != exitUsage || !strings.Contains(errs, "COFFER_PASSPHRASE") {
		t.Errorf("add-recovery with kept keys only: exit %d, %s", code, errs)
	}
	e.env["COFFER_KEEP_KEYS"] = "no"
	if _, errs, code := e.run("points"); code != exitUsage || !strings.Contains(errs, "COFFER_PASSPHRASE") {
		t.Errorf("no passphrase, COFFER_KEEP_KEYS=no: exit %d, %s", code, errs)
	}
	delete(e.env, "COFFER_KEEP_KEYS")
	if out := e.mustRun("key", "forget"); !strings.Contains(out, "forgot 1") {
		t.Errorf("key forget: %q", out)
	}
	if _, errs, code := e.run("points"); code != exitUsage || !strings.Contains(errs, "COFFER_PASSPHRASE") {
		t.Errorf("no passphrase after key forget: exit %d, %s", code, errs)
	}

	// A recovery key opens the data on its own; then the passphrase changes.
	e.env["COFFER_PASSPHRASE"] = testPass
	var rk struct {
		Key string `json:"recovery_key"`
	}
	lastJSON(t, e.mustRun("key", "add-recovery", "--json"), &rk)
	e.env["COFFER_PASSPHRASE"] = rk.Key
	e.env["COFFER_NEW_PASSPHRASE"] = "a brand new passphrase here"
	e.mustRun("passphrase", "change")
	e.env["COFFER_PASSPHRASE"] = testPass
	if _, _, code := e.run("points"); code != exitPassphrase {
		t.Errorf("old passphrase after change: exit %d, want %d", code, exitPassphrase)
	}
	e.env["COFFER_PASSPHRASE"] = "a brand new passphrase here"
	target := t.TempDir()
	e.mustRun("restore", "latest", "--target", target)
	if b, _ := os.ReadFile(filepath.Join(target, src, "a")); string(b) != "a" {
		t.Errorf("restore with the new passphrase: %q", b)
	}
	e.env["COFFER_PASSPHRASE"] = strings.ToLower(rk.Key)
	e.mustRun("points")

	// The passphrase change moved the kept keys to the new slot.
	e.env["COFFER_PASSPHRASE"] = ""
	e.mustRun("points")
}

// TestKeptKeysBoundToVault: keys kept for one vault never open another,
// and a damaged kept key file is refused with a warning, not used.
func TestKeptKeysBoundToVault(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a"), []byte("a"), 0o644)
	e.mustRun("backup", "-q", src)
	keys := filepath.Join(e.env["COFFER_HOME"], "keys")
	ents, err := os.ReadDir(keys)
	if err != nil || len(ents) != 1 {
		t.Fatalf("kept keys after the first backup: %v, %v; want one file", ents, err)
	}
	if st, _ := os.Stat(filepath.Join(keys, ents[0].Name())); st.Mode().Perm() != 0o600 {
		t.Errorf("kept key file mode %v, want 0600", st.Mode().Perm())
	}

	// A second vault, other keys (not kept): the first vault's kept keys
	// do not match its slot, so without a passphrase it cannot be opened.
	v2 := filepath.Join(t.TempDir(), "v2")
	e.env["COFFER_KEEP_KEYS"] = "off"
	e.mustRun("backup", "-q", "--vault", v2, src)
	delete(e.env, "COFFER_KEEP_KEYS")
	e.env["COFFER_PASSPHRASE"] = ""
	e.mustRun("points")
	if _, errs, code := e.run("points", "--vault", v2); code != exitUsage || !strings.Contains(errs, "COFFER_PASSPHRASE") {
		t.Errorf("other vault with this vault's kept keys: exit %d, %s", code, errs)
	}

	// Damage every kept file: a warning names it, the passphrase decides.
	ents, _ = os.ReadDir(keys)
	for _, en := range ents {
		os.WriteFile(filepath.Join(keys, en.Name()), []byte(`{"v":1,"slot":"x"`), 0o600)
	}
	if _, errs, code := e.run("points"); code != exitUsage || !strings.Contains(errs, "damaged") {
		t.Errorf("damaged kept keys, no passphrase: exit %d, %s", code, errs)
	}
	e.env["COFFER_PASSPHRASE"] = testPass
	e.mustRun("points")
	e.env["COFFER_PASSPHRASE"] = ""
	e.mustRun("points") // the passphrase rewrote the kept file

	// Kept keys that match the slot but not the data (written by hand, with
	// a valid checksum) are caught by the newest point's manifest.
	ctx := context.Background()
	st, err := openVaultStorage(ctx, e.vault, "", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	emb, err := vault.OpenEmbedded(ctx, e.vault, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	slots, err := emb.Machine.KeySlots(ctx)
	emb.Close()
	if err != nil || len(slots) != 1 {
		t.Fatalf("key slots: %v, %v", slots, err)
	}
	wrong, _ := format.NewKeys(bytes.NewReader(bytes.Repeat([]byte{9}, 96)))
	if err := localkeys.Dir(keys).Save(slots[0].Data, wrong); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := e.run("backup", "-q", src); code != exitUsage || !strings.Contains(errs, "do not open this vault") {
		t.Errorf("wrong kept keys: exit %d, %s", code, errs)
	}
}

func TestExcludesAndCacheDirTag(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, 4)
	os.MkdirAll(filepath.Join(src, "cache", "junk"), 0o755)
	os.WriteFile(filepath.Join(src, "cache", "CACHEDIR.TAG"), []byte("Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n"), 0o644)
	os.WriteFile(filepath.Join(src, "cache", "junk", "x"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(src, "docs", "a.tmp"), []byte("tmp"), 0o644)
	ef := filepath.Join(t.TempDir(), "excludes")
	os.WriteFile(ef, []byte("# comment\n/deep/\n"), 0o644)
	e.mustRun("backup", "-q", "--exclude", "*.tmp", "--exclude-file", ef, src)
	target := t.TempDir()
	e.mustRun("restore", "latest", "--target", target)
	r := filepath.Join(target, src)
	for _, gone := range []string{"docs/a.tmp", "deep", "cache/junk"} {
		if _, err := os.Lstat(filepath.Join(r, gone)); err == nil {
			t.Errorf("%s was excluded but restored", gone)
		}
	}
	for _, kept := range []string{"docs/hello.txt", "cache/CACHEDIR.TAG", "big.bin"} {
		if _, err := os.Lstat(filepath.Join(r, kept)); err != nil {
			t.Errorf("%s should be restored: %v", kept, err)
		}
	}
	if _, errs, code := e.run("backup", "--exclude", "[unterminated", src); code != exitUsage {
		t.Errorf("bad pattern: exit %d, %s", code, errs)
	}
}

func TestUsageErrors(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{{"backup"}, {"restore", "latest"}, {"ls"}, {"backup", "/does/not/exist"}} {
		if _, errs, code := e.run(args...); code != exitUsage {
			t.Errorf("coffer %v: exit %d, want %d (%s)", args, code, exitUsage, errs)
		}
	}
	if _, errs, code := e.run("points"); code == 0 || !strings.Contains(errs, "first backup") {
		t.Errorf("points before any backup: exit %d, %s", code, errs)
	}
}

func TestOneFileSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs inside the source tree (CI runs as root)")
	}
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	mnt := filepath.Join(src, "mnt")
	os.MkdirAll(mnt, 0o755)
	os.WriteFile(filepath.Join(src, "here"), []byte("on the source fs"), 0o644)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	os.WriteFile(filepath.Join(mnt, "elsewhere"), []byte("on another fs"), 0o644)

	e.mustRun("backup", "-q", "--one-file-system", src)
	target := t.TempDir()
	e.mustRun("restore", "latest", "--target", target)
	r := filepath.Join(target, src)
	if _, err := os.Stat(filepath.Join(r, "here")); err != nil {
		t.Errorf("file on the source file system not restored: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(r, "mnt")); err != nil || !fi.IsDir() {
		t.Errorf("the mount point should be kept as an empty folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r, "mnt", "elsewhere")); err == nil {
		t.Error("--one-file-system crossed into the tmpfs")
	}
	// Without the flag the mounted file is included.
	e.mustRun("backup", "-q", src)
	target2 := t.TempDir()
	e.mustRun("restore", "latest", "--target", target2)
	if _, err := os.Stat(filepath.Join(target2, src, "mnt", "elsewhere")); err != nil {
		t.Errorf("without --one-file-system the tmpfs file is missing: %v", err)
	}
}
