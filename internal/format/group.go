package format

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// A group is one sealed blob holding several small chunks, compressed
// together: small files share much (licence headers, includes, common
// words) that compressing each alone cannot use. See doc/FORMAT.md,
// "Groups".
//
//	version (1 byte, 2) | nonce (24 bytes) | AES-256-GCM(plain) with 16-byte tag
//
// with the same nonce and subkey rules as a blob, and the additional data
// kind|0x80 followed by 32 zero bytes. Once decompressed, the plaintext is
//
//	member 1 | … | member n | table | table length (uint32 LE)
//	table = n (uvarint) | length of each member (uvarint)
//
// A member is named by its plaintext's keyed hash, like any chunk: the
// pack trailer lists the members' IDs, each at the group's offset and
// length, and a reader hashes the members to find the one it wants.
const (
	groupVersion = 2
	// GroupTarget is the plaintext size at which a writer seals a group.
	// Larger groups compress a little better (Linux sources: 229 MB in
	// groups of 128 KiB, 220 MB at 512 KiB, 215 MB at 2 MiB) but make a
	// reader of one small file decompress more.
	GroupTarget = 512 << 10
	// GroupMember is the size below which a chunk may join a group: the
	// chunker's minimum, so only whole small files and the last chunks
	// of larger ones are grouped.
	GroupMember = 256 << 10
	// GroupMaxMembers is the most members a writer puts in one group, so
	// that a folder of tiny files does not make one group of tens of
	// thousands, each listed in the pack's trailer.
	GroupMaxMembers = 1024
	// maxMembers bounds the members of one group, for readers.
	maxMembers = 1 << 16
)

// ErrGroup is wrapped by every error decoding an authentic group.
var ErrGroup = errors.New("bad group")

// IsGroup reports whether sealed is a group rather than a single blob.
func IsGroup(sealed []byte) bool { return len(sealed) > 0 && sealed[0] == groupVersion }

// groupAD returns the additional data of a group of the given kind:
// kind|0x80 and 32 zero bytes. Kinds are below 0x80, so it is never a
// blob's (kind | ID) nor another kind's group's; ok is false for a kind
// that is not, which could otherwise open a group of kind&0x7f.
func groupAD(kind vaultapi.Kind) (ad [33]byte, ok bool) {
	ad[0] = byte(kind) | 0x80
	return ad, kind < 0x80
}

// AppendGroupTable appends the table of a group whose members have the
// given lengths to members (the members back to back), making the
// group's plaintext.
func AppendGroupTable(members []byte, lengths []int) []byte {
	start := len(members)
	members = binary.AppendUvarint(members, uint64(len(lengths)))
	for _, n := range lengths {
		members = binary.AppendUvarint(members, uint64(n))
	}
	return binary.LittleEndian.AppendUint32(members, uint32(len(members)-start))
}

// SplitGroup decodes a group's plaintext into its members, appended to
// dst[:0]; they are slices of plain. It accepts only what
// AppendGroupTable writes: uvarints are minimal, so each group has one
// encoding.
func SplitGroup(dst [][]byte, plain []byte) ([][]byte, error) {
	dst = dst[:0]
	if len(plain) < 4 {
		return dst, fmt.Errorf("%w: %d bytes", ErrGroup, len(plain))
	}
	tl := uint64(binary.LittleEndian.Uint32(plain[len(plain)-4:]))
	if tl > uint64(len(plain)-4) {
		return dst, fmt.Errorf("%w: table of %d bytes in %d", ErrGroup, tl, len(plain))
	}
	body := len(plain) - 4 - int(tl)
	table := plain[body : len(plain)-4]
	n, k := uvarint(table)
	if k <= 0 || n < 2 || n > maxMembers {
		return dst, fmt.Errorf("%w: member count", ErrGroup)
	}
	table = table[k:]
	off := 0
	for i := range n {
		m, k := uvarint(table)
		if k <= 0 || m == 0 || m > uint64(body-off) {
			return dst, fmt.Errorf("%w: member %d's length", ErrGroup, i)
		}
		table = table[k:]
		dst = append(dst, plain[off:off+int(m):off+int(m)])
		off += int(m)
	}
	if off != body || len(table) != 0 {
		return dst, fmt.Errorf("%w: members end at %d of %d, %d table bytes left", ErrGroup, off, body, len(table))
	}
	return dst, nil
}

// Groups reports whether the Sealer gathers small chunks into groups: it
// does when it compresses.
func (s *Sealer) Groups() bool { return s.genc != nil }

// GroupFrame is Frame for a group's plaintext (made by AppendGroupTable):
// it compresses at the level the Sealer uses for groups. It refuses a
// plaintext that SplitGroup would refuse (one member, more than 65536, an
// empty one): sealed, it would be a group no reader opens.
func (s *Sealer) GroupFrame(buf, plain []byte) ([]byte, error) {
	if _, err := SplitGroup(nil, plain); err != nil {
		return buf, fmt.Errorf("seal group: %w", err)
	}
	return frame(s.genc, buf, plain)
}

// SealGroup encrypts a frame made by GroupFrame as a group of the given
// kind, appending it (SealedSize(len(frame)) bytes) to dst.
func (s *Sealer) SealGroup(dst []byte, kind vaultapi.Kind, frame []byte) ([]byte, error) {
	ad, ok := groupAD(kind)
	if !ok {
		return dst, fmt.Errorf("seal group: kind %d", kind)
	}
	return s.seal(dst, groupVersion, ad, frame)
}

// OpenGroup authenticates, decrypts and decodes a sealed group of the
// given kind. It returns the plaintext (appended to dst[:0]) and its
// members, slices of it appended to members[:0]. sealed is overwritten.
// The members are not checked against any ID: the caller hashes them.
func (o *Opener) OpenGroup(dst []byte, members [][]byte, kind vaultapi.Kind, sealed []byte) ([]byte, [][]byte, error) {
	ad, ok := groupAD(kind)
	if !ok {
		return dst, members[:0], fmt.Errorf("open group: %w (kind %d)", ErrAuth, kind)
	}
	plain, err := o.open(dst, groupVersion, ad, sealed)
	if err != nil {
		return dst, members[:0], fmt.Errorf("open group: %w", err)
	}
	members, err = SplitGroup(members, plain)
	if err != nil {
		return plain, members, fmt.Errorf("open group: %w", err)
	}
	return plain, members, nil
}
