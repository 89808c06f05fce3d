package fusefs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/archiver"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/fusefs"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/treetest"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func newRepo(t testing.TB) *repo.Repo {
	t.Helper()
	e, err := vault.OpenEmbedded(context.Background(), t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	keys, err := format.NewKeys(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.New(e.Machine, keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func backup(t testing.TB, r *repo.Repo, src string) {
	t.Helper()
	res, err := archiver.Backup(context.Background(), r, archiver.Options{Paths: []string{src}, Rand: rand.Reader,
		Report: func(p archiver.Problem) { t.Logf("backup: %s: %v", p.Path, p.Err) }})
	if err != nil || res.Problems > 0 {
		t.Fatalf("backup: %v, %d problems", err, res.Problems)
	}
}

// mount serves r at a new mount point until the test ends.
func mount(t testing.TB, r *repo.Repo, o fusefs.Options) string {
	t.Helper()
	mnt := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	o.Repo = r
	o.Ready = func() { close(ready) }
	go func() { done <- fusefs.Run(ctx, mnt, o) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("mount: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("mount: not ready after 20 s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return mnt
}

// TestCopyOutOfMount copies a backed-up tree out of the mount with cp -a
// and checks it is identical to the source.
func TestCopyOutOfMount(t *testing.T) {
	root := os.Geteuid() == 0
	src := t.TempDir()
	treetest.Build(t, src, treetest.Options{Root: root, Sparse: true, Deep: true})
	want := treetest.Scan(t, src)
	r := newRepo(t)
	backup(t, r, src)
	mnt := mount(t, r, fusefs.Options{})

	ents, err := os.ReadDir(mnt)
	if err != nil || len(ents) != 2 || ents[1].Name() != "latest" {
		t.Fatalf("mount top: %v, %v", ents, err)
	}
	if target, err := os.Readlink(filepath.Join(mnt, "latest")); err != nil || target != ents[0].Name() {
		t.Errorf("latest -> %q (%v), want %q", target, err, ents[0].Name())
	}
	dst := filepath.Join(t.TempDir(), "copy")
	out, err := exec.Command("cp", "-a", filepath.Join(mnt, "latest", src), dst).CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" && !strings.HasSuffix(line, "File name too long") {
			t.Errorf("cp -a: %v: %s", err, line)
		}
	}
	got := treetest.Scan(t, dst)
	// cp builds full path names: it cannot reach past PATH_MAX, which the
	// restorer can (see the restorer's fidelity test).
	deep := ""
	for p := range want {
		if strings.HasPrefix(p, "000") && !strings.Contains(p, "/") {
			deep = p
		}
	}
	treetest.Compare(t, want, got, deep)
	// The mount itself serves every entry, the deep ones included.
	treetest.Compare(t, want, treetest.Scan(t, filepath.Join(mnt, "latest", src)))
}

// TestUnmountOnIdle checks the idle timeout.
func TestUnmountOnIdle(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	r := newRepo(t)
	backup(t, r, src)
	mnt := t.TempDir()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- fusefs.Run(context.Background(), mnt, fusefs.Options{Repo: r, IdleTimeout: 2 * time.Second,
			Ready: func() { close(ready) }})
	}()
	<-ready
	if b, err := os.ReadFile(filepath.Join(mnt, "latest", src, "f")); err != nil || string(b) != "x" {
		t.Fatalf("read through mount: %q, %v", b, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still mounted 15 s after the idle timeout of 2 s")
	}
	if ents, _ := os.ReadDir(mnt); len(ents) != 0 {
		t.Errorf("mount point not empty after unmount: %v", ents)
	}
}

func mustRoot(t testing.TB, r *repo.Repo) vaultapi.ID {
	t.Helper()
	ps, err := r.Vault.Points(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Manifest(context.Background(), ps[len(ps)-1])
	if err != nil {
		t.Fatal(err)
	}
	return m.Root
}

// TestParallelReaders reads many files through the mount at once.
func TestParallelReaders(t *testing.T) {
	src := t.TempDir()
	want := map[string][]byte{}
	for i := range 16 {
		b := make([]byte, 1<<20+i*4099)
		rand.Read(b)
		name := filepath.Join(src, "f"+strconv.Itoa(i))
		os.WriteFile(name, b, 0o644)
		want[name] = b
	}
	r := newRepo(t)
	backup(t, r, src)
	mnt := mount(t, r, fusefs.Options{Cache: r.NewChunkCache(4<<20, 4)}) // smaller than the files: evictions
	var wg sync.WaitGroup
	for name, b := range want {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := os.ReadFile(filepath.Join(mnt, "latest", name))
				if err != nil || !bytes.Equal(got, b) {
					t.Errorf("%s: %d bytes, %v", name, len(got), err)
				}
			}()
		}
	}
	wg.Wait()
}
