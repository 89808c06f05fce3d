package folderindex

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// ErrIndex is wrapped by every error Decode returns.
var ErrIndex = errors.New("folder index damaged or not Coffer's")

// Index is a decoded folder index. A nil *Index is valid and empty.
type Index struct {
	point, scope vaultapi.ID
	recs         []record      // in strictly increasing key order
	chunks       []vaultapi.ID // every entry's chunk IDs, in file order
}

// record is one entry; its chunk IDs are chunks[off:off+n] of its Index.
type record struct {
	key    Key
	fp     FP
	tree   vaultapi.ID
	off, n int
}

// Decode checks and decodes a file made by Builder.Encode with the same
// mac. Every error it returns wraps ErrIndex. Decode does not retain b;
// it makes two allocations proportional to len(b), whatever b claims.
func Decode(b []byte, mac MAC) (*Index, error) {
	if len(b) < headerSize+1+macSize {
		return nil, refuse("%d bytes, shorter than the fixed parts (%d)", len(b), headerSize+1+macSize)
	}
	if string(b[:len(magic)]) != magic {
		return nil, refuse("bad magic %q", b[:len(magic)])
	}
	if v := b[len(magic)]; v != version {
		return nil, refuse("unknown version %d", v)
	}
	body, sum := b[:len(b)-macSize], b[len(b)-macSize:]
	want := mac(body)
	if subtle.ConstantTimeCompare(want[:], sum) != 1 {
		return nil, refuse("MAC mismatch")
	}

	ix := &Index{
		point: vaultapi.ID(body[len(magic)+1:]),
		scope: vaultapi.ID(body[len(magic)+1+idSize:]),
	}
	p := body[headerSize:]
	count, k, err := uvarint(p)
	if err != nil {
		return nil, refuse("entry count: %v", err)
	}
	p = p[k:]
	if count > uint64(len(p)/minEntry) {
		return nil, refuse("%d entries claimed, %d bytes hold at most %d", count, len(p), len(p)/minEntry)
	}
	// Every entry takes at least minEntry bytes, so the rest can hold no
	// more chunk IDs than this.
	maxChunks := (len(p) - int(count)*minEntry) / idSize
	ix.recs = make([]record, count)
	ix.chunks = make([]vaultapi.ID, 0, maxChunks)
	for i := range ix.recs {
		r := &ix.recs[i]
		var chunks []byte
		var err error
		r.key, r.fp, r.tree, chunks, p, err = cutEntry(p)
		if err != nil {
			return nil, refuse("entry %d %v", i, err)
		}
		if i > 0 && bytes.Compare(ix.recs[i-1].key[:], r.key[:]) >= 0 {
			return nil, refuse("entry %d: key %x does not follow key %x", i, r.key, ix.recs[i-1].key)
		}
		r.off, r.n = len(ix.chunks), len(chunks)/idSize
		for ; len(chunks) > 0; chunks = chunks[idSize:] {
			ix.chunks = append(ix.chunks, vaultapi.ID(chunks))
		}
	}
	if len(p) != 0 {
		return nil, refuse("%d bytes between the last entry and the MAC", len(p))
	}
	return ix, nil
}

// cutEntry reads the entry at the start of p, as appendEntry writes it;
// chunks is its chunk IDs back to back, rest what follows it.
func cutEntry(p []byte) (k Key, fp FP, tree vaultapi.ID, chunks, rest []byte, err error) {
	if len(p) < minEntry {
		return k, fp, tree, nil, nil, errors.New("truncated")
	}
	k, fp, tree = Key(p), FP(p[len(Key{}):]), vaultapi.ID(p[len(Key{})+len(FP{}):])
	n, m, err := uvarint(p[entryFixed:])
	if err != nil {
		return k, fp, tree, nil, nil, fmt.Errorf("chunk count: %v", err)
	}
	p = p[entryFixed+m:]
	if n > uint64(len(p)/idSize) {
		return k, fp, tree, nil, nil, fmt.Errorf("chunk count: %d chunk IDs claimed, %d bytes hold at most %d", n, len(p), len(p)/idSize)
	}
	size := int(n) * idSize
	return k, fp, tree, p[:size], p[size:], nil
}

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrIndex, fmt.Sprintf(format, args...))
}

// uvarint reads a uvarint from the start of b and returns it with the
// number of bytes it takes; it refuses one that is not minimal.
func uvarint(b []byte) (uint64, int, error) {
	v, k := binary.Uvarint(b)
	switch {
	case k == 0:
		return 0, 0, errors.New("truncated uvarint")
	case k < 0:
		return 0, 0, errors.New("uvarint overflows 64 bits")
	case k > 1 && b[k-1] == 0:
		return 0, 0, errors.New("non-minimal uvarint")
	}
	return v, k, nil
}

// Point returns the recovery point the index was made for (zero for a nil
// Index).
func (ix *Index) Point() vaultapi.ID {
	if ix == nil {
		return vaultapi.ID{}
	}
	return ix.point
}

// Scope returns the scope the index was made for (zero for a nil Index).
func (ix *Index) Scope() vaultapi.ID {
	if ix == nil {
		return vaultapi.ID{}
	}
	return ix.scope
}

// Len returns the number of folders in the index.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return len(ix.recs)
}

// Get returns the entry for the folder k and whether there is one. The
// returned Chunks is nil when the folder references no chunk; otherwise it
// shares the index's memory and must not be modified (appending to it is
// safe: its capacity ends with it).
func (ix *Index) Get(k Key) (Entry, bool) {
	if ix == nil {
		return Entry{}, false
	}
	i, ok := slices.BinarySearchFunc(ix.recs, k, func(r record, k Key) int {
		return bytes.Compare(r.key[:], k[:])
	})
	if !ok {
		return Entry{}, false
	}
	r := &ix.recs[i]
	e := Entry{FP: r.fp, Tree: r.tree}
	if r.n > 0 {
		e.Chunks = ix.chunks[r.off : r.off+r.n : r.off+r.n]
	}
	return e, true
}
