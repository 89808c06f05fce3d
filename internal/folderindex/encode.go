package folderindex

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
	"sync"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Key names a folder: a keyed hash of its path, made by the caller.
type Key [16]byte

// FP is the fingerprint of a folder's listing, made by the caller.
type FP [16]byte

// Entry is what a backup remembers of one folder.
type Entry struct {
	FP     FP
	Tree   vaultapi.ID   // the folder's tree
	Chunks []vaultapi.ID // the chunk IDs its files reference, in the caller's order (repeats allowed, may be empty)
}

// MAC authenticates the file: a keyed hash supplied by the caller (it
// holds the keys).
type MAC func(b []byte) vaultapi.ID

// Sizes of the file's parts; see the package comment.
const (
	magic      = "CFIX"
	version    = 0x01
	idSize     = len(vaultapi.ID{})
	headerSize = len(magic) + 1 + 2*idSize // magic, version, point, scope
	macSize    = idSize
	entryFixed = len(Key{}) + len(FP{}) + idSize // key, fp, tree
	minEntry   = entryFixed + 1                  // and a one-byte n
)

// Builder gathers entries while a backup runs. It is safe for concurrent
// use. The zero Builder is empty and ready to use.
type Builder struct {
	mu sync.Mutex
	m  map[Key]Entry
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{m: make(map[Key]Entry)}
}

// Add records e for the folder k, replacing what an earlier Add recorded
// for k. The Builder retains e.Chunks: the caller must not modify it
// afterwards.
func (b *Builder) Add(k Key, e Entry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = make(map[Key]Entry)
	}
	b.m[k] = e
}

// Len returns the number of folders added so far.
func (b *Builder) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// Encode returns the file's bytes for the entries added so far, bound to
// the recovery point and to scope (a hash of the backup's settings, made by
// the caller) and authenticated with mac. The encoding is canonical: the
// same entries, point, scope and mac always give the same bytes.
func (b *Builder) Encode(point, scope vaultapi.ID, mac MAC) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()

	keys := make([]Key, 0, len(b.m))
	size := headerSize + uvarintLen(uint64(len(b.m))) + macSize
	for k, e := range b.m {
		keys = append(keys, k)
		size += entryFixed + uvarintLen(uint64(len(e.Chunks))) + len(e.Chunks)*idSize
	}
	slices.SortFunc(keys, func(x, y Key) int { return bytes.Compare(x[:], y[:]) })

	out := make([]byte, 0, size)
	out = append(out, magic...)
	out = append(out, version)
	out = append(out, point[:]...)
	out = append(out, scope[:]...)
	out = binary.AppendUvarint(out, uint64(len(keys)))
	for _, k := range keys {
		e := b.m[k]
		out = appendEntry(out, k, e.FP, e.Tree, e.Chunks)
	}
	sum := mac(out)
	return append(out, sum[:]...)
}

// appendEntry appends one entry as the file holds it (and a Log too).
func appendEntry(out []byte, k Key, fp FP, tree vaultapi.ID, chunks []vaultapi.ID) []byte {
	out = append(out, k[:]...)
	out = append(out, fp[:]...)
	out = append(out, tree[:]...)
	out = binary.AppendUvarint(out, uint64(len(chunks)))
	for _, c := range chunks {
		out = append(out, c[:]...)
	}
	return out
}

// uvarintLen returns the length of v's minimal uvarint encoding.
func uvarintLen(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}
