package repo

import (
	"fmt"
	"slices"
	"sort"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// A ChunkOpener authenticates and decrypts data chunks for one goroutine,
// reusing its buffers. A chunk is stored as a blob of its own or as a
// member of a group (doc/FORMAT.md, "Groups"); the opener keeps the group
// it opened last, so the group's other chunks, which sit at the same
// place in the same pack and so come next in offset order, are served
// without opening it again.
//
// A chunk's ID is authenticated with its content: a blob's is in its
// additional data, a group lists its members' IDs inside what it seals.
// So the opener hashes a chunk only when the stored bytes do not name it
// (a group of version 2, written before groups listed IDs), or when Check
// is set.
type ChunkOpener struct {
	// Check makes the opener hash every chunk and compare it with its
	// ID, as coffer verify does: this also catches a writer that sealed
	// other bytes than it hashed.
	Check bool

	r   *Repo
	buf []byte // a single blob's plaintext

	// The group opened last, when ok: its place, plaintext, members and
	// their IDs, sorted.
	ok      bool
	fresh   bool // opened by the last Open, and not yet told by Opened
	pack    string
	off     uint64
	plain   []byte
	members [][]byte
	ids     []vaultapi.ID
	// mismatch lists the IDs a group named for members that, checked,
	// hashed to another.
	mismatch []vaultapi.ID
}

// NewChunkOpener returns a ChunkOpener.
func (r *Repo) NewChunkOpener() *ChunkOpener { return &ChunkOpener{r: r} }

// Open returns the plaintext of the data chunk at l, whose sealed bytes
// (the blob or group at l's offset and length) are sealed. The result is
// valid until the next Open, and sealed is overwritten; when l is in the
// group opened last, sealed is not read at all and may be anything. A
// chunk that does not authenticate, is not in the group at l, or (when
// hashed) does not hash to its ID, is reported as vaultapi.ErrDamaged.
func (o *ChunkOpener) Open(l vaultapi.Location, sealed []byte) ([]byte, error) {
	o.fresh = false
	if o.ok && o.pack == l.Pack && o.off == l.Offset {
		return o.member(l.ID)
	}
	o.ok = false
	if !format.IsGroup(sealed) {
		plain, err := o.r.openData(l.ID, sealed, o.buf, o.Check)
		if err == nil {
			o.buf = plain
		}
		return plain, err
	}
	var ids []vaultapi.ID
	var err error
	o.plain, o.members, ids, err = o.r.Opener.OpenGroup(o.plain, o.members, o.ids, vaultapi.KindData, sealed)
	if err != nil {
		return nil, fmt.Errorf("chunk %s: %w: %v", l.ID.Short(), vaultapi.ErrDamaged, err)
	}
	o.mismatch = o.mismatch[:0]
	switch {
	case ids == nil: // version 2: the members are named by their hashes
		ids = o.ids[:0]
		for _, m := range o.members {
			ids = append(ids, o.r.Hasher.ID(m))
		}
	case o.Check:
		// A member that does not hash to its listed ID is listed under
		// its hash instead: only the chunk it was listed as fails.
		for i, m := range o.members {
			if h := o.r.Hasher.ID(m); h != ids[i] {
				o.mismatch = append(o.mismatch, ids[i])
				ids[i] = h
			}
		}
	}
	o.ids = ids
	sort.Sort(byID{o.ids, o.members}) // for the lookups, by binary search
	for i := 1; i < len(o.ids); i++ {
		if o.ids[i] == o.ids[i-1] {
			return nil, fmt.Errorf("chunk %s: %w: a group names it twice", o.ids[i].Short(), vaultapi.ErrDamaged)
		}
	}
	o.ok, o.fresh, o.pack, o.off = true, true, l.Pack, l.Offset
	return o.member(l.ID)
}

// Opened returns the chunks of the group the last Open opened, with
// their IDs in ascending order (valid until the next Open), so a caller
// can use the ones it needs besides the one it asked for; nil if the
// last Open opened a single blob, served a group opened before, or
// failed.
func (o *ChunkOpener) Opened() ([]vaultapi.ID, [][]byte) {
	if !o.fresh {
		return nil, nil
	}
	return o.ids, o.members
}

func (o *ChunkOpener) member(id vaultapi.ID) ([]byte, error) {
	i, ok := slices.BinarySearchFunc(o.ids, id, vaultapi.ID.Compare)
	if !ok {
		if slices.Contains(o.mismatch, id) {
			return nil, fmt.Errorf("chunk %s: %w: content does not match its ID", id.Short(), vaultapi.ErrDamaged)
		}
		return nil, fmt.Errorf("chunk %s: %w: not in the group stored where the index places it", id.Short(), vaultapi.ErrDamaged)
	}
	return o.members[i], nil
}

// byID sorts a group's members by their IDs.
type byID struct {
	ids     []vaultapi.ID
	members [][]byte
}

func (b byID) Len() int           { return len(b.ids) }
func (b byID) Less(i, j int) bool { return b.ids[i].Compare(b.ids[j]) < 0 }
func (b byID) Swap(i, j int) {
	b.ids[i], b.ids[j] = b.ids[j], b.ids[i]
	b.members[i], b.members[j] = b.members[j], b.members[i]
}
