package archiver_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/archiver"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vault"
	"golang.org/x/sys/unix"
)

func newRepo(t *testing.T) *repo.Repo {
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

// nodes backs up src and returns its entries by name, with the stats.
func nodes(t *testing.T, r *repo.Repo, src string) (map[string]format.Node, archiver.Result) {
	t.Helper()
	ctx := context.Background()
	res, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: rand.Reader,
		Report: func(p archiver.Problem) { t.Errorf("backup: %s: %v", p.Path, p.Err) }})
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Manifest(ctx, res.Point)
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Lookup(ctx, m.Root, src)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]format.Node{}
	err = r.Walk(ctx, n, "", func(p string, n *format.Node) error { out[p] = *n; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return out, res
}

func TestSparseFileReadsOnlyData(t *testing.T) {
	src := t.TempDir()
	f, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	rand.Read(data)
	f.WriteAt(data[:512<<10], 1<<20)
	f.WriteAt(data[512<<10:], 7<<30)
	f.Truncate(10 << 30)
	f.Close()
	r := newRepo(t)
	start := time.Now()
	ns, res := nodes(t, r, src)
	took := time.Since(start)
	n := ns["sparse"]
	want := []format.Extent{{Off: 1 << 20, Len: 512 << 10}, {Off: 7 << 30, Len: 512 << 10}}
	if len(n.Extents) != 2 || n.Extents[0] != want[0] || n.Extents[1] != want[1] || n.Size != 10<<30 {
		t.Errorf("extents %v size %d, want %v size %d", n.Extents, n.Size, want, 10<<30)
	}
	if res.Stats.BytesRead != 1<<20 {
		t.Errorf("read %d bytes of a 10 GiB file holding 1 MiB", res.Stats.BytesRead)
	}
	if _, err := format.NewLayout(&n); err != nil {
		t.Error(err)
	}
	t.Logf("10 GiB sparse file with 1 MiB of data backed up in %v", took)
	if took > 5*time.Second {
		t.Errorf("backup took %v", took)
	}
}

func TestHardLinksAndXattrs(t *testing.T) {
	src := t.TempDir()
	p := func(s string) string { return filepath.Join(src, s) }
	os.MkdirAll(p("d"), 0o755)
	os.WriteFile(p("one"), []byte("shared content"), 0o644)
	os.Link(p("one"), p("d/two"))
	os.Link(p("one"), p("three"))
	os.WriteFile(p("solo"), []byte("alone"), 0o644)
	if err := unix.Setxattr(p("solo"), "user.b", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	unix.Setxattr(p("solo"), "user.a", []byte{0, 1}, 0)
	r := newRepo(t)
	ns, res := nodes(t, r, src)
	one, two, three := ns["one"], ns["d/two"], ns["three"]
	if one.LinkGroup == 0 || two.LinkGroup != one.LinkGroup || three.LinkGroup != one.LinkGroup || one.Links != 3 {
		t.Errorf("link groups %d %d %d, links %d", one.LinkGroup, two.LinkGroup, three.LinkGroup, one.Links)
	}
	if len(two.Chunks) != 1 || two.Chunks[0] != one.Chunks[0] {
		t.Errorf("members do not share the leader's chunks: %v %v", one.Chunks, two.Chunks)
	}
	if solo := ns["solo"]; solo.LinkGroup != 0 || len(solo.Xattrs) != 2 || solo.Xattrs[0].Name != "user.a" ||
		string(solo.Xattrs[1].Value) != "2" {
		t.Errorf("solo: group %d xattrs %v", solo.LinkGroup, solo.Xattrs)
	}
	if want := uint64(len("shared content") + len("alone")); res.Stats.BytesRead != want {
		t.Errorf("read %d bytes, want %d: hard-linked content read more than once", res.Stats.BytesRead, want)
	}
}
