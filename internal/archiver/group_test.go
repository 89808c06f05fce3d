package archiver_test

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/coffer-backup/coffer/internal/archiver"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/verify"
)

// TestSmallFilesGrouped: small files are stored in groups (their chunks
// share a place in a pack), large chunks each on their own, and the
// backup restores and verifies; without compression nothing is grouped.
func TestSmallFilesGrouped(t *testing.T) {
	for _, tc := range []struct {
		name    string
		level   format.Level
		grouped bool
	}{{"auto", format.LevelAuto, true}, {"fastest", format.LevelFastest, true}, {"none", format.LevelNone, false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			src := t.TempDir()
			rng := mrand.New(mrand.NewPCG(uint64(tc.level+5), 3))
			contents := map[string][]byte{}
			write := func(name string, n int) {
				b := make([]byte, n)
				for i := range b {
					b[i] = "abcdefgh\n"[rng.IntN(9)]
				}
				contents[name] = b
				if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 240 {
				write(fmt.Sprintf("small%03d", i), 1+rng.IntN(12<<10))
			}
			// One chunk (the chunker cuts nothing shorter than its minimum,
			// which is GroupMember), too large for a group. A larger file
			// could be cut in two, depending on the vault's random keys.
			write("large", format.GroupMember)
			_, r := open(t, t.TempDir(), nil)
			res, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: rand.Reader, Compression: tc.level})
			if err != nil {
				t.Fatal(err)
			}

			var ids []vaultapi.ID
			for _, b := range contents {
				ids = append(ids, r.Hasher.ID(b))
			}
			places := placesOf(t, r, ids)
			members := map[place]int{}
			for _, pl := range places {
				members[pl]++
			}
			if n := members[places[r.Hasher.ID(contents["large"])]]; n != 1 {
				t.Errorf("the large chunk shares its place with %d others", n-1)
			}
			shared := 0
			for _, n := range members {
				if n > 1 {
					shared++
				}
			}
			// About 1.5 MB of small files: at least two full groups.
			if tc.grouped && (shared < 2 || len(members) > 10) {
				t.Errorf("%d places for %d chunks, %d of them groups", len(members), len(ids), shared)
			}
			if !tc.grouped && (shared != 0 || len(members) != len(ids)) {
				t.Errorf("without compression: %d places for %d chunks, %d groups", len(members), len(ids), shared)
			}

			target := t.TempDir()
			if _, err := restorer.Restore(ctx, r, mustRoot(t, r, res), restorer.Options{Target: target}); err != nil {
				t.Fatal(err)
			}
			sameContent(t, src, filepath.Join(target, src))
			points, _ := r.Vault.Points(ctx)
			vres, err := verify.Verify(ctx, r, points, verify.Options{})
			if err != nil || vres.Damaged != 0 || vres.Blobs < uint64(len(ids)) {
				t.Fatalf("verify: %+v, %v", vres, err)
			}
		})
	}
}

// TestTinyFilesGroupsBounded: a folder of tiny files makes groups of at
// most format.GroupMaxMembers chunks, long before they reach the size at
// which a group is sealed.
func TestTinyFilesGroupsBounded(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	const files = 2*format.GroupMaxMembers + 100
	var ids []vaultapi.ID
	_, r := open(t, t.TempDir(), nil)
	for i := range files {
		b := fmt.Appendf(nil, "%x", i)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%05d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Hasher.ID(b))
	}
	res, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	locs, err := r.Vault.Locate(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	members := map[uint64]int{} // one pack: places by offset
	for _, l := range locs {
		members[l.Offset]++
	}
	if len(members) != 3 {
		t.Errorf("%d chunks in %d places, want 3 groups", files, len(members))
	}
	for off, n := range members {
		if n > format.GroupMaxMembers {
			t.Errorf("a group of %d chunks at %d", n, off)
		}
	}
	target := t.TempDir()
	if _, err := restorer.Restore(ctx, r, mustRoot(t, r, res), restorer.Options{Target: target}); err != nil {
		t.Fatal(err)
	}
	sameContent(t, src, filepath.Join(target, src))
}

// TestGroupsFollowFolders: folders listed at once each gather their small
// files into groups of their own, so a folder's files lie in about as
// many groups as their size fills, not spread over every group made while
// it was read (which a restore of that folder would all read and
// decompress).
func TestGroupsFollowFolders(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	_, r := open(t, t.TempDir(), nil)
	rng := mrand.New(mrand.NewPCG(11, 12))
	const folders, files = 8, 500
	folderOf := map[vaultapi.ID]int{}
	size := make([]int, folders)
	var ids []vaultapi.ID
	for f := range folders {
		dir := filepath.Join(src, fmt.Sprintf("folder%d", f))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range files {
			b := make([]byte, 2<<10+rng.IntN(6<<10))
			for j := range b {
				b[j] = "abcdefgh\n"[rng.IntN(9)]
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), b, 0o644); err != nil {
				t.Fatal(err)
			}
			id := r.Hasher.ID(b)
			folderOf[id] = f
			ids = append(ids, id)
			size[f] += len(b)
		}
	}
	if _, err := archiver.Backup(ctx, r, archiver.Options{Paths: []string{src}, Rand: rand.Reader}); err != nil {
		t.Fatal(err)
	}
	groupsOf := make([]map[place]bool, folders)
	all := map[place]bool{}
	for id, pl := range placesOf(t, r, ids) {
		f := folderOf[id]
		if groupsOf[f] == nil {
			groupsOf[f] = map[place]bool{}
		}
		groupsOf[f][pl] = true
		all[pl] = true
	}
	if len(all) < folders*3 {
		t.Fatalf("%d groups for %d folders of about %d KiB: too few to tell", len(all), folders, size[0]>>10)
	}
	for f, gs := range groupsOf {
		t.Logf("folder%d (%d KiB): %d groups", f, size[f]>>10, len(gs))
		// A stream seals a group once it holds GroupTarget bytes; only
		// its last is smaller, handed on to another stream.
		if most := size[f]/(format.GroupTarget/2) + 2; len(gs) > most {
			t.Errorf("folder%d (%d KiB) lies in %d of the %d groups, want at most %d", f, size[f]>>10, len(gs), len(all), most)
		}
	}
}

// place is where a chunk is stored: a group's members share one.
type place struct {
	pack string
	off  uint64
}

// placesOf locates ids in r's vault; each must be stored.
func placesOf(t *testing.T, r *repo.Repo, ids []vaultapi.ID) map[vaultapi.ID]place {
	t.Helper()
	locs, err := r.Vault.Locate(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[vaultapi.ID]place, len(locs))
	for _, l := range locs {
		if l.Pack == "" {
			t.Fatalf("chunk %s not stored", l.ID.Short())
		}
		out[l.ID] = place{l.Pack, l.Offset}
	}
	return out
}
