package meta

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	bolt "go.etcd.io/bbolt"
)

// The blob index of a machine (bucket "blobs") maps a blob ID to where the
// blob is stored. It has one entry per blob the machine ever stored, so its
// value is kept short: the pack is named by a small per-machine number, not
// by its 32-byte name, and the numbers are uvarints:
//
//	uvarint(pack number << 2 | kind) | uvarint(offset) | uvarint(length)
//
// 3 to 25 bytes, about 7 for a blob in a 16 MiB pack, against the 45
// bytes of the first layout, which vaults made before pack numbers still
// hold and which is still read:
//
//	legacy: pack name (32 raw bytes) | kind | offset u64 LE | length u32 LE
//
// Bucket "packnums" maps a pack number (8 bytes, big-endian) to the pack's
// 32-byte name; the pack's record in bucket "packs" holds its number. Pack
// numbers start at 1 and come from the bucket's sequence, so they are never
// reused. Vaults made before pack numbers have no "packnums" bucket until
// their next AddPack.
const legacyLocSize = 32 + 1 + 8 + 4

var bPackNums = []byte("packnums")

var errIndex = errors.New("meta: damaged blob index entry")

// packRec is a pack's record as stored in bucket "packs".
type packRec struct {
	PackRecord
	Num uint64 `json:"num,omitempty"` // 0 for a pack indexed before pack numbers
}

// packNumKey is the key of pack number n in bucket "packnums".
func packNumKey(n uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, n)
}

// appendLoc appends the index value of a blob stored in pack number num.
func appendLoc(b []byte, num uint64, kind vaultapi.Kind, off uint64, length uint32) []byte {
	b = binary.AppendUvarint(b, num<<2|uint64(kind&3))
	b = binary.AppendUvarint(b, off)
	return binary.AppendUvarint(b, uint64(length))
}

// maxLoc is the longest value appendLoc makes; it is shorter than a legacy
// value, which the length of a value therefore tells apart.
const maxLoc = 3*binary.MaxVarintLen64 - 5

// decodeLoc decodes an index value. It returns the pack number, or for a
// legacy value the pack's raw name, and the rest of the location.
func decodeLoc(v []byte) (num uint64, name []byte, kind vaultapi.Kind, off uint64, length uint32, err error) {
	if len(v) == legacyLocSize {
		return 0, v[:32], vaultapi.Kind(v[32]), binary.LittleEndian.Uint64(v[33:]), binary.LittleEndian.Uint32(v[41:]), nil
	}
	x, v, ok := uvarints3(v)
	if !ok || len(v) != 0 || x[0]>>2 == 0 || x[0]&3 == 0 || x[2] > 1<<32-1 {
		return 0, nil, 0, 0, 0, errIndex
	}
	return x[0] >> 2, nil, vaultapi.Kind(x[0] & 3), x[1], uint32(x[2]), nil
}

// uvarints3 reads three uvarints from the front of v and returns them with
// the rest of v; ok is false if v does not hold three.
func uvarints3(v []byte) (x [3]uint64, rest []byte, ok bool) {
	for i := range x {
		n, k := binary.Uvarint(v)
		if k <= 0 {
			return x, v, false
		}
		x[i], v = n, v[k:]
	}
	return x, v, true
}

// packNames resolves pack numbers to names (hex) within one transaction,
// remembering those it has seen.
type packNames struct {
	b     *bolt.Bucket // "packnums", nil in a vault without pack numbers
	names map[uint64]string
}

func newPackNames(mb *bolt.Bucket) *packNames {
	return &packNames{b: mb.Bucket(bPackNums), names: map[uint64]string{}}
}

func (p *packNames) name(num uint64) (string, error) {
	if s, ok := p.names[num]; ok {
		return s, nil
	}
	var v []byte
	if p.b != nil {
		v = p.b.Get(packNumKey(num))
	}
	if len(v) != 32 {
		return "", fmt.Errorf("pack number %d: %w", num, errIndex)
	}
	s := hex.EncodeToString(v)
	p.names[num] = s
	return s, nil
}

// packNumber returns the number of the pack whose raw name is pk, giving it
// the next number (and recording it) if it has none yet.
func packNumber(mb *bolt.Bucket, pk []byte) (uint64, error) {
	var rec packRec
	if v := mb.Bucket(bPacks).Get(pk); v != nil {
		if err := json.Unmarshal(v, &rec); err != nil {
			return 0, err
		}
		if rec.Num != 0 {
			return rec.Num, nil
		}
	}
	nums, err := mb.CreateBucketIfNotExists(bPackNums)
	if err != nil {
		return 0, err
	}
	nums.FillPercent = 1 // keys only ever grow
	n, err := nums.NextSequence()
	if err != nil {
		return 0, err
	}
	return n, nums.Put(packNumKey(n), pk)
}
