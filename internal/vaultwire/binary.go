package vaultwire

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// MaxBatch is the most IDs one HasBlobs or Locate request may carry.
const MaxBatch = 1 << 16

// AppendIDs appends the IDs, 32 bytes each.
func AppendIDs(b []byte, ids []vaultapi.ID) []byte {
	for i := range ids {
		b = append(b, ids[i][:]...)
	}
	return b
}

// DecodeIDs decodes a batch of IDs, 32 bytes each, at most max of them.
func DecodeIDs(b []byte, max int) ([]vaultapi.ID, error) {
	if len(b)%32 != 0 {
		return nil, fmt.Errorf("%w: ID batch of %d bytes is not a multiple of 32", vaultapi.ErrBadRequest, len(b))
	}
	n := len(b) / 32
	if n > max {
		return nil, fmt.Errorf("%w: %d IDs in one batch, at most %d", ErrTooLarge, n, max)
	}
	ids := make([]vaultapi.ID, n)
	for i := range ids {
		copy(ids[i][:], b[i*32:])
	}
	return ids, nil
}

// EncodeBits packs booleans into a bit set, least significant bit first.
func EncodeBits(v []bool) []byte {
	b := make([]byte, (len(v)+7)/8)
	for i, x := range v {
		if x {
			b[i/8] |= 1 << (i % 8)
		}
	}
	return b
}

// DecodeBits unpacks n booleans.
func DecodeBits(b []byte, n int) ([]bool, error) {
	if len(b) != (n+7)/8 {
		return nil, fmt.Errorf("%w: bit set of %d bytes for %d IDs", vaultapi.ErrBadRequest, len(b), n)
	}
	v := make([]bool, n)
	for i := range v {
		v[i] = b[i/8]&(1<<(i%8)) != 0
	}
	return v, nil
}

// LocationSize is the encoded size of one location: pack name (32 raw
// bytes, all zero when the blob is not held), kind, offset, length.
const LocationSize = 32 + 1 + 8 + 4

// AppendLocations encodes locations; the IDs are those of the request, in
// order, and are not repeated.
func AppendLocations(b []byte, locs []vaultapi.Location) ([]byte, error) {
	for _, l := range locs {
		var name [32]byte
		if l.Pack != "" {
			if len(l.Pack) != 64 {
				return nil, fmt.Errorf("location of %s: pack name %q", l.ID.Short(), l.Pack)
			}
			if _, err := hex.Decode(name[:], []byte(l.Pack)); err != nil {
				return nil, fmt.Errorf("location of %s: pack name %q", l.ID.Short(), l.Pack)
			}
		}
		b = append(b, name[:]...)
		b = append(b, byte(l.Kind))
		b = binary.BigEndian.AppendUint64(b, l.Offset)
		b = binary.BigEndian.AppendUint32(b, l.Length)
	}
	return b, nil
}

// DecodeLocations decodes the locations of ids.
func DecodeLocations(b []byte, ids []vaultapi.ID) ([]vaultapi.Location, error) {
	if len(b) != len(ids)*LocationSize {
		return nil, fmt.Errorf("%w: %d bytes of locations for %d IDs", vaultapi.ErrBadRequest, len(b), len(ids))
	}
	out := make([]vaultapi.Location, len(ids))
	for i := range out {
		p := b[i*LocationSize:]
		l := &out[i]
		l.ID = ids[i]
		if name := p[:32]; [32]byte(name) != [32]byte{} {
			l.Pack = hex.EncodeToString(name)
		}
		l.Kind = vaultapi.Kind(p[32])
		l.Offset = binary.BigEndian.Uint64(p[33:])
		l.Length = binary.BigEndian.Uint32(p[41:])
	}
	return out, nil
}

// CommitHead is the JSON part of a commit request.
type CommitHead struct {
	Info     vaultapi.ID    `json:"info"`
	Stats    vaultapi.Stats `json:"stats"`
	OnDemand bool           `json:"on_demand,omitempty"`
}

// MaxCommitHead bounds the JSON part of a commit request.
const MaxCommitHead = 64 << 10

// EncodeCommit encodes a commit: a 4-byte big-endian length, that many
// bytes of JSON (CommitHead), then the referenced IDs, 32 bytes each.
func EncodeCommit(c vaultapi.Commit) []byte {
	head, _ := json.Marshal(CommitHead{Info: c.Info, Stats: c.Stats, OnDemand: c.OnDemand})
	b := make([]byte, 4, 4+len(head)+32*len(c.Refs))
	binary.BigEndian.PutUint32(b, uint32(len(head)))
	b = append(b, head...)
	return AppendIDs(b, c.Refs)
}

// DecodeCommit decodes a commit request body.
func DecodeCommit(b []byte) (vaultapi.Commit, error) {
	var c vaultapi.Commit
	if len(b) < 4 {
		return c, fmt.Errorf("%w: commit body too short", vaultapi.ErrBadRequest)
	}
	n := binary.BigEndian.Uint32(b)
	if n > MaxCommitHead || uint64(n) > uint64(len(b)-4) {
		return c, fmt.Errorf("%w: commit head of %d bytes in a body of %d", vaultapi.ErrBadRequest, n, len(b))
	}
	var h CommitHead
	if err := json.Unmarshal(b[4:4+n], &h); err != nil {
		return c, fmt.Errorf("%w: commit head: %v", vaultapi.ErrBadRequest, err)
	}
	refs, err := DecodeIDs(b[4+n:], len(b))
	if err != nil {
		return c, err
	}
	return vaultapi.Commit{Info: h.Info, Stats: h.Stats, Refs: refs, OnDemand: h.OnDemand}, nil
}
