package folderindex

import (
	"bytes"
	"encoding/binary"
	"flag"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/zeebo/blake3"
)

var update = flag.Bool("update", false, "rewrite the files in testdata from the current code")

// macWith returns keyed BLAKE3-256 under the key b, b+1, ..., b+31.
func macWith(b byte) MAC {
	var key [32]byte
	for i := range key {
		key[i] = b + byte(i)
	}
	return func(data []byte) vaultapi.ID {
		h, err := blake3.NewKeyed(key[:])
		if err != nil {
			panic(err) // only for a key that is not 32 bytes
		}
		h.Write(data)
		var id vaultapi.ID
		h.Sum(id[:0])
		return id
	}
}

// testMAC is the MAC of the tests, the fuzz target and the golden vector.
var testMAC = macWith(0x00)

func key(b byte) Key {
	var k Key
	for i := range k {
		k[i] = b
	}
	return k
}

func fp(b byte) FP { return FP(key(b ^ 0xf0)) }
func id(b byte) vaultapi.ID {
	var x vaultapi.ID
	for i := range x {
		x[i] = b ^ byte(i)
	}
	return x
}

var (
	testPoint = id(0xa0)
	testScope = id(0xb0)
)

// testEntry is one folder of the tests.
type testEntry struct {
	k Key
	e Entry
}

// severalEntries covers an entry without chunks, one with repeated chunk
// IDs and keys that differ only in their last byte; they are not in key
// order.
func severalEntries() []testEntry {
	k1 := key(0x10)
	k2 := key(0x10)
	k2[15] = 0x11
	return []testEntry{
		{key(0x30), Entry{FP: fp(3), Tree: id(3), Chunks: []vaultapi.ID{id(0x31), id(0x32), id(0x31), id(0x31)}}},
		{k2, Entry{FP: fp(2), Tree: id(2), Chunks: []vaultapi.ID{id(0x21)}}},
		{key(0xff), Entry{FP: fp(4), Tree: id(4)}},
		{k1, Entry{FP: fp(1), Tree: id(1), Chunks: []vaultapi.ID{}}},
		{key(0x00), Entry{FP: fp(5), Tree: id(5), Chunks: []vaultapi.ID{id(0x51), id(0x52)}}},
	}
}

func build(entries []testEntry) *Builder {
	b := NewBuilder()
	for _, x := range entries {
		b.Add(x.k, x.e)
	}
	return b
}

func encode(entries []testEntry) []byte {
	return build(entries).Encode(testPoint, testScope, testMAC)
}

// rawBody writes a file's bytes before the MAC by hand, from the format in
// the package comment, in the order given and without any check.
type rawBody struct{ bytes.Buffer }

func newRaw(count uint64) *rawBody {
	r := &rawBody{}
	r.WriteString("CFIX")
	r.WriteByte(0x01)
	r.Write(testPoint[:])
	r.Write(testScope[:])
	r.uvarint(count)
	return r
}

func (r *rawBody) uvarint(v uint64) { r.Write(binary.AppendUvarint(nil, v)) }

func (r *rawBody) entry(k Key, e Entry) {
	r.head(k, e)
	r.uvarint(uint64(len(e.Chunks)))
	for _, c := range e.Chunks {
		r.Write(c[:])
	}
}

// head writes an entry's key, fingerprint and tree ID: all of it before
// the chunk count.
func (r *rawBody) head(k Key, e Entry) {
	r.Write(k[:])
	r.Write(e.FP[:])
	r.Write(e.Tree[:])
}

// seal appends testMAC of the body.
func seal(body []byte) []byte {
	sum := testMAC(body)
	return append(body[:len(body):len(body)], sum[:]...)
}

func equalEntry(a, b Entry) bool {
	if a.FP != b.FP || a.Tree != b.Tree || len(a.Chunks) != len(b.Chunks) {
		return false
	}
	for i := range a.Chunks {
		if a.Chunks[i] != b.Chunks[i] {
			return false
		}
	}
	return true
}

// reencode encodes ix's entries again, with its point and scope.
func reencode(t testing.TB, ix *Index, mac MAC) []byte {
	t.Helper()
	b := NewBuilder()
	for _, r := range ix.recs {
		e, ok := ix.Get(r.key)
		if !ok {
			t.Fatalf("decoded key %x is not found", r.key)
		}
		b.Add(r.key, e)
	}
	if b.Len() != ix.Len() {
		t.Fatalf("Len = %d, want %d", ix.Len(), b.Len())
	}
	return b.Encode(ix.Point(), ix.Scope(), mac)
}
