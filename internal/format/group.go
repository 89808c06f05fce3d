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
//	version (1 byte, 3) | nonce (24 bytes) | AES-256-GCM(plain) with 16-byte tag
//
// with the same nonce and subkey rules as a blob, and the additional data
// kind|0x80, the version byte and 31 zero bytes. Once decompressed, the
// plaintext is
//
//	member 1 | … | member n | table | table length (uint32 LE)
//	table = n (uvarint) | length of each member (uvarint) | ID of each member (32 bytes)
//
// The IDs are authenticated with the members, so a reader finds the
// member it wants without hashing any. Groups of version 2, written before
// December 2026, have no IDs in their table (and 32 zero bytes after
// kind|0x80): a reader hashes their members.
const (
	groupVersion   = 3
	groupVersionV2 = 2
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
	// MaxGroupTable is the largest table a writer appends to a group's
	// members (GroupMaxMembers of them, each of a length below
	// GroupMember): what to leave room for after them.
	MaxGroupTable = 3 + GroupMaxMembers*(3+idSize) + 4
	// maxMembers bounds the members of one group, for readers.
	maxMembers = 1 << 16
	idSize     = len(vaultapi.ID{})
)

// ErrGroup is wrapped by every error decoding an authentic group.
var ErrGroup = errors.New("bad group")

// IsGroup reports whether sealed is a group rather than a single blob.
func IsGroup(sealed []byte) bool {
	return len(sealed) > 0 && (sealed[0] == groupVersion || sealed[0] == groupVersionV2)
}

// groupAD returns the additional data of a group of the given kind and
// version: kind|0x80, then for version 3 the version byte, then zero
// bytes. Kinds are below 0x80, so it is never a blob's (kind | ID) nor
// another kind's group's; ok is false for a kind that is not, which could
// otherwise open a group of kind&0x7f. The version byte keeps a group of
// one version from opening as the other.
func groupAD(kind vaultapi.Kind, version byte) (ad [33]byte, ok bool) {
	ad[0] = byte(kind) | 0x80
	if version != groupVersionV2 {
		ad[1] = version
	}
	return ad, kind < 0x80
}

// AppendGroupTable appends the table of a group whose members have the
// given lengths and IDs to members (the members back to back), making the
// group's plaintext. lengths and ids are in the members' order.
func AppendGroupTable(members []byte, lengths []int, ids []vaultapi.ID) []byte {
	start := len(members)
	members = binary.AppendUvarint(members, uint64(len(lengths)))
	for _, n := range lengths {
		members = binary.AppendUvarint(members, uint64(n))
	}
	for i := range ids {
		members = append(members, ids[i][:]...)
	}
	return binary.LittleEndian.AppendUint32(members, uint32(len(members)-start))
}

// SplitGroup decodes a group's plaintext (version 3) into its members and
// their IDs, appended to members[:0] and ids[:0]; the members are slices
// of plain. It accepts only what AppendGroupTable writes: uvarints are
// minimal, so each group has one encoding. It does not check that the IDs
// differ: a reader looking members up by ID must (repo.ChunkOpener does).
func SplitGroup(members [][]byte, ids []vaultapi.ID, plain []byte) ([][]byte, []vaultapi.ID, error) {
	members, n, table, err := splitMembers(members, plain, true)
	ids = ids[:0]
	if err == nil {
		err = checkIDs(n, table)
	}
	if err != nil {
		return members, ids, err
	}
	for len(table) > 0 {
		ids = append(ids, vaultapi.ID(table[:idSize]))
		table = table[idSize:]
	}
	return members, ids, nil
}

// checkGroup checks a group's plaintext (version 3) as SplitGroup does,
// without collecting anything.
func checkGroup(plain []byte) error {
	_, n, table, err := splitMembers(nil, plain, false)
	if err != nil {
		return err
	}
	return checkIDs(n, table)
}

// checkIDs checks that what follows n members' lengths in a table is
// their IDs.
func checkIDs(n int, table []byte) error {
	if len(table) != idSize*n {
		return fmt.Errorf("%w: %d bytes of IDs for %d members", ErrGroup, len(table), n)
	}
	return nil
}

