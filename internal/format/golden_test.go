package format

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

// The golden vectors pin every encoding of this package. A failing test
// here means stored data would change: bump the version of the encoding
// (and keep a reader for the old one) rather than regenerate. Regenerate
// with go test ./internal/format -run Golden -update only when the change
// is intended, and say so in doc/FORMAT.md.
//
// One exception: the zstd vectors (blob-zstd.hex, blob-group-v3.hex) depend
// on the compressor's output, which a new version of klauspost/compress may
// change without changing the format. TestGoldenBlobs and TestGoldenGroup
// still open the pinned bytes, so old blobs stay readable; regenerating
// after such an upgrade is fine.

// patternInput returns n bytes i mod 251, the input pattern of the BLAKE3
// reference test vectors.
func patternInput(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// TestHasherIsBLAKE3Keyed checks chunk IDs against the BLAKE3 reference
// test vectors (keyed_hash, key "whats the Elvish word for friend").
func TestHasherIsBLAKE3Keyed(t *testing.T) {
	var k Keys
	copy(k.ID[:], "whats the Elvish word for friend")
	h := NewHasher(&k)
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26"},
		{1025, "357dc55de0c7e382c900fd6e320acc04146be01db6a8ce7210b7189bd664ea69"},
	} {
		if got := h.ID(patternInput(tc.n)).String(); got != tc.want {
			t.Errorf("keyed BLAKE3 of %d bytes: got %s, want %s", tc.n, got, tc.want)
		}
	}
}

var chunkIDInputs = []struct {
	name string
	data []byte
}{
	{"empty", nil},
	{"abc", []byte("abc")},
	{"pattern-1025", patternInput(1025)},
	{"pattern-1MiB", patternInput(1 << 20)},
}

func TestGoldenChunkIDs(t *testing.T) {
	h := NewHasher(goldenKeys(t))
	var b bytes.Buffer
	fmt.Fprintln(&b, "# Chunk IDs: keyed BLAKE3-256 with the ID key 20 21 .. 3f. Input pattern-N: N bytes i mod 251.")
	for _, in := range chunkIDInputs {
		fmt.Fprintf(&b, "%s %d %s\n", in.name, len(in.data), h.ID(in.data))
	}
	checkGolden(t, "chunk-ids.txt", b.Bytes())
}

// goldenBlobs are sealed in order by one Sealer over seqReader{0x80}: the
// nonce prefix is 80 81 .. 8f and the counters are 0 and 1.
var goldenBlobs = []struct {
	file  string
	kind  vaultapi.Kind
	plain []byte
	comp  byte
}{
	{"blob-raw.hex", vaultapi.KindData, []byte("Coffer golden blob: short, stored raw."), compRaw},
	{"blob-zstd.hex", vaultapi.KindTree, bytes.Repeat([]byte("Coffer compresses this. "), 8), compZstd},
}

