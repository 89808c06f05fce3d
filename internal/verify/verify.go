// Package verify checks a machine's recovery points end to end: every
// tree and every data blob they reference is read from the vault,
// authenticated, decrypted and checked against its ID. Damage is reported
// by the paths of the files it touches.
package verify

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sync"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Damage is one damaged or missing piece, with what it affects.
type Damage struct {
	Point string   // point ID
	Paths []string // files (or folders, for a tree) affected, at most a few hundred
	Err   error
}

// Result counts what was checked.
type Result struct {
	Points, Trees, Blobs uint64
	Bytes                uint64 // sealed bytes read
	Damaged              uint64
}

// Options of a verification.
type Options struct {
	Workers  int
	Report   func(Damage)
	Progress func(done, total uint64) // blobs
}

// Verify checks points.
func Verify(ctx context.Context, r *repo.Repo, points []vaultapi.Point, opts Options) (Result, error) {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Report == nil {
		opts.Report = func(Damage) {}
	}
	var res Result
	// users maps each data blob to the files using it (first point wins).
	users := make(map[vaultapi.ID][]string)
	owner := make(map[vaultapi.ID]string)
	seenTree := make(map[vaultapi.ID]bool)
	for _, p := range points {
		res.Points++
		m, err := r.Manifest(ctx, p)
		if err != nil {
			res.Damaged++
			opts.Report(Damage{Point: p.ID, Paths: []string{"(the point's manifest)"}, Err: err})
			continue
		}
		var walk func(id vaultapi.ID, dir string)
		walk = func(id vaultapi.ID, dir string) {
			if seenTree[id] {
				return
			}
			seenTree[id] = true
			res.Trees++
			t, err := r.Tree(ctx, id)
			if err != nil {
				res.Damaged++
				opts.Report(Damage{Point: p.ID, Paths: []string{dir + "/"}, Err: err})
				return
			}
			for i := range t.Nodes {
				n := &t.Nodes[i]
				child := path.Join(dir, string(n.Name))
				switch n.Type {
				case format.TypeDir:
					walk(n.Subtree, child)
				case format.TypeFile:
					for _, c := range n.Chunks {
						if u := users[c.ID]; len(u) < 256 && (len(u) == 0 || u[len(u)-1] != child) {
							users[c.ID] = append(u, child)
						}
						if _, ok := owner[c.ID]; !ok {
							owner[c.ID] = p.ID
						}
					}
				}
			}
		}
		r.Prefetch(ctx, m.Root, 1<<16)
		walk(m.Root, "/")
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}

	ids := make([]vaultapi.ID, 0, len(users))
	for id := range users {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b vaultapi.ID) int { return a.Compare(b) })
	var locs []vaultapi.Location
	for i := 0; i < len(ids); i += 10000 {
		l, err := r.Vault.Locate(ctx, ids[i:min(i+10000, len(ids))])
		if err != nil {
			return res, fmt.Errorf("locate blobs: %w", err)
		}
		locs = append(locs, l...)
	}
	var mu sync.Mutex
	damaged := func(id vaultapi.ID, err error) {
		mu.Lock()
		defer mu.Unlock()
		res.Damaged++
		opts.Report(Damage{Point: owner[id], Paths: users[id], Err: err})
	}
	for _, l := range locs {
		if l.Pack == "" {
			damaged(l.ID, fmt.Errorf("chunk %s: %w: missing from the vault", l.ID.Short(), vaultapi.ErrDamaged))
		} else if l.Kind != vaultapi.KindData {
			damaged(l.ID, fmt.Errorf("chunk %s: %w: stored as %s", l.ID.Short(), vaultapi.ErrDamaged, l.Kind))
		}
	}
	packs, byPack := repo.GroupByPack(locs)
	total := uint64(len(locs))
	work := make(chan string)
	var wg sync.WaitGroup
	var firstErr error
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			chunks := r.NewChunkOpener()
			chunks.Check = true // content against ID, end to end
			for p := range work {
				var err error
				last := ^uint64(0)
				buf, err = r.ReadBlobs(ctx, p, byPack[p], buf, func(l vaultapi.Location, sealed []byte) error {
					mu.Lock()
					if l.Offset != last { // a group's chunks share its bytes
						res.Bytes += uint64(len(sealed))
					}
					last = l.Offset
					res.Blobs++
					done := res.Blobs
					mu.Unlock()
					if _, err := chunks.Open(l, sealed); err != nil {
						damaged(l.ID, err)
					}
					if opts.Progress != nil {
						opts.Progress(done, total)
					}
					return nil
				})
				if err != nil {
					// The whole pack could not be read: every blob in it is damaged.
					for _, l := range byPack[p] {
						damaged(l.ID, fmt.Errorf("%w: %v", vaultapi.ErrDamaged, err))
					}
					mu.Lock()
					if ctx.Err() != nil && firstErr == nil {
						firstErr = ctx.Err()
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range packs {
		if ctx.Err() != nil {
			break
		}
		work <- p
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	return res, ctx.Err()
}
