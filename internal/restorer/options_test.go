package restorer_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coffer-backup/coffer/internal/exclude"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// files is a small tree: path → content.
var files = map[string]string{
	"docs/a.txt":     "alpha",
	"docs/b.odt":     "bravo",
	"docs/tmp/c.txt": "charlie",
	"src/main.go":    "package main",
	"top.txt":        "top",
}

func makeFiles(t *testing.T, dir string, fs map[string]string) {
	t.Helper()
	for p, c := range fs {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readFiles lists the regular files under dir with their contents.
func readFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string]string) []string {
	var k []string
	for p := range m {
		k = append(k, p)
	}
	slices.Sort(k)
	return k
}

func matcher(t *testing.T, pats ...string) restorer.Matcher {
	t.Helper()
	m, err := exclude.Compile(pats)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// setup backs up the small tree and returns the repo, the root and the
// source directory relative to the point's top.
func setup(t *testing.T) (*repo.Repo, vaultapi.ID, string) {
	t.Helper()
	src := t.TempDir()
	makeFiles(t, src, files)
	r := newRepo(t)
	return r, backup(t, r, src), src
}

func run(t *testing.T, r *repo.Repo, root vaultapi.ID, opts restorer.Options) (restorer.Result, []restorer.Action) {
	t.Helper()
	var acts []restorer.Action
	opts.List = func(a restorer.Action) { acts = append(acts, a) }
	if opts.Report == nil {
		opts.Report = func(p restorer.Problem) { t.Errorf("restore problem: %s: %v", p.Path, p.Err) }
	}
	res, err := restorer.Restore(context.Background(), r, root, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res, acts
}

func TestIncludeExclude(t *testing.T) {
	r, root, src := setup(t)
	tests := []struct {
		name             string
		include, exclude []string
		want             []string
	}{
		{"all", nil, nil, []string{"docs/a.txt", "docs/b.odt", "docs/tmp/c.txt", "src/main.go", "top.txt"}},
		{"include glob", []string{"*.txt"}, nil, []string{"docs/a.txt", "docs/tmp/c.txt", "top.txt"}},
		{"include dir", []string{"src/"}, nil, []string{"src/main.go"}},
		{"exclude dir", nil, []string{"tmp/"}, []string{"docs/a.txt", "docs/b.odt", "src/main.go", "top.txt"}},
		{"both", []string{"*.txt"}, []string{"tmp/"}, []string{"docs/a.txt", "top.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tgt := t.TempDir()
			opts := restorer.Options{Target: tgt, Paths: []string{src}}
			if tt.include != nil {
				opts.Include = matcher(t, tt.include...)
			}
			if tt.exclude != nil {
				opts.Exclude = matcher(t, tt.exclude...)
			}
			run(t, r, root, opts)
			got := keys(readFiles(t, filepath.Join(tgt, src)))
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIfExists(t *testing.T) {
	r, root, src := setup(t)
	tests := []struct {
		policy restorer.IfExists
		want   map[string]string
	}{
		{restorer.Overwrite, files},
		{restorer.Skip, map[string]string{"docs/a.txt": "changed!", "docs/b.odt": "bravo", "docs/tmp/c.txt": "charlie",
			"src/main.go": "package main", "top.txt": "top"}},
		{restorer.Rename, map[string]string{"docs/a.txt": "changed!", "docs/a.txt.restored": "alpha", "docs/b.odt": "bravo",
			"docs/tmp/c.txt": "charlie", "src/main.go": "package main", "top.txt": "top"}},
	}
	for _, tt := range tests {
		t.Run(strings.ToLower([]string{"overwrite", "skip", "rename"}[tt.policy]), func(t *testing.T) {
			tgt := t.TempDir()
			run(t, r, root, restorer.Options{Target: tgt})
			dir := filepath.Join(tgt, src)
			if err := os.WriteFile(filepath.Join(dir, "docs/a.txt"), []byte("changed!"), 0o644); err != nil {
				t.Fatal(err)
			}
			res, acts := run(t, r, root, restorer.Options{Target: tgt, IfExists: tt.policy})
			got := readFiles(t, dir)
			if !mapsEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if res.Unchanged != 4 {
				t.Errorf("unchanged: got %d, want 4 (actions %v)", res.Unchanged, acts)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestDryRun(t *testing.T) {
	r, root, src := setup(t)
	tgt := filepath.Join(t.TempDir(), "new")
	_, acts := run(t, r, root, restorer.Options{Target: tgt, DryRun: true})
	if _, err := os.Stat(tgt); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dry run created the target: %v", err)
	}
	var created []string
	for _, a := range acts {
		if a.Do == "create" && a.Type.String() == "file" {
			rel, _ := filepath.Rel(filepath.Join(tgt, src), a.Path)
			created = append(created, filepath.ToSlash(rel))
		}
	}
	slices.Sort(created)
	if want := keys(files); !slices.Equal(created, want) {
		t.Errorf("dry run lists %v, want %v", created, want)
	}
	// Over an existing restore with one change, it lists only that change.
	run(t, r, root, restorer.Options{Target: tgt})
	os.WriteFile(filepath.Join(tgt, src, "top.txt"), []byte("TOP"), 0o644)
	_, acts = run(t, r, root, restorer.Options{Target: tgt, DryRun: true})
	var changed []string
	for _, a := range acts {
		if a.Do != "unchanged" {
			changed = append(changed, filepath.Base(a.Path)+":"+a.Do)
		}
	}
	if !slices.Equal(changed, []string{"top.txt:update"}) {
		t.Errorf("dry run over a restore lists %v, want [top.txt:update]", changed)
	}
	if b, _ := os.ReadFile(filepath.Join(tgt, src, "top.txt")); string(b) != "TOP" {
		t.Errorf("dry run wrote: %q", b)
	}
}

// failingVault fails every ReadPack after the first n, to interrupt a
// restore.
type failingVault struct {
	vaultapi.Vault
	left atomic.Int64
}

func (v *failingVault) ReadPack(ctx context.Context, p string, off, n int64) (io.ReadCloser, error) {
	if v.left.Add(-1) < 0 {
		return nil, errors.New("network down")
	}
	return v.Vault.ReadPack(ctx, p, off, n)
}

func TestInterruptedRerun(t *testing.T) {
	src := t.TempDir()
	big := map[string]string{}
	for i := range 40 {
		big["f"+string(rune('a'+i%26))+string(rune('a'+i/26))] = strings.Repeat(string(rune('A'+i%26)), 300<<10+i)
	}
	makeFiles(t, src, big)
	r := newRepo(t)
	root := backup(t, r, src)
	tgt := t.TempDir()

	fv := &failingVault{Vault: r.Vault}
	fv.left.Store(0)
	broken, err := repo.New(fv, r.Keys)
	if err != nil {
		t.Fatal(err)
	}
	// Trees are loaded through the working repo first, so only content
	// reads fail.
	if _, err := restorer.Restore(context.Background(), r, root, restorer.Options{Target: tgt, DryRun: true}); err != nil {
		t.Fatal(err)
	}
	fv.left.Store(1 << 30)
	if _, err := broken.Tree(context.Background(), root); err != nil {
		t.Fatal(err)
	}
	fv.left.Store(0)
	_, err = restorer.Restore(context.Background(), broken, root, restorer.Options{Target: tgt, Workers: 1,
		Report: func(restorer.Problem) {}})
	if err == nil {
		t.Fatal("interrupted restore: no error")
	}
	res, acts := run(t, r, root, restorer.Options{Target: tgt})
	got := readFiles(t, filepath.Join(tgt, src))
	if !mapsEqual(got, big) {
		t.Fatalf("after the re-run the files differ")
	}
	finished := 0
	for _, a := range acts {
		if a.Do != "unchanged" {
			finished++
		}
	}
	if finished == 0 {
		t.Error("the re-run after the interruption restored nothing; the interrupted run cannot have finished")
	}
	// A third run finds everything complete and rewrites nothing.
	res, acts = run(t, r, root, restorer.Options{Target: tgt})
	for _, a := range acts {
		if a.Do != "unchanged" {
			t.Errorf("third run: %s %s", a.Do, a.Path)
		}
	}
	if res.Unchanged != uint64(len(big)) {
		t.Errorf("third run: %d unchanged, want %d", res.Unchanged, len(big))
	}
	// A file cut off mid-write (right size, wrong bytes, no final mtime) is
	// updated; a missing one is created; the rest is left alone.
	dir := filepath.Join(tgt, src)
	f, err := os.OpenFile(filepath.Join(dir, "faa"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(make([]byte, 1000), 100<<10)
	f.Close()
	os.Remove(filepath.Join(dir, "fba"))
	_, acts = run(t, r, root, restorer.Options{Target: tgt})
	var did []string
	for _, a := range acts {
		if a.Do != "unchanged" {
			did = append(did, filepath.Base(a.Path)+":"+a.Do)
		}
	}
	slices.Sort(did)
	if want := []string{"faa:update", "fba:create"}; !slices.Equal(did, want) {
		t.Errorf("fourth run did %v, want %v", did, want)
	}
	if got := readFiles(t, dir); !mapsEqual(got, big) {
		t.Errorf("after the fourth run the files differ")
	}
}