// splitGroupV2 decodes the plaintext of a group of version 2, whose
// table holds no IDs.
func splitGroupV2(members [][]byte, plain []byte) ([][]byte, error) {
	members, _, rest, err := splitMembers(members, plain, true)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%w: %d table bytes left", ErrGroup, len(rest))
	}
	return members, err
}

// splitMembers decodes the members of a group's plaintext, appending them
// to dst[:0] if collect is set, and returns how many there are and what
// follows their lengths in the table.
func splitMembers(dst [][]byte, plain []byte, collect bool) ([][]byte, int, []byte, error) {
	dst = dst[:0]
	if len(plain) < 4 {
		return dst, 0, nil, fmt.Errorf("%w: %d bytes", ErrGroup, len(plain))
	}
	tl := uint64(binary.LittleEndian.Uint32(plain[len(plain)-4:]))
	if tl > uint64(len(plain)-4) {
		return dst, 0, nil, fmt.Errorf("%w: table of %d bytes in %d", ErrGroup, tl, len(plain))
	}
	body := len(plain) - 4 - int(tl)
	table := plain[body : len(plain)-4]
	n, k := uvarint(table)
	if k <= 0 || n < 2 || n > maxMembers {
		return dst, 0, nil, fmt.Errorf("%w: member count", ErrGroup)
	}
	table = table[k:]
	off := 0
	for i := range n {
		m, k := uvarint(table)
		if k <= 0 || m == 0 || m > uint64(body-off) {
			return dst, 0, nil, fmt.Errorf("%w: member %d's length", ErrGroup, i)
		}
		table = table[k:]
		if collect {
			dst = append(dst, plain[off:off+int(m):off+int(m)])
		}
		off += int(m)
	}
	if off != body {
		return dst, 0, nil, fmt.Errorf("%w: members end at %d of %d", ErrGroup, off, body)
	}
	return dst, int(n), table, nil
}

// Groups reports whether the Sealer gathers small chunks into groups: it
// does when it compresses.
func (s *Sealer) Groups() bool { return s.genc != nil }

// GroupFrame is Frame for a group's plaintext (made by AppendGroupTable):
// it compresses at the level the Sealer uses for groups. It refuses a
// plaintext that SplitGroup would refuse (one member, more than 65536, an
// empty one, IDs missing): sealed, it would be a group no reader opens.
func (s *Sealer) GroupFrame(buf, plain []byte) ([]byte, error) {
	if err := checkGroup(plain); err != nil {
		return buf, fmt.Errorf("seal group: %w", err)
	}
	return frame(s.genc, buf, plain)
}

// SealGroup encrypts a frame made by GroupFrame as a group of the given
// kind, appending it (SealedSize(len(frame)) bytes) to dst.
func (s *Sealer) SealGroup(dst []byte, kind vaultapi.Kind, frame []byte) ([]byte, error) {
	ad, ok := groupAD(kind, groupVersion)
	if !ok {
		return dst, fmt.Errorf("seal group: kind %d", kind)
	}
	return s.seal(dst, groupVersion, ad, frame)
}

// OpenGroup authenticates, decrypts and decodes a sealed group of the
// given kind. It returns the plaintext (appended to dst[:0]), its members
// (slices of it, appended to members[:0]) and their IDs (appended to
// ids[:0]), which the group authenticates with the members. For a group of
// version 2, which holds no IDs, ids is nil and the caller hashes the
// members. sealed is overwritten.
func (o *Opener) OpenGroup(dst []byte, members [][]byte, ids []vaultapi.ID, kind vaultapi.Kind, sealed []byte) ([]byte, [][]byte, []vaultapi.ID, error) {
	version := byte(groupVersion)
	if len(sealed) > 0 && sealed[0] == groupVersionV2 {
		version = groupVersionV2
	}
	ad, ok := groupAD(kind, version)
	if !ok {
		return dst, members[:0], ids[:0], fmt.Errorf("open group: %w (kind %d)", ErrAuth, kind)
	}
	plain, err := o.open(dst, version, ad, sealed)
	if err != nil {
		return dst, members[:0], ids[:0], fmt.Errorf("open group: %w", err)
	}
	if version == groupVersionV2 {
		members, err = splitGroupV2(members, plain)
		ids = nil
	} else {
		members, ids, err = SplitGroup(members, ids, plain)
	}
	if err != nil {
		return plain, members, ids, fmt.Errorf("open group: %w", err)
	}
	return plain, members, ids, nil
}