func TestGoldenBlobs(t *testing.T) {
	keys := goldenKeys(t)
	s, err := NewSealer(keys, &seqReader{next: 0x80}, LevelFastest)
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOpener(keys)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHasher(keys)
	for i, g := range goldenBlobs {
		id := h.ID(g.plain)
		sealed, _, err := s.Seal(nil, g.kind, id, g.plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		pinned := checkGolden(t, g.file, sealed)
		if pinned[0] != blobVersion {
			t.Errorf("%s: version byte %d", g.file, pinned[0])
		}
		wantNonce := mustHex(t, fmt.Sprintf("808182838485868788898a8b8c8d8e8f %016x", i))
		if got := pinned[1:25]; !bytes.Equal(got, wantNonce) {
			t.Errorf("%s: nonce %x, want %x", g.file, got, wantNonce)
		}
		// Decrypt by hand, as doc/FORMAT.md describes, to check the
		// compression byte; then through the Opener.
		if got := manualOpen(t, keys, g.kind, id, pinned)[0]; got != g.comp {
			t.Errorf("%s: compression byte %d, want %d", g.file, got, g.comp)
		}
		plain, err := o.Open(nil, g.kind, id, bytes.Clone(pinned))
		if err != nil || !bytes.Equal(plain, g.plain) {
			t.Errorf("%s: open pinned bytes: %q, %v; want %q", g.file, plain, err, g.plain)
		}
	}
}

// goldenGroup is sealed by a Sealer over seqReader{0x90} at LevelAuto:
// nonce prefix 90 91 .. 9f, counter 0. Its members' IDs are their keyed
// hashes under the golden keys, as a backup writes them.
var goldenGroup = struct {
	file    string
	kind    vaultapi.Kind
	members [][]byte
	comp    byte
}{"blob-group-v3.hex", vaultapi.KindData, [][]byte{
	[]byte("Coffer golden group: member one, a small file.\n"),
	[]byte("x"),
	[]byte("Coffer golden group: member three, another small file.\n"),
	bytes.Repeat([]byte("small files compress together. "), 4),
}, compZstd}

// goldenGroupV2 is the same group as Coffer wrote it before groups listed
// their members' IDs (version 2). No writer makes it any more; it is
// pinned so that readers keep opening such groups.
var goldenGroupV2 = struct {
	file    string
	members [][]byte
}{"blob-group-v2.hex", goldenGroup.members}

// goldenGroupIDs returns the golden group's members' IDs.
func goldenGroupIDs(t testing.TB) []vaultapi.ID {
	h := NewHasher(goldenKeys(t))
	var ids []vaultapi.ID
	for _, m := range goldenGroup.members {
		ids = append(ids, h.ID(m))
	}
	return ids
}

func TestGoldenGroup(t *testing.T) {
	keys := goldenKeys(t)
	g := goldenGroup
	s, err := NewSealer(keys, &seqReader{next: 0x90}, LevelAuto)
	if err != nil {
		t.Fatal(err)
	}
	plain := groupPlainIDs(g.members, goldenGroupIDs(t))
	frame, err := s.GroupFrame(nil, plain)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.SealGroup(nil, g.kind, frame)
	if err != nil {
		t.Fatal(err)
	}
	pinned := checkGolden(t, g.file, sealed)
	wantNonce := mustHex(t, "909192939495969798999a9b9c9d9e9f 0000000000000000")
	if got := pinned[1:25]; !bytes.Equal(got, wantNonce) {
		t.Errorf("%s: nonce %x, want %x", g.file, got, wantNonce)
	}

	// Decrypt, decompress and split by hand, as doc/FORMAT.md describes.
	inner := manualOpenGroup(t, keys, 3, g.kind, pinned)
	got := manualGroupPlain(t, g.file, inner, g.comp)
	if !bytes.Equal(got, plain) {
		t.Fatalf("%s: group plaintext %x, want %x", g.file, got, plain)
	}
	table := manualSplit(t, g.file, got, g.members)
	wantIDs := goldenGroupIDs(t)
	if len(table) != idSize*len(wantIDs) {
		t.Fatalf("%s: %d bytes of IDs, want %d", g.file, len(table), idSize*len(wantIDs))
	}
	for i, id := range wantIDs {
		if !bytes.Equal(table[i*idSize:(i+1)*idSize], id[:]) {
			t.Errorf("%s: ID %d is %x, want %s", g.file, i, table[i*idSize:(i+1)*idSize], id)
		}
	}

	_, members, ids, err := newOpener(t, keys).OpenGroup(nil, nil, nil, g.kind, bytes.Clone(pinned))
	if err != nil {
		t.Fatalf("%s: open pinned bytes: %v", g.file, err)
	}
	wantMembers(t, members, g.members)
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("%s: IDs %v, want %v", g.file, ids, wantIDs)
	}
}

// TestGoldenGroupV2 opens the pinned group of version 2, by hand and with
// OpenGroup, which gives its members without IDs.
func TestGoldenGroupV2(t *testing.T) {
	keys := goldenKeys(t)
	g := goldenGroupV2
	pinned := mustHex(t, string(checkGoldenRead(t, g.file)))
	inner := manualOpenGroup(t, keys, 2, vaultapi.KindData, pinned)
	got := manualGroupPlain(t, g.file, inner, compZstd)
	if table := manualSplit(t, g.file, got, g.members); len(table) != 0 {
		t.Errorf("%s: %d table bytes after the lengths", g.file, len(table))
	}
	_, members, ids, err := newOpener(t, keys).OpenGroup(nil, nil, nil, vaultapi.KindData, bytes.Clone(pinned))
	if err != nil {
		t.Fatalf("%s: open pinned bytes: %v", g.file, err)
	}
	wantMembers(t, members, g.members)
	if ids != nil {
		t.Errorf("%s: IDs %v from a group that has none", g.file, ids)
	}
}

