package restorer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// damageSetup backs up three files (a and c small, b of several chunks)
// into an embedded vault in its own folder, and returns the repo, the
// point's root, the source folder and the vault folder.
func damageSetup(t *testing.T) (*repo.Repo, vaultapi.ID, string, string) {
	t.Helper()
	src, vdir := t.TempDir(), t.TempDir()
	rng := mrand.New(mrand.NewPCG(5, 6))
	files := map[string]int{"a": 3000, "b": 6 << 20, "c": 5000}
	for name, n := range files {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := newRepoIn(t, vdir)
	return r, backup(t, r, src), src, vdir
}

// nodeAt finds the node of an absolute path in the point.
func nodeAt(t *testing.T, r *repo.Repo, root vaultapi.ID, p string) *format.Node {
	t.Helper()
	id := root
	var n *format.Node
	for _, el := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		tr, err := r.Tree(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(tr.Nodes, func(n format.Node) bool { return string(n.Name) == el })
		if i < 0 {
			t.Fatalf("%s: %s not in the point", p, el)
		}
		n = &tr.Nodes[i]
		id = n.Subtree
	}
	return n
}

// packFile locates chunk id and returns its location and the file of its
// pack in the vault folder.
func packFile(t *testing.T, r *repo.Repo, vdir string, id vaultapi.ID) (vaultapi.Location, string) {
	t.Helper()
	locs, err := r.Vault.Locate(context.Background(), []vaultapi.ID{id})
	if err != nil || len(locs) != 1 || locs[0].Pack == "" {
		t.Fatalf("locate %s: %v %v", id.Short(), locs, err)
	}
	var found string
	filepath.WalkDir(vdir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == locs[0].Pack {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("pack %s not found under the vault folder", locs[0].Pack)
	}
	return locs[0], found
}

func restoreReporting(t *testing.T, r *repo.Repo, root vaultapi.ID) (string, restorer.Result, map[string]error) {
	t.Helper()
	return restoreWith(t, r, root, restorer.Options{})
}

// restoreWith restores root into a new folder with opts, and returns the
// folder, the result and the problems reported, by path.
func restoreWith(t *testing.T, r *repo.Repo, root vaultapi.ID, opts restorer.Options) (string, restorer.Result, map[string]error) {
	t.Helper()
	target := t.TempDir()
	probs := map[string]error{}
	var mu sync.Mutex // Report is called by several workers at once
	opts.Target = target
	opts.Report = func(p restorer.Problem) { mu.Lock(); probs[p.Path] = p.Err; mu.Unlock() }
	res, err := restorer.Restore(context.Background(), r, root, opts)
	if err != nil {
		t.Fatalf("a damaged pack ended the whole restore: %v", err)
	}
	return target, res, probs
}

// TestRestoreDamagedChunk: one chunk of a file of several is damaged in
// the vault. That file is reported by path, as damage, and not left
// behind half written; the other files restore exactly.
func TestRestoreDamagedChunk(t *testing.T) {
	r, root, src, vdir := damageSetup(t)
	b := nodeAt(t, r, root, filepath.Join(src, "b"))
	if len(b.Chunks) < 3 {
		t.Fatalf("b has %d chunks, want several", len(b.Chunks))
	}
	loc, pf := packFile(t, r, vdir, b.Chunks[1].ID)
	data, err := os.ReadFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	data[loc.Offset+uint64(loc.Length)/2] ^= 0x40
	if err := os.WriteFile(pf, data, 0o600); err != nil {
		t.Fatal(err)
	}

	target, res, probs := restoreReporting(t, r, root)
	bPath := filepath.Join(target, src, "b")
	if len(probs) != 1 || probs[bPath] == nil || !errors.Is(probs[bPath], vaultapi.ErrDamaged) {
		t.Fatalf("problems %v, want one for %s, as damage", probs, bPath)
	}
	if res.Problems != 1 {
		t.Errorf("Result.Problems = %d, want 1", res.Problems)
	}
	if _, err := os.Lstat(bPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the partly restored b is still there (%v)", err)
	}
	for _, name := range []string{"a", "c"} {
		want, _ := os.ReadFile(filepath.Join(src, name))
		got, err := os.ReadFile(filepath.Join(target, src, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: restored %d bytes (%v), want its %d bytes", name, len(got), err, len(want))
		}
	}
}

// TestRestoreMissingPack: the data pack is gone from the vault. Every file
// with content in it is reported and none is left behind; the restore
// itself completes (the folders are there) instead of stopping at the
// first read.
func TestRestoreMissingPack(t *testing.T) {
	r, root, src, vdir := damageSetup(t)
	_, pf := packFile(t, r, vdir, nodeAt(t, r, root, filepath.Join(src, "a")).Chunks[0].ID)
	for _, name := range []string{"b", "c"} {
		n := nodeAt(t, r, root, filepath.Join(src, name))
		if _, other := packFile(t, r, vdir, n.Chunks[0].ID); other != pf {
			t.Fatalf("%s is in another pack; the test wants one data pack", name)
		}
	}
	if err := os.Remove(pf); err != nil {
		t.Fatal(err)
	}

	target, res, probs := restoreReporting(t, r, root)
	for _, name := range []string{"a", "b", "c"} {
		p := filepath.Join(target, src, name)
		if !errors.Is(probs[p], vaultapi.ErrDamaged) {
			t.Errorf("%s: problem %v, want damage", name, probs[p])
		}
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: a file is left behind (%v)", name, err)
		}
	}
	if len(probs) != 3 || res.Problems != 3 {
		t.Errorf("problems %v (Result.Problems %d), want the three files", probs, res.Problems)
	}
	if st, err := os.Stat(filepath.Join(target, src)); err != nil || !st.IsDir() {
		t.Errorf("the source folder was not restored: %v", err)
	}
}

// TestRestoreVerify: the group holding a and c is sealed again, with the
// machine's keys, with one byte of a changed and the table naming the
// same IDs: authentic, but a's bytes no longer hash to a's ID (what a
// writer that sealed other bytes than it hashed would leave). A restore
// trusts the authenticated ID and writes the changed a; with Verify it
// reports a as damaged and still restores c (and b, whose last chunk is
// in the group too), the group's other members.
func TestRestoreVerify(t *testing.T) {
	r, root, src, vdir := damageSetup(t)
	a, c := nodeAt(t, r, root, filepath.Join(src, "a")), nodeAt(t, r, root, filepath.Join(src, "c"))
	loc, pf := packFile(t, r, vdir, a.Chunks[0].ID)
	if cl, _ := packFile(t, r, vdir, c.Chunks[0].ID); cl.Offset != loc.Offset {
		t.Fatalf("a and c are not in one group")
	}
	data, err := os.ReadFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	sealed := data[loc.Offset : loc.Offset+uint64(loc.Length)]
	plain, members, ids, err := r.Opener.OpenGroup(nil, nil, nil, vaultapi.KindData, bytes.Clone(sealed))
	if err != nil || len(members) < 2 {
		t.Fatalf("open the group: %d members, %v", len(members), err)
	}
	i := slices.Index(ids, a.Chunks[0].ID)
	members[i][7] ^= 0x01 // members are slices of plain
	s, err := format.NewSealer(r.Keys, rand.Reader, format.LevelNone)
	if err != nil {
		t.Fatal(err)
	}
	frame, err := s.GroupFrame(nil, plain)
	if err != nil {
		t.Fatal(err)
	}
	resealed, err := s.SealGroup(nil, vaultapi.KindData, frame)
	if err != nil || len(resealed) != len(sealed) {
		t.Fatalf("sealed again: %d bytes (%v), want the %d stored (random bytes are stored raw)", len(resealed), err, len(sealed))
	}
	copy(sealed, resealed)
	if err := os.WriteFile(pf, data, 0o600); err != nil {
		t.Fatal(err)
	}
	wantA, _ := os.ReadFile(filepath.Join(src, "a"))
	wantA[7] ^= 0x01
	wantC, _ := os.ReadFile(filepath.Join(src, "c"))

	target, _, probs := restoreWith(t, r, root, restorer.Options{})
	if len(probs) != 0 {
		t.Fatalf("without Verify: problems %v", probs)
	}
	if got, _ := os.ReadFile(filepath.Join(target, src, "a")); !bytes.Equal(got, wantA) {
		t.Errorf("without Verify: a is not the bytes sealed under its ID")
	}

	target, res, probs := restoreWith(t, r, root, restorer.Options{Verify: true})
	aPath := filepath.Join(target, src, "a")
	if len(probs) != 1 || !errors.Is(probs[aPath], vaultapi.ErrDamaged) || res.Problems != 1 {
		t.Fatalf("with Verify: problems %v, want a, as damage", probs)
	}
	if _, err := os.Lstat(aPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("with Verify: a is left behind (%v)", err)
	}
	wantB, _ := os.ReadFile(filepath.Join(src, "b"))
	for name, want := range map[string][]byte{"b": wantB, "c": wantC} {
		if got, _ := os.ReadFile(filepath.Join(target, src, name)); !bytes.Equal(got, want) {
			t.Errorf("with Verify: %s, whose chunk shares a's group, is not restored", name)
		}
	}
}
