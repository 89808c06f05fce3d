package meta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	bolt "go.etcd.io/bbolt"
)

// A point's referenced blob set is stored either whole or as a delta
// against the machine's previous point: a daily backup of an unchanged
// tree then costs a few bytes, not 32 bytes per file. Value layout in the
// machine's refs bucket:
//
//	split: 3 | depth=0 | uvarint n
//	delta: 2 | depth (1..maxDepth) | uvarint len | base point ID |
//	       uvarint a | a×32 added | uvarint r | r×32 removed
//	full:  1 | depth=0 | n×32-byte IDs, sorted (read only: written before
//	       split sets)
//
// A split set's n IDs, sorted, lie in a bucket of their own, named by the
// point ID, in the machine's refsets bucket: values of up to setChunk IDs
// under 4-byte big-endian keys 0, 1, 2, … A set of megabytes inline in the
// refs bucket shared a leaf with the small deltas that followed it, and
// bbolt rewrites a whole leaf to add a key to it: every later point copied
// the set again and freed the old copy, so nearly every close compacted
// the file. A bucket of its own is written once and never rewritten.
//
// Reading a delta applies it to its base, which may itself be a delta, at
// most maxDepth links back. Whoever deletes a point must first rewrite
// the points based on it (rebase) so that no delta loses its base.
const (
	refsFull  = 1
	refsDelta = 2
	refsSplit = 3
	maxDepth  = 32
	setChunk  = 1024 // IDs per value of a split set: 32 KiB
)

// refStore is a machine's reference sets: the refs bucket, and the
// refsets bucket holding split sets (nil in a vault that has none yet).
type refStore struct{ refs, sets *bolt.Bucket }

func refsOf(mb *bolt.Bucket) refStore {
	return refStore{refs: mb.Bucket(bRefs), sets: mb.Bucket(bRefSets)}
}

// writableRefs is refsOf for a write transaction: it makes the refsets
// bucket if the vault predates it.
func writableRefs(mb *bolt.Bucket) (refStore, error) {
	sets, err := mb.CreateBucketIfNotExists(bRefSets)
	if err != nil {
		return refStore{}, err
	}
	return refStore{refs: mb.Bucket(bRefs), sets: sets}, nil
}

var bLatest = []byte("latest")

var errRefs = errors.New("meta: damaged reference set")

// sortedUnique returns ids sorted with duplicates removed (a copy).
func sortedUnique(ids []vaultapi.ID) []vaultapi.ID {
	out := slices.Clone(ids)
	slices.SortFunc(out, vaultapi.ID.Compare)
	return slices.Compact(out)
}

// isSortedUnique reports whether ids are sorted without duplicates, as a
// client usually sends them.
func isSortedUnique(ids []vaultapi.ID) bool {
	for i := 1; i < len(ids); i++ {
		if ids[i-1].Compare(ids[i]) >= 0 {
			return false
		}
	}
	return true
}

// readRefs decodes the reference set of point id from the refs bucket,
// and returns the depth of its delta (0 for a full set). A delta chain is
// read to its full set first; its deltas, small next to the set, are
// composed into one, which is applied with one copy of the set.
func readRefs(rs refStore, id []byte) ([]vaultapi.ID, int, error) {
	var added, removed []vaultapi.ID // the composed deltas read so far
	depth := 0
	for link, cur := 0, id; ; link++ {
		v := rs.refs.Get(cur)
		if v == nil {
			err := fmt.Errorf("point %q: %w", cur, ErrNotFound)
			if link > 0 {
				err = fmt.Errorf("base of point %q: %w", id, err)
			}
			return nil, 0, err
		}
		if len(v) < 2 {
			return nil, 0, errRefs
		}
		switch v[0] {
		case refsFull:
			body := v[2:]
			if len(body)%32 != 0 {
				return nil, 0, errRefs
			}
			out := make([]vaultapi.ID, len(body)/32, len(body)/32+len(added))
			for i := range out {
				copy(out[i][:], body[i*32:])
			}
			return applyDelta(out, added, removed), depth, nil
		case refsSplit:
			out, err := readSplit(rs.sets, cur, v[2:], len(added))
			if err != nil {
				return nil, 0, err
			}
			return applyDelta(out, added, removed), depth, nil
		case refsDelta:
			d := int(v[1])
			if d < 1 || d > maxDepth || link > maxDepth {
				return nil, 0, errRefs
			}
			if link == 0 {
				depth = d
			}
			b := v[2:]
			base, b, err := takeBytes(b)
			if err != nil {
				return nil, 0, err
			}
			a, b, err := takeIDs(b)
			if err != nil {
				return nil, 0, err
			}
			r, b, err := takeIDs(b)
			if err != nil || len(b) != 0 {
				return nil, 0, errRefs
			}
			// This link applies before those read so far: the set is
			// ((S ∪ a) \ r ∪ added) \ removed = (S ∪ added') \ removed' with
			// added' = (a \ removed) ∪ added and removed' = (r \ added) ∪ removed.
			added, removed = applyDelta(applyDelta(a, nil, removed), added, nil),
				applyDelta(applyDelta(r, nil, added), removed, nil)
			cur = base
		default:
			return nil, 0, errRefs
		}
	}
}

