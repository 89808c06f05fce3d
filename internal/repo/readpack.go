package repo

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// MaxGap is the largest run of unneeded bytes read through, rather than
// skipped with a new request, between two needed blobs of one pack.
const MaxGap = 1 << 20

// GroupByPack groups locations by pack, each group sorted by offset, and
// returns the pack names sorted. Locations with no pack are left out.
func GroupByPack(locs []vaultapi.Location) ([]string, map[string][]vaultapi.Location) {
	by := make(map[string][]vaultapi.Location)
	for _, l := range locs {
		if l.Pack != "" {
			by[l.Pack] = append(by[l.Pack], l)
		}
	}
	names := make([]string, 0, len(by))
	for p, ls := range by {
		names = append(names, p)
		slices.SortFunc(ls, func(a, b vaultapi.Location) int {
			switch {
			case a.Offset < b.Offset:
				return -1
			case a.Offset > b.Offset:
				return 1
			}
			return 0
		})
	}
	slices.Sort(names)
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
		if cap(buf) < n {
			buf = make([]byte, n)
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
