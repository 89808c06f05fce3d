package meta

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	bolt "go.etcd.io/bbolt"
)

// Blob filters. A backup asks whether the vault holds each new chunk, one
// at a time, and in a first or much-changed backup nearly every answer is
// no; each question cost a read transaction (about a microsecond and
// seventeen allocations). A Bloom filter of a machine's blob IDs, indexed
// and pending, answers most of those noes without one.
//
// A filter is built the filterAfter-th time HasBlobs is asked about a
// machine in this process, so commands that ask little (an unchanged
// backup) never scan the index for it. Every writer that adds blob IDs
// (AddPack, under pending.mu) adds them to the filter before its
// transaction commits, and the filter is built under pending.mu too: once
// AddPack returned, its blobs pass the filter, so "not in the filter" is
// always right. A filter that fills past maxFilterLoad keys per bit is
// built again, larger, at the next question.

// filterAfter is how many HasBlobs calls for a machine come before its
// filter is built.
const filterAfter = 256

// filterHashes is the number of bits a key sets; with at least
// 1/maxFilterLoad = 16 bits a key, false positives stay under 0.3 %.
const (
	filterHashes  = 4
	maxFilterLoad = 16
	minFilterBits = 1 << 20 // 128 KiB
)

// blobFilter is a Bloom filter over blob IDs, safe for concurrent adds
// and queries. Blob IDs are keyed hashes, but the vault takes them from
// agents, so their bytes are mixed before they pick bits: IDs made to
// collide only cost their own machine false positives, never a wrong no.
type blobFilter struct {
	words []atomic.Uint64
	mask  uint64 // bits - 1; bits is a power of two
	keys  atomic.Int64
}

func newBlobFilter(keys int) *blobFilter {
	n := max(uint64(keys)*maxFilterLoad*2, minFilterBits)
	n = 1 << bits.Len64(n-1)
	return &blobFilter{words: make([]atomic.Uint64, n/64), mask: n - 1}
}

func (f *blobFilter) positions(id *vaultapi.ID) [filterHashes]uint64 {
	w := func(i int) uint64 { return binary.LittleEndian.Uint64(id[8*i:]) }
	h1, h2 := mix64(w(0)^w(2)), mix64(w(1)^w(3))|1
	var p [filterHashes]uint64
	for i := range p {
		p[i] = (h1 + uint64(i)*h2) & f.mask
	}
	return p
}

// mix64 is the finalizer of SplitMix64.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (f *blobFilter) add(id *vaultapi.ID) {
	for _, b := range f.positions(id) {
		w, bit := &f.words[b/64], uint64(1)<<(b%64)
		if w.Load()&bit == 0 {
			w.Or(bit)
		}
	}
	f.keys.Add(1)
}

func (f *blobFilter) mayHave(id *vaultapi.ID) bool {
	for _, b := range f.positions(id) {
		if f.words[b/64].Load()&(1<<(b%64)) == 0 {
			return false
		}
	}
	return true
}

// full reports whether the filter holds too many keys for its size.
func (f *blobFilter) full() bool {
	return uint64(f.keys.Load())*maxFilterLoad > f.mask+1
}

// machineFilter is a machine's filter and how often it was asked for.
type machineFilter struct {
	asked  atomic.Int64
	filter atomic.Pointer[blobFilter]
}

// filterFor returns the filter of machine, building it (or building it
// again, larger) when it is due; nil before then.
func (s *Bolt) filterFor(machine string) *blobFilter {
	v, _ := s.filters.LoadOrStore(machine, new(machineFilter))
	mf := v.(*machineFilter)
	if f := mf.filter.Load(); f != nil && !f.full() {
		return f
	}
	if mf.asked.Add(1) < filterAfter {
		return nil
	}
	s.pending.mu.Lock() // no writer adds IDs meanwhile
	defer s.pending.mu.Unlock()
	if f := mf.filter.Load(); f != nil && !f.full() {
		return f
	}
	pend := s.pending.of(machine)
	var f *blobFilter
	err := s.db.View(func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		blobs := mb.Bucket(bBlobs)
		f = newBlobFilter(blobs.Stats().KeyN + len(pend))
		for i := range pend {
			f.add(&pend[i].id)
		}
		return blobs.ForEach(func(k, _ []byte) error {
			if len(k) == len(vaultapi.ID{}) {
				f.add((*vaultapi.ID)(k))
			}
			return nil
		})
	})
	if err != nil {
		return nil // ask the index
	}
	mf.filter.Store(f)
	return f
}

// filterAdd adds es to machine's filter, if it has one; the caller holds
// pending.mu.
func (s *Bolt) filterAdd(machine string, es []pendingEntry) {
	v, ok := s.filters.Load(machine)
	if !ok {
		return
	}
	if f := v.(*machineFilter).filter.Load(); f != nil {
		for i := range es {
			f.add(&es[i].id)
		}
	}
}