// readSplit reads the split set of point id, whose header body (after
// kind and depth) is hdr, with room for extra more IDs.
func readSplit(sets *bolt.Bucket, id, hdr []byte, extra int) ([]vaultapi.ID, error) {
	n, k := binary.Uvarint(hdr)
	if k <= 0 || k != len(hdr) || n > 1<<40 {
		return nil, errRefs
	}
	var b *bolt.Bucket
	if sets != nil {
		b = sets.Bucket(id)
	}
	if b == nil {
		return nil, fmt.Errorf("point %q: %w: its reference set is missing", id, errRefs)
	}
	out := make([]vaultapi.ID, 0, min(n, 1<<24)+uint64(extra))
	next := uint32(0)
	err := b.ForEach(func(k, v []byte) error {
		if len(k) != 4 || binary.BigEndian.Uint32(k) != next || len(v)%32 != 0 ||
			len(v) > 32*setChunk || uint64(len(out)+len(v)/32) > n {
			return errRefs
		}
		next++
		for ; len(v) > 0; v = v[32:] {
			out = append(out, vaultapi.ID(v[:32]))
		}
		return nil
	})
	if err == nil && uint64(len(out)) != n {
		err = errRefs
	}
	if err != nil {
		return nil, fmt.Errorf("point %q: %w", id, err)
	}
	return out, nil
}

// writeSplit stores refs (sorted) as the split set of point id, replacing
// whatever set id had.
func writeSplit(rs refStore, id []byte, refs []vaultapi.ID) error {
	if err := dropSplit(rs, id); err != nil {
		return err
	}
	b, err := rs.sets.CreateBucket(id)
	if err != nil {
		return err
	}
	b.FillPercent = 1 // keys arrive in order and are never added to
	// bbolt keeps the keys and values of a Put until the commit: one
	// buffer holds them all.
	buf := make([]byte, 0, 32*len(refs)+4*(len(refs)/setChunk+1))
	for i := 0; i*setChunk < len(refs); i++ {
		start := len(buf)
		buf = binary.BigEndian.AppendUint32(buf, uint32(i))
		for _, r := range refs[i*setChunk : min((i+1)*setChunk, len(refs))] {
			buf = append(buf, r[:]...)
		}
		if err := b.Put(buf[start:start+4], buf[start+4:]); err != nil {
			return err
		}
	}
	hdr := binary.AppendUvarint([]byte{refsSplit, 0}, uint64(len(refs)))
	return rs.refs.Put(id, hdr)
}

// putRefs stores the set of point id: as the delta enc, or split when enc
// is nil.
func putRefs(rs refStore, id []byte, enc []byte, refs []vaultapi.ID) error {
	if enc == nil {
		return writeSplit(rs, id, refs)
	}
	if err := dropSplit(rs, id); err != nil {
		return err
	}
	return rs.refs.Put(id, enc)
}

// dropSplit deletes the split set of point id, if it has one.
func dropSplit(rs refStore, id []byte) error {
	if rs.sets == nil || rs.sets.Bucket(id) == nil {
		return nil
	}
	return rs.sets.DeleteBucket(id)
}

func takeBytes(b []byte) ([]byte, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errRefs
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

func takeIDs(b []byte) ([]vaultapi.ID, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k)/32 {
		return nil, nil, errRefs
	}
	b = b[k:]
	out := make([]vaultapi.ID, n)
	for i := range out {
		copy(out[i][:], b[i*32:])
	}
	return out, b[n*32:], nil
}

// applyDelta returns (base ∪ added) \ removed; all inputs sorted. It
// copies base in runs between the IDs of the delta, so a small delta costs
// about one copy of base; an empty delta (a backup of an unchanged tree)
// returns base itself.
func applyDelta(base, added, removed []vaultapi.ID) []vaultapi.ID {
	if len(added) == 0 && len(removed) == 0 {
		return base
	}
	var out []vaultapi.ID
	if len(added) == 0 {
		out = slices.Clone(base)
	} else {
		out = make([]vaultapi.ID, 0, len(base)+len(added))
		i := 0
		for _, a := range added {
			j, found := slices.BinarySearchFunc(base[i:], a, vaultapi.ID.Compare)
			out = append(out, base[i:i+j]...)
			i += j
			if !found {
				out = append(out, a)
			}
		}
		out = append(out, base[i:]...)
	}
	if len(removed) == 0 {
		return out
	}
	keep, i := 0, 0
	for _, r := range removed {
		j, found := slices.BinarySearchFunc(out[i:], r, vaultapi.ID.Compare)
		keep += copy(out[keep:], out[i:i+j])
		i += j
		if found {
			i++
		}
	}
	keep += copy(out[keep:], out[i:])
	return out[:keep]
}