// manualGroupPlain decompresses a group's inner plaintext by hand.
func manualGroupPlain(t *testing.T, file string, inner []byte, comp byte) []byte {
	t.Helper()
	if inner[0] != comp {
		t.Fatalf("%s: compression byte %d, want %d", file, inner[0], comp)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	got, err := dec.DecodeAll(inner[1:], nil)
	if err != nil {
		t.Fatalf("%s: zstd: %v", file, err)
	}
	return got
}

// manualSplit checks a group plaintext's members and lengths by hand
// against want, and returns the rest of its table.
func manualSplit(t *testing.T, file string, got []byte, want [][]byte) []byte {
	t.Helper()
	tl := int(binary.LittleEndian.Uint32(got[len(got)-4:]))
	table, body := got[len(got)-4-tl:len(got)-4], got[:len(got)-4-tl]
	n, k := binary.Uvarint(table)
	if n != uint64(len(want)) {
		t.Fatalf("%s: %d members, want %d", file, n, len(want))
	}
	table = table[k:]
	for i, m := range want {
		l, k := binary.Uvarint(table)
		table = table[k:]
		if !bytes.Equal(body[:l], m) {
			t.Errorf("%s: member %d is %q, want %q", file, i, body[:l], m)
		}
		body = body[l:]
	}
	if len(body) != 0 {
		t.Errorf("%s: %d member bytes left", file, len(body))
	}
	return table
}

// manualOpen decrypts a sealed blob following doc/FORMAT.md step by step
// and returns compression byte | payload.
func manualOpen(t *testing.T, k *Keys, kind vaultapi.Kind, id vaultapi.ID, sealed []byte) []byte {
	t.Helper()
	if sealed[0] != 1 {
		t.Fatalf("manual open: version byte %d, want 1", sealed[0])
	}
	return manualOpenAD(t, k, append([]byte{byte(kind)}, id[:]...), sealed)
}

// manualOpenGroup is manualOpen for a group of the given version (3 or
// 2): additional data kind|0x80, then the version byte for version 3 and
// zero bytes.
func manualOpenGroup(t *testing.T, k *Keys, version byte, kind vaultapi.Kind, sealed []byte) []byte {
	t.Helper()
	if sealed[0] != version {
		t.Fatalf("manual open: version byte %d, want %d", sealed[0], version)
	}
	ad := append([]byte{byte(kind) | 0x80}, make([]byte, 32)...)
	if version == 3 {
		ad[1] = 3
	}
	return manualOpenAD(t, k, ad, sealed)
}

// manualOpenAD decrypts the sealed bytes after the version byte with the
// additional data ad.
func manualOpenAD(t *testing.T, k *Keys, ad, sealed []byte) []byte {
	t.Helper()
	material := append(bytes.Clone(k.Data[:]), sealed[1:17]...)
	var sub [32]byte
	blake3.DeriveKey("coffer 2026-11 blob subkey v1", material, sub[:])
	aead, err := gcm(sub[:])
	if err != nil {
		t.Fatal(err)
	}
	nonce := append(make([]byte, 4), sealed[17:25]...)
	pt, err := aead.Open(nil, nonce, sealed[25:], ad)
	if err != nil {
		t.Fatalf("manual open: %v", err)
	}
	return pt
}

func goldenTree(t testing.TB) *Tree {
	sub := blake3.Sum256([]byte("subtree"))
	c1 := blake3.Sum256([]byte("chunk 1"))
	c2 := blake3.Sum256([]byte("chunk 2"))
	return &Tree{Nodes: []Node{
		{
			Name: []byte("dir"), Type: TypeDir, Mode: 0o2775, UID: 1000, GID: 1000,
			User: "alice", Group: "staff", MTime: 1_795_000_000_123_456_789,
			Inode: 2, Dev: 2049, Links: 3, Subtree: sub,
		},
		{
			Name: []byte("link"), Type: TypeSymlink, Mode: 0o777,
			MTime: -1, Target: []byte("../somewhere/\xff"),
		},
		{ // every field set, name not UTF-8
			Name: []byte("\xff\xfe sparse \xc3\x28"), Type: TypeFile, Mode: 0o4755,
			UID: 1001, GID: 100, User: "bob", Group: "users",
			MTime: -86_400_000_000_001, ATime: 1_795_000_001_000_000_000, CTime: 1_795_000_002_999_999_999,
			Size: 5 << 20, Inode: 1 << 40, Dev: 0xfd01, Links: 2,
			Target: []byte("t"), Subtree: sub,
			Chunks: []Chunk{{ID: c1, Size: 1 << 20}, {ID: c2, Size: 1<<20 + 1}},
			Rdev:   0x0801,
			Xattrs: []Xattr{
				{Name: "system.posix_acl_access", Value: []byte{2, 0, 0, 0, 1, 0, 6, 0}},
				{Name: "user.empty", Value: nil},
			},
			LinkGroup: 7,
			Extents:   []Extent{{Off: 0, Len: 1 << 20}, {Off: 4 << 20, Len: 1<<20 + 1}},
		},
	}}
}

func TestGoldenTree(t *testing.T) {
	tr := goldenTree(t)
	enc, err := tr.AppendEncode(nil)
	if err != nil {
		t.Fatal(err)
	}
	pinned := checkGolden(t, "tree.hex", enc)
	got, err := DecodeTree(pinned)
	if err != nil {
		t.Fatal(err)
	}
	// Xattr values decode as empty slices, not nil.
	tr.Nodes[2].Xattrs[1].Value = []byte{}
	if !reflect.DeepEqual(got, tr) {
		t.Errorf("decoded pinned tree:\ngot  %+v\nwant %+v", got, tr)
	}
}

func goldenManifest(t testing.TB) *Manifest {
	return &Manifest{
		Root:      blake3.Sum256([]byte("root tree")),
		Host:      "host-1.example",
		Paths:     [][]byte{[]byte("/home/alice"), []byte("/srv/\xff")},
		AgentTime: time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC),
		Parent:    "00112233445566778899aabbccddeeff",
		Excludes:  []string{"*.tmp", "/var/cache"},
		Tags:      []string{"daily"},
	}
}

