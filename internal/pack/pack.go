// Package pack encodes and decodes packs: the objects of about 16 MiB in
// which the vault stores sealed blobs. A pack is a header, the blobs back
// to back, and a plaintext trailer listing each blob's kind, ID, offset and
// length, so the vault can index a pack without keys. A pack is named by
// the hex BLAKE3-256 of all its bytes. See doc/FORMAT.md.
package pack

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/zeebo/blake3"
)

const (
	headerMagic  = "CFPK"
	trailerMagic = "CFPT"
	// Version is the pack format version written in the header.
	Version = 1
	// HeaderSize is the size of the pack header.
	HeaderSize = 8
	// EntrySize is the size of one trailer entry.
	EntrySize = 1 + 32 + 8 + 4
	// TailSize is the fixed end of the trailer: entry count and magic.
	TailSize = 8
	// TargetSize is the size at which writers close a pack.
	TargetSize = 16 << 20
	// MaxBlob is the largest blob a pack may hold.
	MaxBlob = 1 << 30
)

// ErrFormat is wrapped by every decoding error.
var ErrFormat = errors.New("pack: bad format")

// Name returns the name of a pack with the given bytes.
func Name(data []byte) string {
	sum := blake3.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// ValidName reports whether s looks like a pack name (64 lower-case hex).
func ValidName(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Writer assembles one pack in memory. A pack holds either data blobs only
// or metadata (tree and info) blobs only; Parse refuses a mix.
type Writer struct {
	buf     []byte
	entries []vaultapi.PackEntry
}

// NewWriter returns an empty pack writer; buf, if given, is reused.
func NewWriter(buf []byte) *Writer {
	w := &Writer{buf: buf[:0]}
	w.buf = append(w.buf, headerMagic...)
	w.buf = append(w.buf, Version, 0, 0, 0)
	return w
}

// Add appends a sealed blob.
func (w *Writer) Add(kind vaultapi.Kind, id vaultapi.ID, sealed []byte) {
	w.entries = append(w.entries, vaultapi.PackEntry{
		ID: id, Kind: kind, Offset: uint64(len(w.buf)), Length: uint32(len(sealed)),
	})
	w.buf = append(w.buf, sealed...)
}

// AddFunc appends a blob that write appends to the pack's bytes, so a
// blob can be sealed straight into the pack without a copy. write must
// only append to dst and return the extended slice; on error the pack is
// left as it was.
func (w *Writer) AddFunc(kind vaultapi.Kind, id vaultapi.ID, write func(dst []byte) ([]byte, error)) error {
	return w.AddGroupFunc(kind, []vaultapi.ID{id}, write)
}

// AddGroupFunc is AddFunc for a group (see doc/FORMAT.md, "Groups"): one
// sealed region holding the chunks ids, each listed in the trailer at the
// region's offset and length. ids must be sorted and distinct
// (by vaultapi.ID.Compare), as readers check.
func (w *Writer) AddGroupFunc(kind vaultapi.Kind, ids []vaultapi.ID, write func(dst []byte) ([]byte, error)) error {
	if len(ids) == 0 {
		return fmt.Errorf("pack: a blob with no ID")
	}
	for i := 1; i < len(ids); i++ {
		if ids[i].Compare(ids[i-1]) <= 0 {
			return fmt.Errorf("pack: a group's IDs are not sorted and distinct")
		}
	}
	off := len(w.buf)
	buf, err := write(w.buf)
	if err != nil {
		return err
	}
	if len(buf) <= off || len(buf)-off > MaxBlob {
		return fmt.Errorf("pack: blob of %d bytes", len(buf)-off)
	}
	w.buf = buf
	for _, id := range ids {
		w.entries = append(w.entries, vaultapi.PackEntry{
			ID: id, Kind: kind, Offset: uint64(off), Length: uint32(len(buf) - off),
		})
	}
	return nil
}

// Grow makes room for n more bytes. The buffer doubles up to 1 MiB and
// then grows by a quarter, so a pack that grows blob by blob is copied a
// few times only, and its spare capacity stays small: a metadata pack of
// 5 MB held 8 MiB when it doubled.
func (w *Writer) Grow(n int) {
	if cap(w.buf)-len(w.buf) >= n {
		return
	}
	step := cap(w.buf)
	if step > 1<<20 {
		step /= 4
	}
	b := make([]byte, len(w.buf), max(cap(w.buf)+step, len(w.buf)+n))
	copy(b, w.buf)
	w.buf = b
}

// Fits reports whether one more blob of n bytes, listed under ids IDs (1
// but for a group), keeps the finished pack, trailer included, within
// limit bytes. An empty pack takes any blob.
func (w *Writer) Fits(n, ids, limit int) bool {
	return len(w.entries) == 0 || len(w.buf)+n+TrailerSize(len(w.entries)+ids) <= limit
}

// Bytes returns the pack's bytes so far, without the trailer; they stay
// valid until the next Add.
func (w *Writer) Bytes() []byte { return w.buf }

// Size is the pack's size so far, without the trailer.
func (w *Writer) Size() int { return len(w.buf) }

// Count is the number of trailer entries: blobs added, a group counting
// once for each of its chunks.
func (w *Writer) Count() int { return len(w.entries) }

// Finish appends the trailer and returns the finished pack. The writer must
// not be used afterwards.
func (w *Writer) Finish() vaultapi.Pack {
	w.buf = AppendTrailer(w.buf, w.entries)
	return vaultapi.Pack{Name: Name(w.buf), Data: w.buf, Entries: w.entries}
}

// AppendTrailer appends the trailer for entries to b.
func AppendTrailer(b []byte, entries []vaultapi.PackEntry) []byte {
	for _, e := range entries {
		b = append(b, byte(e.Kind))
		b = append(b, e.ID[:]...)
		b = binary.LittleEndian.AppendUint64(b, e.Offset)
		b = binary.LittleEndian.AppendUint32(b, e.Length)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(entries)))
	return append(b, trailerMagic...)
}

// TrailerSize returns the size of the trailer holding n entries.
func TrailerSize(n int) int { return n*EntrySize + TailSize }

// CheckHeader checks the first HeaderSize bytes of a pack.
func CheckHeader(h []byte) error {
	if len(h) < HeaderSize || string(h[:4]) != headerMagic {
		return fmt.Errorf("%w: no pack header", ErrFormat)
	}
	if h[4] != Version {
		return fmt.Errorf("%w: pack version %d, this Coffer reads version %d", ErrFormat, h[4], Version)
	}
	if h[5] != 0 || h[6] != 0 || h[7] != 0 {
		return fmt.Errorf("%w: reserved header bytes are not zero", ErrFormat)
	}
	return nil
}

// ParseTail reads the entry count from the last TailSize bytes of a pack
// of packSize bytes, and checks it fits.
func ParseTail(tail []byte, packSize int64) (int, error) {
	if len(tail) != TailSize || string(tail[4:]) != trailerMagic {
		return 0, fmt.Errorf("%w: no trailer", ErrFormat)
	}
	n := int64(binary.LittleEndian.Uint32(tail))
	if n == 0 || HeaderSize+n*EntrySize+TailSize > packSize {
		return 0, fmt.Errorf("%w: trailer claims %d entries in %d bytes", ErrFormat, n, packSize)
	}
	return int(n), nil
}

// ParseTrailer decodes the trailer (entries, count and magic: the last
// TrailerSize(n) bytes) of a pack of packSize bytes and checks that the
// blobs tile the pack exactly: in order, back to back, from the header to
// the trailer; and that data blobs and metadata blobs are not mixed. The
// chunks of a group are consecutive entries of one kind with the same
// offset and length, their IDs in increasing byte order.
func ParseTrailer(trailer []byte, packSize int64) ([]vaultapi.PackEntry, error) {
	if len(trailer) < TailSize {
		return nil, fmt.Errorf("%w: trailer too short", ErrFormat)
	}
	n, err := ParseTail(trailer[len(trailer)-TailSize:], packSize)
	if err != nil {
		return nil, err
	}
	if len(trailer) != TrailerSize(n) {
		return nil, fmt.Errorf("%w: trailer is %d bytes, want %d for %d entries", ErrFormat, len(trailer), TrailerSize(n), n)
	}
	entries := make([]vaultapi.PackEntry, n)
	next := uint64(HeaderSize)
	for i := range entries {
		p := trailer[i*EntrySize:]
		e := &entries[i]
		e.Kind = vaultapi.Kind(p[0])
		copy(e.ID[:], p[1:33])
		e.Offset = binary.LittleEndian.Uint64(p[33:41])
		e.Length = binary.LittleEndian.Uint32(p[41:45])
		if !e.Kind.Valid() {
			return nil, fmt.Errorf("%w: entry %d has unknown kind %d", ErrFormat, i, p[0])
		}
		if (e.Kind == vaultapi.KindData) != (entries[0].Kind == vaultapi.KindData) {
			return nil, fmt.Errorf("%w: entry %d: %s blob in a pack of %s blobs", ErrFormat, i, e.Kind, entries[0].Kind)
		}
		if i > 0 && e.Offset == entries[i-1].Offset && e.Length == entries[i-1].Length {
			// Another chunk of the group before it.
			if e.Kind != entries[i-1].Kind {
				return nil, fmt.Errorf("%w: entry %d: a %s in a group of %s blobs", ErrFormat, i, e.Kind, entries[i-1].Kind)
			}
			if e.ID.Compare(entries[i-1].ID) <= 0 {
				return nil, fmt.Errorf("%w: entry %d: a group's IDs are not in increasing order", ErrFormat, i)
			}
			continue
		}
		if e.Offset != next || e.Length == 0 || e.Length > MaxBlob {
			return nil, fmt.Errorf("%w: entry %d at %d+%d does not follow the previous blob", ErrFormat, i, e.Offset, e.Length)
		}
		next += uint64(e.Length)
	}
	if next != uint64(packSize)-uint64(len(trailer)) {
		return nil, fmt.Errorf("%w: blobs end at %d, trailer starts at %d", ErrFormat, next, uint64(packSize)-uint64(len(trailer)))
	}
	return entries, nil
}

// Parse checks a whole pack held in memory and returns its entries.
func Parse(data []byte) ([]vaultapi.PackEntry, error) {
	if err := CheckHeader(data); err != nil {
		return nil, err
	}
	if len(data) < HeaderSize+TailSize {
		return nil, fmt.Errorf("%w: pack too short", ErrFormat)
	}
	n, err := ParseTail(data[len(data)-TailSize:], int64(len(data)))
	if err != nil {
		return nil, err
	}
	return ParseTrailer(data[len(data)-TrailerSize(n):], int64(len(data)))
}
