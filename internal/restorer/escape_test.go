package restorer_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// store seals blobs into one pack and stores it, as a backup would.
func store(t *testing.T, r *repo.Repo, kind vaultapi.Kind, plains ...[]byte) []vaultapi.ID {
	t.Helper()
	ctx := context.Background()
	s, err := format.NewSealer(r.Keys, rand.Reader, format.Level(0))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := r.Vault.BeginBackup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := pack.NewWriter(nil)
	var ids []vaultapi.ID
	for _, p := range plains {
		id := r.Hasher.ID(p)
		sealed, _, err := s.Seal(nil, kind, id, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.Add(kind, id, sealed)
		ids = append(ids, id)
	}
	if err := r.Vault.StorePack(ctx, sess.ID, w.Finish()); err != nil {
		t.Fatal(err)
	}
	return ids
}

func tree(t *testing.T, r *repo.Repo, nodes ...format.Node) vaultapi.ID {
	t.Helper()
	format.SortNodes(nodes)
	enc, err := (&format.Tree{Nodes: nodes}).AppendEncode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return store(t, r, vaultapi.KindTree, enc)[0]
}

// fileNode is a regular file named name holding data, stored as chunk.
func fileNode(name string, chunk vaultapi.ID, data []byte) format.Node {
	return format.Node{Name: []byte(name), Type: format.TypeFile, Mode: 0o644, Size: uint64(len(data)),
		Chunks: []format.Chunk{{ID: chunk, Size: uint32(len(data))}}}
}

// TestEscapeRefused restores crafted points whose names try to leave the
// target, and checks they are refused with nothing written outside.
func TestEscapeRefused(t *testing.T) {
	r := newRepo(t)
	data := []byte("owned")
	chunk := store(t, r, vaultapi.KindData, data)[0]
	file := func(name string) format.Node { return fileNode(name, chunk, data) }
	outside := t.TempDir()
	names := []string{"..", ".", "../" + filepath.Base(outside) + "-x", "a/../../x", outside + "/abs", "/etc-coffer-test", "nul\x00byte"}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			tgt := filepath.Join(t.TempDir(), "target")
			var root vaultapi.ID
			if name == ".." || name == "." {
				// A directory named ".." holding a file.
				sub := tree(t, r, file("escaped"))
				root = tree(t, r, format.Node{Name: []byte(name), Type: format.TypeDir, Mode: 0o755, Subtree: sub})
			} else {
				root = tree(t, r, file("ok"), file(name))
			}
			_, err := restorer.Restore(context.Background(), r, root, restorer.Options{Target: tgt})
			if !errors.Is(err, restorer.ErrUnsafeName) {
				t.Errorf("got %v, want ErrUnsafeName", err)
			}
			for _, p := range []string{filepath.Join(filepath.Dir(tgt), "escaped"), filepath.Join(outside, "abs"),
				"/etc-coffer-test", filepath.Join(filepath.Dir(tgt), "x")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was written outside the target", p)
				}
			}
		})
	}
}

// TestSymlinkInTarget restores over a target whose directory was replaced
// by a symlink to elsewhere: the symlink is replaced, never followed.
func TestSymlinkInTarget(t *testing.T) {
	r, root, src := setup(t)
	tgt := t.TempDir()
	elsewhere := t.TempDir()
	dir := filepath.Join(tgt, src)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(dir, "docs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "stolen"), filepath.Join(dir, "top.txt")); err != nil {
		t.Fatal(err)
	}
	run(t, r, root, restorer.Options{Target: tgt})
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Errorf("restore wrote through a symlink: %v", ents)
	}
	if got := readFiles(t, dir); !mapsEqual(got, files) {
		t.Errorf("got %v, want %v", got, files)
	}
}