func TestGoldenManifest(t *testing.T) {
	m := goldenManifest(t)
	enc, err := EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	pinned := checkGolden(t, "manifest.json", enc)
	got, err := DecodeManifest(pinned)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("decoded pinned manifest:\ngot  %+v\nwant %+v", got, m)
	}
}

const goldenPassphrase = "correct horse battery staple"

// minArgon2 are the smallest accepted Argon2id parameters.
var minArgon2 = KDF{Name: "argon2id", Time: minArgon2Time, MemoryKiB: minArgon2Memory, Threads: minArgon2Thread}

func TestGoldenKeySlots(t *testing.T) {
	keys := goldenKeys(t)
	// Passphrase slot: salt c0..df, GCM nonce e0..eb.
	slot, err := WrapKeys(keys, []byte(goldenPassphrase), minArgon2, &seqReader{next: 0xc0})
	if err != nil {
		t.Fatal(err)
	}
	pinned := checkGolden(t, "keyslot-argon2id.json", slot)
	got, err := UnwrapKeys(pinned, []byte(goldenPassphrase))
	if err != nil || *got != *keys {
		t.Errorf("unwrap pinned passphrase slot: %v, %v", got, err)
	}
	if _, err := UnwrapKeys(pinned, []byte(goldenPassphrase+"!")); err != ErrWrongSecret {
		t.Errorf("wrong passphrase: %v, want ErrWrongSecret", err)
	}

	// Recovery key 10 11 .. 2f; its slot: salt 30..4f, GCM nonce 50..5b.
	rand := &seqReader{next: 0x10}
	printable, rk, err := NewRecoveryKey(rand)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "recovery-key.txt", []byte(printable+"\n"))
	slot, err = WrapKeys(keys, rk, KDF{Name: "blake3"}, rand)
	if err != nil {
		t.Fatal(err)
	}
	pinned = checkGolden(t, "keyslot-recovery.json", slot)
	pinnedKey, err := os.ReadFile(filepath.Join("testdata", "recovery-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	rk2, err := ParseRecoveryKey(string(pinnedKey))
	if err != nil || hex.EncodeToString(rk2) != "101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f" {
		t.Fatalf("parse pinned recovery key: %x, %v", rk2, err)
	}
	got, err = UnwrapKeys(pinned, rk2)
	if err != nil || *got != *keys {
		t.Errorf("unwrap pinned recovery slot: %v, %v", got, err)
	}
}
