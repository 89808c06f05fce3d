package meta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func TestLocRoundTrip(t *testing.T) {
	tests := []struct {
		num    uint64
		kind   vaultapi.Kind
		off    uint64
		length uint32
		size   int
	}{
		{1, vaultapi.KindData, 8, 1, 3},
		{31, vaultapi.KindTree, 8, 127, 3},
		{32, vaultapi.KindInfo, 16 << 20, 4<<20 + 42, 2 + 4 + 4},
		{1<<62 - 1, vaultapi.KindData, 1<<64 - 1, 1<<32 - 1, 10 + 10 + 5},
	}
	for _, tc := range tests {
		v := appendLoc(nil, tc.num, tc.kind, tc.off, tc.length)
		if len(v) != tc.size || len(v) > maxLoc {
			t.Errorf("appendLoc(%d, %d, %d, %d): got %d bytes, want %d (at most %d)", tc.num, tc.kind, tc.off, tc.length, len(v), tc.size, maxLoc)
		}
		num, name, kind, off, length, err := decodeLoc(v)
		if err != nil || name != nil || num != tc.num || kind != tc.kind || off != tc.off || length != tc.length {
			t.Errorf("decodeLoc(%x): got %d %x %d %d %d %v, want %d <nil> %d %d %d <nil>",
				v, num, name, kind, off, length, err, tc.num, tc.kind, tc.off, tc.length)
		}
	}
}

func TestDecodeLocLegacy(t *testing.T) {
	v := bytes.Repeat([]byte{0xab}, 32)
	v = append(v, byte(vaultapi.KindTree))
	v = binary.LittleEndian.AppendUint64(v, 1234)
	v = binary.LittleEndian.AppendUint32(v, 567)
	num, name, kind, off, length, err := decodeLoc(v)
	if err != nil || num != 0 || !bytes.Equal(name, v[:32]) || kind != vaultapi.KindTree || off != 1234 || length != 567 {
		t.Fatalf("decodeLoc(legacy): got %d %x %d %d %d %v; want 0 %x 2 1234 567 <nil>", num, name, kind, off, length, err, v[:32])
	}
}

func TestDecodeLocDamaged(t *testing.T) {
	ok := appendLoc(nil, 5, vaultapi.KindData, 100, 200)
	for _, v := range [][]byte{
		nil,
		ok[:len(ok)-1],                  // truncated
		append(ok[:len(ok):len(ok)], 0), // trailing byte
		appendLoc(nil, 0, vaultapi.KindData, 1, 1), // pack number 0
		{5 << 2, 1, 1}, // kind 0
		append(binary.AppendUvarint(nil, 5<<2|1), append(binary.AppendUvarint(nil, 1), binary.AppendUvarint(nil, 1<<32)...)...), // length ≥ 2^32
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 1, 1},                                                // overflowing uvarint
	} {
		if _, _, _, _, _, err := decodeLoc(v); !errors.Is(err, errIndex) {
			t.Errorf("decodeLoc(%x): got %v, want errIndex", v, err)
		}
	}
}

// FuzzDecodeLoc: decoding any value either fails with errIndex or gives a
// location that encodes and decodes back to itself.
func FuzzDecodeLoc(f *testing.F) {
	f.Add(appendLoc(nil, 3, vaultapi.KindData, 8, 4096))
	f.Add(appendLoc(nil, 1<<40, vaultapi.KindInfo, 1<<33, 1<<31))
	f.Add(bytes.Repeat([]byte{7}, legacyLocSize))
	f.Fuzz(func(t *testing.T, v []byte) {
		num, name, kind, off, length, err := decodeLoc(v)
		if err != nil {
			if !errors.Is(err, errIndex) {
				t.Fatalf("decodeLoc(%x): error %v, want errIndex", v, err)
			}
			return
		}
		if name != nil {
			return // legacy: any 45 bytes
		}
		w := appendLoc(nil, num, kind, off, length)
		num2, _, kind2, off2, length2, err := decodeLoc(w)
		if err != nil || num2 != num || kind2 != kind || off2 != off || length2 != length || len(w) > len(v) {
			t.Fatalf("decodeLoc(%x) = %d %d %d %d; re-encoded %x decodes to %d %d %d %d, %v",
				v, num, kind, off, length, w, num2, kind2, off2, length2, err)
		}
	})
}
