package repo

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// MaxGap is the largest run of unneeded bytes read through, rather than
// skipped with a new request, between two needed blobs of one pack.
const MaxGap = 1 << 20

// bufStep is what ReadBlobs rounds a buffer it grows up to.
const bufStep = 1 << 20

// GroupByPack groups locations by pack, each group sorted by offset, and
// returns the pack names sorted. Locations with no pack are left out.
func GroupByPack(locs []vaultapi.Location) ([]string, map[string][]vaultapi.Location) {
	// One sorted copy, sliced per pack: a slice per pack grown by append
	// made most of a restore's garbage.
	all := make([]vaultapi.Location, 0, len(locs))
	for _, l := range locs {
		if l.Pack != "" {
			all = append(all, l)
		}
	}
	slices.SortFunc(all, func(a, b vaultapi.Location) int {
		if c := strings.Compare(a.Pack, b.Pack); c != 0 {
			return c
		}
		return cmp.Compare(a.Offset, b.Offset)
	})
	by := make(map[string][]vaultapi.Location)
	var names []string
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].Pack == all[i].Pack {
			j++
		}
		names = append(names, all[i].Pack)
		by[all[i].Pack] = all[i:j:j]
		i = j
	}
	return names, by
}

// ReadBlobs reads the sealed bytes of locs (all in pack p, sorted by
// offset) with as few range requests as MaxGap allows, calling fn for each
// blob. buf is reused and returned. fn must not keep sealed.
func (r *Repo) ReadBlobs(ctx context.Context, p string, locs []vaultapi.Location, buf []byte,
	fn func(l vaultapi.Location, sealed []byte) error) ([]byte, error) {
	for i := 0; i < len(locs); {
		j := i + 1
		end := locs[i].Offset + uint64(locs[i].Length)
		for j < len(locs) && locs[j].Offset <= end+MaxGap {
			end = max(end, locs[j].Offset+uint64(locs[j].Length))
			j++
		}
		start := locs[i].Offset
		n := int(end - start)
		switch {
		case cap(buf) == 0:
			buf = make([]byte, n)
		case cap(buf) < n:
			// Rounded up to a whole MiB, so that a caller reusing buf
			// across reads of varied lengths allocates a few times, not
			// at each new longest read.
			buf = make([]byte, n, (n+bufStep-1)/bufStep*bufStep)
		}
		buf = buf[:n]
		rc, err := r.Vault.ReadPack(ctx, p, int64(start), int64(n))
		if err != nil {
			return buf, fmt.Errorf("read pack %s: %w", p[:12], err)
		}
		_, err = io.ReadFull(rc, buf)
		rc.Close()
		if err != nil {
			return buf, fmt.Errorf("read pack %s: %w", p[:12], err)
		}
		for _, l := range locs[i:j] {
			if err := fn(l, buf[l.Offset-start:l.Offset-start+uint64(l.Length)]); err != nil {
				return buf, err
			}
		}
		i = j
	}
	return buf, nil
}
