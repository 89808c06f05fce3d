package format

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/zeebo/blake3"
)

// Every decoder of stored bytes has a fuzz target here, with seeds from
// real encodings in testdata/fuzz/<Name>/ (written by go test -update).
// Run one with, e.g., go test ./internal/format -run '^$' -fuzz FuzzDecodeTree -fuzztime 60s.

func FuzzDecodeTree(f *testing.F) {
	for _, b := range treeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := DecodeTree(b)
		if err != nil {
			return
		}
		enc, err := tr.AppendEncode(nil)
		if err != nil {
			t.Fatalf("a decoded tree does not encode: %v", err)
		}
		// Unknown fields are dropped; otherwise the encoding is canonical,
		// so it comes back byte for byte (a backup reuses the ID of a tree
		// whose entries are unchanged on this).
		if tr.SkippedFields() && len(enc) >= len(b) || !tr.SkippedFields() && !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding is not canonical (skipped fields: %v):\nin  %x\nout %x", tr.SkippedFields(), b, enc)
		}
		again, err := DecodeTree(enc)
		if err != nil {
			t.Fatalf("re-encoded tree does not decode: %v", err)
		}
		if again.SkippedFields() {
			t.Fatalf("re-encoded tree has skipped fields")
		}
		for i := range tr.Nodes {
			if !tr.Nodes[i].Equal(&again.Nodes[i]) {
				t.Fatalf("entry %d: Equal is false after a round trip", i)
			}
		}
		if !reflect.DeepEqual(again.Nodes, tr.Nodes) {
			t.Fatalf("round trip differs:\n%+v\n%+v", tr, again)
		}
	})
}

func treeSeeds(t testing.TB) [][]byte {
	golden := encodeTree(t, goldenTree(t))
	one := encodeTree(t, &Tree{Nodes: []Node{{Name: []byte("a"), Type: TypeFile, Mode: 0o644, Size: 1,
		Chunks: []Chunk{{ID: blake3.Sum256(nil), Size: 1}}}}})
	return [][]byte{golden, one, encodeTree(t, &Tree{}),
		rawTree(cat(field(tagName, wireBytes, 'a'), field(tagExtent+1, wireBytes, 1, 2)))}
}

// fuzzBlob is a blob sealed with the golden keys, which FuzzOpenBlob may
// see opened; no other input may open.
type fuzzBlob struct {
	kind   vaultapi.Kind
	id     vaultapi.ID
	sealed []byte
	plain  []byte
}

func fuzzBlobs(t testing.TB) []fuzzBlob {
	keys := goldenKeys(t)
	s, err := NewSealer(keys, &seqReader{next: 0x80}, LevelFastest)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHasher(keys)
	var out []fuzzBlob
	for _, in := range []struct {
		kind  vaultapi.Kind
		plain []byte
	}{
		{vaultapi.KindData, []byte("raw")},
		{vaultapi.KindTree, bytes.Repeat([]byte("zstd "), 40)},
		{vaultapi.KindInfo, nil},
	} {
		id := h.ID(in.plain)
		sealed, _, err := s.Seal(nil, in.kind, id, in.plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fuzzBlob{in.kind, id, sealed, in.plain})
	}
	return out
}

func FuzzOpenBlob(f *testing.F) {
	blobs := fuzzBlobs(f)
	for _, b := range blobs {
		f.Add(bytes.Clone(b.sealed), byte(b.kind), b.id[:])
	}
	o, err := NewOpener(goldenKeys(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sealed []byte, kind byte, idb []byte) {
		var id vaultapi.ID
		copy(id[:], idb)
		in := sealed
		plain, err := o.Open(nil, vaultapi.Kind(kind), id, bytes.Clone(sealed)) // Open overwrites its input
		if err != nil {
			return
		}
		for _, b := range blobs {
			if bytes.Equal(in, b.sealed) && b.kind == vaultapi.Kind(kind) && b.id == id {
				if !bytes.Equal(plain, b.plain) {
					t.Fatalf("opened %q, want %q", plain, b.plain)
				}
				return
			}
		}
		t.Fatalf("tampered or forged input opened: kind %d id %s sealed %x -> %q", kind, id, in, plain)
	})
}

