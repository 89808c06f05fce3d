package format

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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

func FuzzSplitGroup(f *testing.F) {
	for _, b := range splitGroupSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// One encoding for every group: a reader accepts only what
		// AppendGroupTable writes (for version 2, without the IDs).
		members, ids, err := SplitGroup(nil, nil, b)
		if err == nil {
			if len(ids) != len(members) {
				t.Fatalf("%d IDs for %d members", len(ids), len(members))
			}
			if enc := appendTable(t, members, ids); !bytes.Equal(enc, b) {
				t.Fatalf("re-encoding differs:\nin  %x\nout %x", b, enc)
			}
		} else if !errors.Is(err, ErrGroup) {
			t.Fatalf("error %v does not wrap ErrGroup", err)
		}
		members, err = splitGroupV2(nil, b)
		if err == nil {
			if enc := appendTable(t, members, nil); !bytes.Equal(enc, b) {
				t.Fatalf("version 2: re-encoding differs:\nin  %x\nout %x", b, enc)
			}
		} else if !errors.Is(err, ErrGroup) {
			t.Fatalf("version 2: error %v does not wrap ErrGroup", err)
		}
	})
}

// appendTable checks what a reader accepted (2 to 2^16 members, none
// empty) and encodes it again, with ids as the table's IDs.
func appendTable(t *testing.T, members [][]byte, ids []vaultapi.ID) []byte {
	t.Helper()
	if len(members) < 2 || len(members) > maxMembers {
		t.Fatalf("%d members accepted", len(members))
	}
	var body []byte
	lens := make([]int, len(members))
	for i, m := range members {
		if len(m) == 0 {
			t.Fatalf("member %d is empty", i)
		}
		body = append(body, m...)
		lens[i] = len(m)
	}
	return AppendGroupTable(body, lens, ids)
}

// splitGroupSeeds are group plaintexts: the golden group's, the smallest
// group, one with a length of two bytes, and version 2's table.
func splitGroupSeeds() [][]byte {
	return [][]byte{
		groupPlain(goldenGroup.members),
		AppendGroupTable([]byte("ab"), []int{1, 1}, make([]vaultapi.ID, 2)),
		AppendGroupTable(bytes.Repeat([]byte("z"), 303), []int{3, 300}, testIDs([][]byte{{1}, {2}})),
		AppendGroupTable([]byte("abc"), []int{2, 1}, nil),
	}
}

// fuzzGroup is a group sealed with the golden keys, which FuzzOpenGroup
// may see opened; no other input may open.
type fuzzGroup struct {
	kind    vaultapi.Kind
	sealed  []byte
	members [][]byte
	ids     []vaultapi.ID // nil for version 2
}

func fuzzGroups(t testing.TB) []fuzzGroup {
	keys := goldenKeys(t)
	var out []fuzzGroup
	// Nonce prefixes a0 .. af (zstd) and b0 .. bf (raw).
	for i, level := range []Level{LevelAuto, LevelNone} {
		s, err := NewSealer(keys, &seqReader{next: 0xa0 + 0x10*byte(i)}, level)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range []struct {
			kind    vaultapi.Kind
			members [][]byte
		}{
			{vaultapi.KindData, goldenGroup.members},
			{vaultapi.KindTree, [][]byte{[]byte("tw"), []byte("o")}},
		} {
			frame, err := s.GroupFrame(nil, groupPlain(in.members))
			if err != nil {
				t.Fatal(err)
			}
			sealed, err := s.SealGroup(nil, in.kind, frame)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fuzzGroup{in.kind, sealed, in.members, testIDs(in.members)})
		}
	}
	v2, err := readTestdata(goldenGroupV2.file)
	if err != nil {
		t.Fatal(err)
	}
	// Groups of version 2: the golden one, and a tree group stored raw
	// that an earlier seed of this target held (testdata/fuzz keeps an
	// input made from it).
	return append(out,
		fuzzGroup{vaultapi.KindData, mustHex(t, string(v2)), goldenGroupV2.members, nil},
		fuzzGroup{vaultapi.KindTree, mustHex(t, "02 b0b1b2b3b4b5b6b7b8b9babbbcbdbebf 0000000000000001"+
			"301c72dc6055bd8951885ba58a756d7e44b37fa5d775f4004e22b6"), [][]byte{[]byte("tw"), []byte("o")}, nil})
}

func FuzzOpenGroup(f *testing.F) {
	groups := fuzzGroups(f)
	for _, g := range groups {
		f.Add(bytes.Clone(g.sealed), byte(g.kind))
	}
	o, err := NewOpener(goldenKeys(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sealed []byte, kind byte) {
		in := sealed
		_, members, ids, err := o.OpenGroup(nil, nil, nil, vaultapi.Kind(kind), bytes.Clone(sealed)) // OpenGroup overwrites its input
		if err != nil {
			return
		}
		for _, g := range groups {
			if bytes.Equal(in, g.sealed) && g.kind == vaultapi.Kind(kind) {
				if len(members) != len(g.members) {
					t.Fatalf("opened %d members, want %d", len(members), len(g.members))
				}
				if !slices.Equal(ids, g.ids) || (ids == nil) != (g.ids == nil) {
					t.Fatalf("opened IDs %v, want %v", ids, g.ids)
				}
				for i := range members {
					if !bytes.Equal(members[i], g.members[i]) {
						t.Fatalf("member %d: %q, want %q", i, members[i], g.members[i])
					}
				}
				return
			}
		}
		t.Fatalf("tampered or forged input opened: kind %d sealed %x -> %q", kind, in, members)
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
		"FuzzSplitGroup":       nil,
		"FuzzOpenGroup":        nil,
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
	for _, b := range splitGroupSeeds() {
		seeds["FuzzSplitGroup"] = append(seeds["FuzzSplitGroup"], []any{b})
	}
	for _, g := range fuzzGroups(t) {
		seeds["FuzzOpenGroup"] = append(seeds["FuzzOpenGroup"], []any{g.sealed, byte(g.kind)})
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
