package archiver

import (
	"slices"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// sortIDs sorts ids as vaultapi.ID.Compare does. A point's refs are
// many (one per chunk) and hashes, so evenly spread: a counting sort on
// the first two bytes puts each in place with one copy, and the few that
// share a bucket are sorted among themselves. A comparison sort moves
// the 32-byte IDs ten times as much.
func sortIDs(ids []vaultapi.ID) {
	if len(ids) < 1<<12 {
		slices.SortFunc(ids, vaultapi.ID.Compare)
		return
	}
	const buckets = 1 << 16
	bucket := func(id *vaultapi.ID) int { return int(id[0])<<8 | int(id[1]) }
	start := make([]int, buckets+1) // where each bucket starts in out
	for i := range ids {
		start[bucket(&ids[i])+1]++
	}
	for b := 1; b <= buckets; b++ {
		start[b] += start[b-1]
	}
	next := slices.Clone(start[:buckets])
	out := make([]vaultapi.ID, len(ids))
	for i := range ids {
		b := bucket(&ids[i])
		out[next[b]] = ids[i]
		next[b]++
	}
	for b := range buckets {
		if seg := out[start[b]:start[b+1]]; len(seg) > 1 {
			slices.SortFunc(seg, vaultapi.ID.Compare)
		}
	}
	copy(ids, out)
}