func FuzzDecodeManifest(f *testing.F) {
	m, err := EncodeManifest(goldenManifest(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(m)
	f.Add([]byte(`{"v":1,"root":"` + strings.Repeat("0f", 32) + `","paths":null,"agent_time":"0001-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			return
		}
		enc, err := EncodeManifest(m)
		if err != nil {
			t.Fatalf("a decoded manifest does not encode: %v", err)
		}
		again, err := DecodeManifest(enc)
		if err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v\n%s", err, enc)
		}
		if !again.AgentTime.Equal(m.AgentTime) {
			t.Fatalf("time %v became %v", m.AgentTime, again.AgentTime)
		}
		again.AgentTime = m.AgentTime
		// Optional members that are empty are omitted: [] comes back absent.
		for _, x := range []*Manifest{m, again} {
			if len(x.Excludes) == 0 {
				x.Excludes = nil
			}
			if len(x.Tags) == 0 {
				x.Tags = nil
			}
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip differs:\n%+v\n%+v", m, again)
		}
	})
}

func FuzzUnwrapKeys(f *testing.F) {
	for _, name := range []string{"keyslot-argon2id.json", "keyslot-recovery.json"} {
		b, err := readTestdata(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte(goldenPassphrase))
	}
	f.Add([]byte(`{"v":1,"kdf":{"name":"argon2id","salt":"AAAAAAAAAAAAAAAAAAAAAA==","time":4294967295,"memory_kib":4294967295,"threads":255},"nonce":"AAAAAAAAAAAAAAAA","box":""}`), []byte("x"))
	// Deriving for real with parameters of up to 1 GiB would make fuzzing
	// crawl; a stand-in checks that only accepted parameters arrive.
	real := argon2IDKey
	f.Cleanup(func() { argon2IDKey = real })
	argon2IDKey = func(p, salt []byte, time, mem uint32, threads uint8, n uint32) []byte {
		if time < minArgon2Time || time > maxArgon2Time || mem < minArgon2Memory || mem > maxArgon2Memory ||
			threads < minArgon2Thread || threads > maxArgon2Thread || len(salt) < 16 || len(salt) > 64 {
			panic(fmt.Sprintf("argon2id reached with t=%d m=%d p=%d salt %d bytes", time, mem, threads, len(salt)))
		}
		out := blake3.Sum256(append(bytes.Clone(p), salt...))
		return out[:n]
	}
	f.Fuzz(func(t *testing.T, slot, secret []byte) {
		k, err := UnwrapKeys(slot, secret)
		if err == nil && k == nil {
			t.Fatal("no keys and no error")
		}
		_ = SlotKDF(slot)
	})
}

func FuzzParseRecoveryKey(f *testing.F) {
	printable, _, err := NewRecoveryKey(&seqReader{next: 0x10})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(printable)
	f.Add(strings.ToLower(strings.ReplaceAll(printable, "-", " ")))
	f.Add("AAAAA-AAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseRecoveryKey(s)
		if err != nil {
			return
		}
		if len(k) != 32 {
			t.Fatalf("%d-byte key", len(k))
		}
		p, k2, err := NewRecoveryKey(bytes.NewReader(k))
		if err != nil || !bytes.Equal(k, k2) {
			t.Fatal(err)
		}
		k3, err := ParseRecoveryKey(p)
		if err != nil || !bytes.Equal(k3, k) {
			t.Fatalf("printed form %q does not parse back: %v", p, err)
		}
	})
}

// TestWriteFuzzSeeds writes the seeds above, made from real encodings, to
// testdata/fuzz when run with -update, so plain go test runs them too.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		return
	}
	man, err := EncodeManifest(goldenManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	slotA, _ := readTestdata("keyslot-argon2id.json")
	slotR, _ := readTestdata("keyslot-recovery.json")
	printable, _ := readTestdata("recovery-key.txt")
	seeds := map[string][][]any{
		"FuzzDecodeTree":       nil,
		"FuzzOpenBlob":         nil,
		"FuzzDecodeManifest":   {{man}},
		"FuzzUnwrapKeys":       {{slotA, []byte(goldenPassphrase)}, {slotR, []byte("wrong")}},
		"FuzzParseRecoveryKey": {{string(printable)}},
	}
	for _, b := range treeSeeds(t) {
		seeds["FuzzDecodeTree"] = append(seeds["FuzzDecodeTree"], []any{b})
	}
	for _, b := range fuzzBlobs(t) {
		seeds["FuzzOpenBlob"] = append(seeds["FuzzOpenBlob"], []any{b.sealed, byte(b.kind), b.id[:]})
	}
	for name, list := range seeds {
		writeSeeds(t, name, list)
	}
}

func writeSeeds(t *testing.T, name string, list [][]any) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, args := range list {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
			case string:
				fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(v))
			case byte:
				fmt.Fprintf(&b, "byte(%s)\n", strconv.QuoteRune(rune(v)))
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