// diff returns what to add to and remove from a to get b (both sorted).
func diff(a, b []vaultapi.ID) (added, removed []vaultapi.ID) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if i < len(a) && j < len(b) && a[i] == b[j] { // most are: no ordering needed
			i++
			j++
			continue
		}
		switch {
		case j == len(b) || i < len(a) && a[i].Compare(b[j]) < 0:
			removed = append(removed, a[i])
			i++
		case i == len(a) || b[j].Compare(a[i]) < 0:
			added = append(added, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

// encodeRefs chooses between a delta against the machine's latest point
// and a full set: it returns the delta, or nil for a full set (putRefs
// stores either). It also returns the refs that the latest point does not
// reference (all of them if there is none): the blobs of a point that
// exists are indexed (AddPoint checked them, and nothing drops a blob that
// a point references), so only those need checking.
func encodeRefs(mb *bolt.Bucket, rs refStore, refs []vaultapi.ID) (enc []byte, unknown []vaultapi.ID, err error) {
	latest := mb.Get(bLatest)
	if latest == nil {
		return nil, refs, nil
	}
	base, depth, err := readRefs(rs, latest)
	if errors.Is(err, ErrNotFound) {
		return nil, refs, nil
	}
	if err != nil {
		return nil, nil, err
	}
	added, removed := diff(base, refs)
	if depth+1 > maxDepth {
		return nil, added, nil
	}
	return encodeDeltaOf(latest, depth+1, added, removed, len(refs)), added, nil
}

// encodeDelta encodes refs as a delta of the given depth against the point
// baseID, whose set is base; it returns nil when a delta would be no
// smaller than half the set.
func encodeDelta(baseID []byte, depth int, base, refs []vaultapi.ID) []byte {
	added, removed := diff(base, refs)
	return encodeDeltaOf(baseID, depth, added, removed, len(refs))
}

// encodeDeltaOf is encodeDelta of a set of n refs, given its difference.
func encodeDeltaOf(baseID []byte, depth int, added, removed []vaultapi.ID, n int) []byte {
	if 32*(len(added)+len(removed)) >= 16*n {
		return nil
	}
	b := []byte{refsDelta, byte(depth)}
	b = binary.AppendUvarint(b, uint64(len(baseID)))
	b = append(b, baseID...)
	for _, set := range [][]vaultapi.ID{added, removed} {
		b = binary.AppendUvarint(b, uint64(len(set)))
		for _, id := range set {
			b = append(b, id[:]...)
		}
	}
	return b
}

// deltaBase returns the base point and depth of an encoded delta, or nil
// for a full set.
func deltaBase(v []byte) ([]byte, int, error) {
	if len(v) < 2 {
		return nil, 0, errRefs
	}
	if v[0] != refsDelta {
		return nil, 0, nil
	}
	base, _, err := takeBytes(v[2:])
	return base, int(v[1]), err
}

// purgeRefs removes the reference set of point id, first rebasing every
// delta based on it: onto id's own base when id is a delta (at id's
// depth, so no chain grows), else as a full set.
func purgeRefs(rs refStore, id []byte) error {
	v := rs.refs.Get(id)
	if v == nil {
		return nil
	}
	myBase, myDepth, err := deltaBase(v)
	if err != nil {
		return err
	}
	var baseSet []vaultapi.ID
	if myBase != nil {
		myBase = slices.Clone(myBase)
		if baseSet, _, err = readRefs(rs, myBase); err != nil {
			return err
		}
	}
	type rewrite struct {
		key []byte
		set []vaultapi.ID
		enc []byte // nil: a full set
	}
	var deps [][]byte
	err = rs.refs.ForEach(func(k, v []byte) error {
		b, _, err := deltaBase(v)
		if err != nil {
			return err
		}
		if b != nil && string(b) == string(id) {
			deps = append(deps, slices.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	var out []rewrite
	for _, k := range deps {
		set, _, err := readRefs(rs, k)
		if err != nil {
			return err
		}
		w := rewrite{key: k, set: set}
		if myBase != nil {
			w.enc = encodeDelta(myBase, myDepth, baseSet, set)
		}
		out = append(out, w)
	}
	for _, w := range out {
		if err := putRefs(rs, w.key, w.enc, w.set); err != nil {
			return err
		}
	}
	if err := dropSplit(rs, id); err != nil {
		return err
	}
	return rs.refs.Delete(id)
}
