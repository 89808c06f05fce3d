package folderindex

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// refused fails the test unless Decode refuses data with an ErrIndex whose
// message holds want.
func refused(t *testing.T, data []byte, want string) {
	t.Helper()
	ix, err := Decode(data, testMAC)
	if err == nil {
		t.Fatalf("Decode accepted %x (%d entries), want an error naming %q", data, ix.Len(), want)
	}
	if ix != nil {
		t.Errorf("Decode returned an index with its error %v", err)
	}
	if !errors.Is(err, ErrIndex) {
		t.Errorf("error %v does not wrap ErrIndex", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want one naming %q", err, want)
	}
}

func TestRefuseByteFlips(t *testing.T) {
	data := encode(severalEntries())
	for i := range data {
		for _, x := range []byte{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff} {
			data[i] ^= x
			if _, err := Decode(data, testMAC); err == nil {
				t.Errorf("byte %d xor %#02x: accepted", i, x)
			}
			data[i] ^= x
		}
	}
	if _, err := Decode(data, testMAC); err != nil {
		t.Fatalf("the unflipped file is refused: %v", err)
	}
}

func TestRefuseTruncated(t *testing.T) {
	for _, entries := range [][]testEntry{nil, severalEntries()} {
		data := encode(entries)
		for n := range len(data) {
			if _, err := Decode(data[:n], testMAC); err == nil {
				t.Errorf("%d of %d bytes: accepted", n, len(data))
			}
		}
		if _, err := Decode(append(data[:len(data):len(data)], 0), testMAC); err == nil {
			t.Errorf("a byte appended to %d bytes: accepted", len(data))
		}
	}
	refused(t, make([]byte, headerSize+macSize), "shorter than the fixed parts")
}

func TestRefuseOtherMAC(t *testing.T) {
	data := build(severalEntries()).Encode(testPoint, testScope, macWith(0x01))
	refused(t, data, "MAC mismatch")
}

func TestRefuseForeign(t *testing.T) {
	data := newRaw(0).Bytes()
	data[0] = 'X'
	refused(t, seal(data), "bad magic")
	data = newRaw(0).Bytes()
	data[4] = 0x02
	refused(t, seal(data), "unknown version 2")
}

// TestRefuseNotCanonical builds files by hand with a valid MAC. Each case
// has a control that differs only in what is wrong, and must decode.
func TestRefuseNotCanonical(t *testing.T) {
	e := Entry{FP: fp(1), Tree: id(1), Chunks: []vaultapi.ID{id(2)}}
	for _, tc := range []struct {
		name     string
		bad, ok  func(r *rawBody)
		count    uint64
		complain string
	}{
		{
			name:     "unsorted keys",
			count:    2,
			bad:      func(r *rawBody) { r.entry(key(2), e); r.entry(key(1), e) },
			ok:       func(r *rawBody) { r.entry(key(1), e); r.entry(key(2), e) },
			complain: "does not follow",
		},
		{
			name:     "duplicate keys",
			count:    2,
			bad:      func(r *rawBody) { r.entry(key(1), e); r.entry(key(1), e) },
			ok:       func(r *rawBody) { r.entry(key(1), e); r.entry(key(2), e) },
			complain: "does not follow",
		},
		{
			name:     "trailing byte",
			count:    1,
			bad:      func(r *rawBody) { r.entry(key(1), e); r.WriteByte(0) },
			ok:       func(r *rawBody) { r.entry(key(1), e) },
			complain: "1 bytes between the last entry and the MAC",
		},
		{
			name:  "non-minimal chunk count",
			count: 1,
			bad: func(r *rawBody) {
				r.head(key(1), e)
				r.Write([]byte{0x81, 0x00}) // 1, in two bytes
				r.Write(e.Chunks[0][:])
			},
			ok:       func(r *rawBody) { r.entry(key(1), e) },
			complain: "entry 0 chunk count: non-minimal uvarint",
		},
		{
			name:  "chunk count too large",
			count: 1,
			bad: func(r *rawBody) {
				r.head(key(1), e)
				r.uvarint(2)
				r.Write(e.Chunks[0][:])
			},
			ok:       func(r *rawBody) { r.entry(key(1), e) },
			complain: "2 chunk IDs claimed",
		},
		{
			name:     "count too large",
			count:    2,
			bad:      func(r *rawBody) { r.entry(key(1), e) },
			ok:       func(r *rawBody) { r.entry(key(1), e); r.entry(key(2), e) },
			complain: "entries claimed",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := newRaw(tc.count)
			tc.bad(bad)
			refused(t, seal(bad.Bytes()), tc.complain)
			ok := newRaw(tc.count)
			tc.ok(ok)
			if _, err := Decode(seal(ok.Bytes()), testMAC); err != nil {
				t.Errorf("control refused: %v", err)
			}
		})
	}
}

func TestRefuseNonMinimalCount(t *testing.T) {
	r := newRaw(0)
	r.Truncate(r.Len() - 1)
	r.Write([]byte{0x80, 0x00}) // 0, in two bytes
	refused(t, seal(r.Bytes()), "entry count: non-minimal uvarint")

	r = newRaw(0)
	r.Truncate(r.Len() - 1)
	r.Write([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})
	refused(t, seal(r.Bytes()), "entry count: uvarint overflows 64 bits")

	r = newRaw(0)
	r.Truncate(r.Len() - 1)
	r.WriteByte(0x80) // continued past the MAC
	refused(t, seal(r.Bytes()), "entry count: truncated uvarint")
}

// TestRefuseTruncatedEntry has an entry cut short although the count fits
// the bytes left: the entry before it took more of them.
func TestRefuseTruncatedEntry(t *testing.T) {
	r := newRaw(2)
	r.entry(key(1), Entry{Chunks: []vaultapi.ID{id(1), id(2)}})
	r.Write(make([]byte, minEntry-1))
	refused(t, seal(r.Bytes()), "entry 1 truncated")
}

// TestRefuseHugeCount gives a valid MAC to a file claiming 2^40 entries,
// followed by one: Decode must refuse it before allocating for them.
func TestRefuseHugeCount(t *testing.T) {
	r := newRaw(1 << 40)
	r.entry(key(1), Entry{Chunks: []vaultapi.ID{id(1)}})
	data := seal(r.Bytes())
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	refused(t, data, "1099511627776 entries claimed")
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("refusing it allocated %d bytes", n)
	}
}

// TestDecodeAllocs checks that Decode's allocations do not grow with the
// number of entries or chunk IDs.
func TestDecodeAllocs(t *testing.T) {
	allocs := func(folders, chunks int) float64 {
		b := NewBuilder()
		for i := range folders {
			b.Add(Key{byte(i), byte(i >> 8)}, Entry{Chunks: make([]vaultapi.ID, chunks)})
		}
		data := b.Encode(testPoint, testScope, constMAC)
		return testing.AllocsPerRun(10, func() {
			if _, err := Decode(data, constMAC); err != nil {
				t.Fatal(err)
			}
		})
	}
	one, many := allocs(1, 1), allocs(1000, 10)
	if one != many || many > 3 {
		t.Errorf("Decode makes %v allocations for 1 entry, %v for 1000; want the same, at most 3", one, many)
	}
}

// constMAC is a MAC that allocates nothing (and authenticates nothing).
func constMAC([]byte) vaultapi.ID { return vaultapi.ID{1} }
