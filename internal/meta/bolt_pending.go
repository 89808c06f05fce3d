package meta

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	bolt "go.etcd.io/bbolt"
)

// Pending blob entries. Blob IDs are random, so putting one pack's few
// thousand blobs into the blob index touches a page of it for nearly every
// blob, and bbolt rewrites every page a transaction touches: indexing each
// pack on its own rewrote the whole index once per pack, a cost that grows
// with the index times the packs of a backup.
//
// So AddPack keeps a pack's new entries apart: in the machine's bucket
// "pending" (key: the pack number, 8 bytes big-endian; value: the pack's
// new entries, see appendPending), written in the pack's own transaction,
// and in memory, sorted by ID, where lookups find them. They enter the blob
// index together, in ID order, each index page rewritten once:
//   - when a recovery point commits (AddPoint, in its transaction),
//   - when pendingMax entries wait (in AddPack's transaction).
//
// Every step is one transaction, so a crash leaves each entry either
// pending or in the index, and OpenBolt loads what is pending. Readers take
// the in-memory set before they begin their transaction, and writers
// publish a new set only after theirs committed: a reader sees an entry in
// the set, in its snapshot of the index, or both, never in neither.

var bPending = []byte("pending")

// pendingMax bounds the entries that wait for the index, and with them the
// memory of the set (56 bytes an entry) and the size of one merge.
var pendingMax = 1 << 15

// pendingEntry is where a pending blob is stored.
type pendingEntry struct {
	id     vaultapi.ID
	num    uint64 // pack number
	off    uint64
	length uint32
	kind   vaultapi.Kind
}

// pendingSet is a machine's pending entries sorted by ID, one per ID.
// It is never changed once published; writers make a new one.
type pendingSet []pendingEntry

func (p pendingSet) find(id vaultapi.ID) (*pendingEntry, bool) {
	i, ok := slices.BinarySearchFunc(p, id, func(e pendingEntry, id vaultapi.ID) int {
		return bytes.Compare(e.id[:], id[:])
	})
	if !ok {
		return nil, false
	}
	return &p[i], true
}

// with returns a new set of p's entries and add's (sorted, unique, and
// none of them in p).
func (p pendingSet) with(add []pendingEntry) pendingSet {
	out := make(pendingSet, 0, len(p)+len(add))
	i, j := 0, 0
	for i < len(p) && j < len(add) {
		if bytes.Compare(p[i].id[:], add[j].id[:]) < 0 {
			out = append(out, p[i])
			i++
		} else {
			out = append(out, add[j])
			j++
		}
	}
	out = append(out, p[i:]...)
	return append(out, add[j:]...)
}

// pendingSets holds every machine's pending set.
type pendingSets struct {
	mu   sync.Mutex // held by writers across their transaction and publish
	sets atomic.Pointer[map[string]pendingSet]
}

// of returns machine's published set; nil when nothing is pending.
func (ps *pendingSets) of(machine string) pendingSet {
	if m := ps.sets.Load(); m != nil {
		return (*m)[machine]
	}
	return nil
}

// publish makes set machine's pending set (nil: nothing pending).
func (ps *pendingSets) publish(machine string, set pendingSet) {
	next := map[string]pendingSet{}
	if m := ps.sets.Load(); m != nil {
		for k, v := range *m {
			next[k] = v
		}
	}
	if len(set) == 0 {
		delete(next, machine)
	} else {
		next[machine] = set
	}
	ps.sets.Store(&next)
}

// appendPending appends a pack's pending entries as stored in bucket
// "pending": for each, the 32-byte ID, then uvarint(kind), uvarint(offset)
// and uvarint(length).
func appendPending(b []byte, es []pendingEntry) []byte {
	b = slices.Grow(b, len(es)*(32+3+binary.MaxVarintLen64))
	for i := range es {
		b = append(b, es[i].id[:]...)
		b = binary.AppendUvarint(b, uint64(es[i].kind))
		b = binary.AppendUvarint(b, es[i].off)
		b = binary.AppendUvarint(b, uint64(es[i].length))
	}
	return b
}

// decodePending appends the entries of pack number num, stored in v by
// appendPending, to es.
func decodePending(es []pendingEntry, num uint64, v []byte) ([]pendingEntry, error) {
	for len(v) > 0 {
		if len(v) < 32 {
			return es, errIndex
		}
		id := vaultapi.ID(v[:32])
		x, rest, ok := uvarints3(v[32:])
		if !ok || x[0] == 0 || x[0] > 3 || x[2] > 1<<32-1 {
			return es, errIndex
		}
		v = rest
		es = append(es, pendingEntry{id: id, num: num, kind: vaultapi.Kind(x[0]), off: x[1], length: uint32(x[2])})
	}
	return es, nil
}

// loadPending reads every machine's pending entries (OpenBolt).
func (s *Bolt) loadPending() error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bMachines).ForEachBucket(func(k []byte) error {
			pb := tx.Bucket(bMachines).Bucket(k).Bucket(bPending)
			if pb == nil {
				return nil
			}
			var es []pendingEntry
			// Keys are pack numbers in increasing order, so a blob stored
			// twice keeps its first pack, as it would in the index.
			err := pb.ForEach(func(num, v []byte) error {
				if len(num) != 8 {
					return errIndex
				}
				var err error
				es, err = decodePending(es, binary.BigEndian.Uint64(num), v)
				return err
			})
			if err != nil {
				return fmt.Errorf("machine %s: pending blob entries: %w", k, err)
			}
			slices.SortStableFunc(es, func(a, b pendingEntry) int { return bytes.Compare(a.id[:], b.id[:]) })
			es = slices.CompactFunc(es, func(a, b pendingEntry) bool { return a.id == b.id })
			s.pending.publish(string(k), es)
			return nil
		})
	})
}

// mergePending puts set's entries into the machine's blob index and
// empties bucket "pending", in the caller's transaction.
func mergePending(mb *bolt.Bucket, set pendingSet) error {
	if len(set) > 0 {
		blobs := mb.Bucket(bBlobs)
		// Pages split when 90 % full, not half full: IDs are random, so a
		// merge spreads its entries over every page of the index, and
		// half-full pages made the index twice its size on disk and in
		// the page cache. A later merge that fills a page splits it again.
		blobs.FillPercent = 0.9
		// bbolt keeps keys and values by reference until the commit, so
		// every entry gets its own bytes.
		// No entry is looked up first: AddPack keeps only blobs the index
		// does not hold, and only merges, which empty the set, add to it.
		kv := make([]byte, 0, len(set)*(32+maxLoc))
		for i := range set {
			e := &set[i]
			n := len(kv)
			kv = append(kv, e.id[:]...)
			kv = appendLoc(kv, e.num, e.kind, e.off, e.length)
			if err := blobs.Put(kv[n:n+32:n+32], kv[n+32:len(kv):len(kv)]); err != nil {
				return err
			}
		}
	}
	if mb.Bucket(bPending) != nil {
		return mb.DeleteBucket(bPending)
	}
	return nil
}
