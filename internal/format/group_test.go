package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// testMembers are the members of a test group: two of one byte, text that
// compresses, and random bytes that do not.
func testMembers(seed uint64) [][]byte {
	r := mrand.New(mrand.NewPCG(seed, 2))
	random := make([]byte, 8<<10)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	return [][]byte{
		{'a'},
		[]byte("#include <linux/module.h>\n#include <linux/kernel.h>\n"),
		random,
		{'b'},
		bytes.Repeat([]byte("// SPDX-License-Identifier: GPL-2.0\n"), 1000),
	}
}

// testIDs returns IDs for members: their keyed hashes under a zero ID
// key. The format keeps whatever IDs a writer gives.
func testIDs(members [][]byte) []vaultapi.ID {
	h := NewHasher(&Keys{})
	ids := make([]vaultapi.ID, len(members))
	for i, m := range members {
		ids[i] = h.ID(m)
	}
	return ids
}

// groupPlain returns the plaintext of a group of members, with testIDs.
func groupPlain(members [][]byte) []byte { return groupPlainIDs(members, testIDs(members)) }

// groupPlainIDs returns the plaintext of a group of members listing ids.
func groupPlainIDs(members [][]byte, ids []vaultapi.ID) []byte {
	var plain []byte
	lens := make([]int, len(members))
	for i, m := range members {
		plain = append(plain, m...)
		lens[i] = len(m)
	}
	return AppendGroupTable(plain, lens, ids)
}

// sealGroup frames and seals a group of members with s.
func sealGroup(t testing.TB, s *Sealer, kind vaultapi.Kind, members [][]byte) []byte {
	t.Helper()
	frame, err := s.GroupFrame(nil, groupPlain(members))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.SealGroup(nil, kind, frame)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != SealedSize(len(frame)) {
		t.Fatalf("sealed group of %d bytes, want SealedSize(%d) = %d", len(sealed), len(frame), SealedSize(len(frame)))
	}
	return sealed
}

func wantMembers(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d members, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("member %d: %d bytes %.20q, want %d bytes %.20q", i, len(got[i]), got[i], len(want[i]), want[i])
		}
	}
}

func TestGroupRoundTrip(t *testing.T) {
	keys := goldenKeys(t)
	o := newOpener(t, keys)
	members := testMembers(1)
	for _, level := range allLevels {
		s := newSealer(t, keys, level)
		if s.Groups() != (level != LevelNone) {
			t.Errorf("level %d: Groups() = %v", level, s.Groups())
		}
		for _, kind := range allKinds {
			sealed := sealGroup(t, s, kind, members)
			if !IsGroup(sealed) || sealed[0] != 3 {
				t.Fatalf("level %d: version byte %d, want 3", level, sealed[0])
			}
			wantComp := byte(compZstd)
			if level == LevelNone {
				wantComp = compRaw // no group encoder: stored raw
			}
			if comp := manualOpenGroup(t, keys, 3, kind, bytes.Clone(sealed))[0]; comp != wantComp {
				t.Errorf("level %d: compression byte %d, want %d", level, comp, wantComp)
			}
			plain, got, ids, err := o.OpenGroup(nil, nil, nil, kind, sealed)
			if err != nil {
				t.Fatalf("level %d %s: %v", level, kind, err)
			}
			if !bytes.Equal(plain, groupPlain(members)) {
				t.Errorf("level %d %s: plaintext differs", level, kind)
			}
			wantMembers(t, got, members)
			if !slices.Equal(ids, testIDs(members)) {
				t.Errorf("level %d %s: IDs %v, want %v", level, kind, ids, testIDs(members))
			}
		}
	}
}

// TestGroupFrameLevel checks which encoder a group gets: SpeedFastest's
// under LevelAuto, the single blobs' under an explicit level.
func TestGroupFrameLevel(t *testing.T) {
	keys := goldenKeys(t)
	for _, level := range allLevels {
		s := newSealer(t, keys, level)
		switch {
		case level == LevelNone && (s.enc != nil || s.genc != nil):
			t.Errorf("level none: an encoder")
		case level == LevelAuto && (s.enc == nil || s.genc == nil || s.enc == s.genc):
			t.Errorf("level auto: groups and blobs share an encoder")
		case level > LevelAuto && (s.enc == nil || s.genc != s.enc):
			t.Errorf("level %d: groups and blobs use different encoders", level)
		}
	}
}

// TestGroupIncompressibleIsRaw checks that a group that does not compress
// is stored raw, as a blob would be, and opens.
func TestGroupIncompressibleIsRaw(t *testing.T) {
	keys := goldenKeys(t)
	members := testMembers(2)
	members = [][]byte{members[2], members[2][:100], {0}}
	sealed := sealGroup(t, newSealer(t, keys, LevelAuto), vaultapi.KindData, members)
	if comp := manualOpenGroup(t, keys, 3, vaultapi.KindData, bytes.Clone(sealed))[0]; comp != compRaw {
		t.Errorf("compression byte %d, want %d", comp, compRaw)
	}
	_, got, _, err := newOpener(t, keys).OpenGroup(nil, nil, nil, vaultapi.KindData, sealed)
	if err != nil {
		t.Fatal(err)
	}
	wantMembers(t, got, members)
}

func TestGroupAndBlobDoNotMix(t *testing.T) {
	keys := goldenKeys(t)
	h := NewHasher(keys)
	s, o := newSealer(t, keys, LevelAuto), newOpener(t, keys)
	members := testMembers(3)
	group := sealGroup(t, s, vaultapi.KindData, members)

	// A group is not a blob, whatever ID it is opened under, nor with its
	// version byte changed to a blob's.
	for _, id := range []vaultapi.ID{h.ID(members[0]), h.ID(groupPlain(members)), {}} {
		if _, err := o.Open(nil, vaultapi.KindData, id, bytes.Clone(group)); !errors.Is(err, ErrAuth) {
			t.Errorf("group opened as a blob %s: got %v, want ErrAuth", id.Short(), err)
		}
		asBlob := bytes.Clone(group)
		asBlob[0] = blobVersion
		if _, err := o.Open(nil, vaultapi.KindData, id, asBlob); !errors.Is(err, ErrAuth) {
			t.Errorf("group with version 1 opened as a blob %s: got %v, want ErrAuth", id.Short(), err)
		}
	}

	// A blob is not a group, nor with its version byte changed to a group's.
	plain := []byte("a single blob, not a group")
	blob, _, err := s.Seal(nil, vaultapi.KindData, h.ID(plain), plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	if IsGroup(blob) {
		t.Errorf("IsGroup(a blob) = true")
	}
	if _, _, _, err := o.OpenGroup(nil, nil, nil, vaultapi.KindData, bytes.Clone(blob)); !errors.Is(err, ErrAuth) {
		t.Errorf("blob opened as a group: got %v, want ErrAuth", err)
	}
	for _, v := range []byte{groupVersion, groupVersionV2} {
		b := bytes.Clone(blob)
		b[0] = v
		if _, _, _, err := o.OpenGroup(nil, nil, nil, vaultapi.KindData, b); !errors.Is(err, ErrAuth) {
			t.Errorf("blob with version %d opened as a group: got %v, want ErrAuth", v, err)
		}
	}
}

// TestGroupVersionsDoNotMix checks that a group of version 3 does not open
// as one of version 2, whose table has no IDs, nor one of version 2 as
// one of version 3: the version byte is in the additional data.
func TestGroupVersionsDoNotMix(t *testing.T) {
	keys := goldenKeys(t)
	o := newOpener(t, keys)
	v3 := sealGroup(t, newSealer(t, keys, LevelAuto), vaultapi.KindData, testMembers(7))
	v3[0] = groupVersionV2
	if _, _, _, err := o.OpenGroup(nil, nil, nil, vaultapi.KindData, v3); !errors.Is(err, ErrAuth) {
		t.Errorf("version 3 opened as version 2: got %v, want ErrAuth", err)
	}
	v2 := mustHex(t, string(checkGoldenRead(t, goldenGroupV2.file)))
	v2[0] = groupVersion
	if _, _, _, err := o.OpenGroup(nil, nil, nil, vaultapi.KindData, v2); !errors.Is(err, ErrAuth) {
		t.Errorf("version 2 opened as version 3: got %v, want ErrAuth", err)
	}
}

func TestOpenGroupRejectsWrongKindOrKey(t *testing.T) {
	keys := goldenKeys(t)
	s, o := newSealer(t, keys, LevelAuto), newOpener(t, keys)
	group := sealGroup(t, s, vaultapi.KindData, testMembers(4))
	for _, kind := range []vaultapi.Kind{vaultapi.KindTree, vaultapi.KindInfo, 0, 9, vaultapi.KindData | 0x80} {
		if _, _, _, err := o.OpenGroup(nil, nil, nil, kind, bytes.Clone(group)); !errors.Is(err, ErrAuth) {
			t.Errorf("kind %d: got %v, want ErrAuth", kind, err)
		}
	}
	if _, _, _, err := newOpener(t, &Keys{}).OpenGroup(nil, nil, nil, vaultapi.KindData, bytes.Clone(group)); !errors.Is(err, ErrAuth) {
		t.Errorf("wrong data key: got %v, want ErrAuth", err)
	}
	if _, err := s.SealGroup(nil, vaultapi.KindData|0x80, []byte{compRaw, 1}); err == nil {
		t.Errorf("sealing a group of kind 0x81: no error")
	}
}

func TestOpenGroupRejectsEveryBitFlip(t *testing.T) {
	keys := goldenKeys(t)
	o := newOpener(t, keys)
	members := [][]byte{[]byte("flip me "), bytes.Repeat([]byte("flip me too "), 10), {'!'}}
	for _, level := range []Level{LevelNone, LevelAuto} {
		sealed := sealGroup(t, newSealer(t, keys, level), vaultapi.KindData, members)
		for i := range sealed {
			for bit := range 8 {
				b := bytes.Clone(sealed)
				b[i] ^= 1 << bit
				if _, got, _, err := o.OpenGroup(nil, nil, nil, vaultapi.KindData, b); !errors.Is(err, ErrAuth) {
					t.Fatalf("level %d: bit %d of byte %d flipped: got %q, %v; want ErrAuth", level, bit, i, got, err)
				}
			}
		}
		for n := range len(sealed) {
			if _, _, _, err := o.OpenGroup(nil, nil, nil, vaultapi.KindData, bytes.Clone(sealed[:n])); !errors.Is(err, ErrAuth) {
				t.Fatalf("level %d: truncated to %d bytes: got %v, want ErrAuth", level, n, err)
			}
		}
		if _, _, _, err := o.OpenGroup(nil, nil, nil, vaultapi.KindData, append(bytes.Clone(sealed), 0)); !errors.Is(err, ErrAuth) {
			t.Fatalf("level %d: extended by a byte: got %v, want ErrAuth", level, err)
		}
	}
}

// TestOpenGroupRejectsBadTable seals, with the right key, frames whose
// group plaintext is wrong: authentic, so the error is ErrGroup, not
// ErrAuth.
func TestOpenGroupRejectsBadTable(t *testing.T) {
	keys := goldenKeys(t)
	s, o := newSealer(t, keys, LevelAuto), newOpener(t, keys)
	for _, frame := range [][]byte{
		{compRaw},
		append([]byte{compRaw}, rawGroup("abc", cat([]byte{1, 3}, idBytes(1))...)...),
		append([]byte{compRaw}, rawGroup("abc", cat([]byte{2, 1, 1}, idBytes(2))...)...),
		append([]byte{compRaw}, rawGroup("ab", 2, 1, 1)...), // version 2's table, without IDs
	} {
		sealed, err := s.SealGroup(nil, vaultapi.KindData, frame)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := o.OpenGroup(nil, nil, nil, vaultapi.KindData, sealed); !errors.Is(err, ErrGroup) || errors.Is(err, ErrAuth) {
			t.Errorf("frame %x: got %v, want ErrGroup", frame, err)
		}
	}
	sealed, err := s.SealGroup(nil, vaultapi.KindData, append([]byte{2}, rawGroup("ab", cat([]byte{2, 1, 1}, idBytes(2))...)...))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := o.OpenGroup(nil, nil, nil, vaultapi.KindData, sealed); err == nil || errors.Is(err, ErrAuth) {
		t.Errorf("unknown compression: got %v, want a non-auth error", err)
	}
}

// TestGroupFrameRefusesBadGroups checks that a writer cannot seal a group
// that readers refuse.
func TestGroupFrameRefusesBadGroups(t *testing.T) {
	s := newSealer(t, goldenKeys(t), LevelAuto)
	for _, tc := range []struct {
		name string
		lens []int
		ids  int
	}{
		{"one member", []int{3}, 1},
		{"an empty member", []int{1, 0, 2}, 3},
		{"2^16+1 members", slices.Repeat([]int{1}, maxMembers+1), maxMembers + 1},
		{"no IDs", []int{1, 2}, 0},
		{"an ID missing", []int{1, 2}, 1},
		{"an ID too many", []int{1, 2}, 3},
	} {
		n := 0
		for _, l := range tc.lens {
			n += l
		}
		plain := AppendGroupTable(bytes.Repeat([]byte{'m'}, n), tc.lens, make([]vaultapi.ID, tc.ids))
		if _, err := s.GroupFrame(nil, plain); !errors.Is(err, ErrGroup) {
			t.Errorf("%s: got %v, want ErrGroup", tc.name, err)
		}
	}
}

func TestOpenGroupReusesBuffers(t *testing.T) {
	keys := goldenKeys(t)
	s, o := newSealer(t, keys, LevelAuto), newOpener(t, keys)
	members := testMembers(5)
	sealed := sealGroup(t, s, vaultapi.KindData, members)
	dst := make([]byte, 7, 1<<20)
	ms := make([][]byte, 3, 16)
	idBuf := make([]vaultapi.ID, 2, 16)
	for round := range 2 {
		plain, got, ids, err := o.OpenGroup(dst, ms, idBuf, vaultapi.KindData, bytes.Clone(sealed))
		if err != nil {
			t.Fatal(err)
		}
		wantMembers(t, got, members)
		if &ids[0] != &idBuf[:1][0] || !slices.Equal(ids, testIDs(members)) {
			t.Errorf("round %d: the IDs are not in the IDs buffer, or differ", round)
		}
		if &plain[0] != &dst[:1][0] {
			t.Errorf("round %d: the plaintext is not in dst", round)
		}
		if &got[0] != &ms[:1][0] {
			t.Errorf("round %d: the members are not in the members buffer", round)
		}
		off := 0
		for i, m := range got {
			if &m[0] != &plain[off] || cap(m) != len(m) {
				t.Fatalf("round %d: member %d is not plain[%d:%d] (capacity %d)", round, i, off, off+len(m), cap(m))
			}
			off += len(m)
		}
	}
}

// rawGroup returns members followed by the table given byte by byte and
// its length.
func rawGroup(members string, table ...byte) []byte {
	b := append([]byte(members), table...)
	return binary.LittleEndian.AppendUint32(b, uint32(len(table)))
}

// idBytes returns n IDs' worth of bytes: 0x11 for the first, 0x22 for
// the second, and so on.
func idBytes(n int) []byte {
	var b []byte
	for i := range n {
		b = append(b, bytes.Repeat([]byte{byte(0x11 * (i%15 + 1))}, idSize)...)
	}
	return b
}

func TestSplitGroup(t *testing.T) {
	id1, id2 := vaultapi.ID(idBytes(1)), vaultapi.ID(idBytes(2)[idSize:])
	want := rawGroup("ab", cat([]byte{2, 1, 1}, idBytes(2))...)
	got, ids, err := SplitGroup(nil, nil, want)
	if err != nil {
		t.Fatal(err)
	}
	wantMembers(t, got, [][]byte{{'a'}, {'b'}})
	if !slices.Equal(ids, []vaultapi.ID{id1, id2}) {
		t.Errorf("IDs %v, want %v and %v", ids, id1, id2)
	}
	if enc := AppendGroupTable([]byte("ab"), []int{1, 1}, []vaultapi.ID{id1, id2}); !bytes.Equal(enc, want) {
		t.Errorf("AppendGroupTable: %x, want %x", enc, want)
	}
	// The example of doc/FORMAT.md, "Groups".
	example := "61 62 63 02 02 01" + strings.Repeat(" 11", 32) + strings.Repeat(" 22", 32) + " 43 00 00 00"
	if enc := AppendGroupTable([]byte("abc"), []int{2, 1}, []vaultapi.ID{id1, id2}); !bytes.Equal(enc, mustHex(t, example)) {
		t.Errorf("members ab and c: %x, want the example of doc/FORMAT.md", enc)
	}
	// A member's capacity ends with it: appending to one does not
	// overwrite the next.
	_ = append(got[0], 'x')
	if got[1][0] != 'b' {
		t.Errorf("appending to member 0 overwrote member 1")
	}

	// The most members a group may have, and one more.
	for _, n := range []int{maxMembers, maxMembers + 1} {
		plain := AppendGroupTable(bytes.Repeat([]byte{'m'}, n), slices.Repeat([]int{1}, n), make([]vaultapi.ID, n))
		got, ids, err := SplitGroup(nil, nil, plain)
		if n <= maxMembers && (err != nil || len(got) != n || len(ids) != n) {
			t.Errorf("%d members: %d, %d IDs, %v", n, len(got), len(ids), err)
		}
		if n > maxMembers && !errors.Is(err, ErrGroup) {
			t.Errorf("%d members: got %v, want ErrGroup", n, err)
		}
	}
}

// TestSplitGroupV2 checks the reader of version 2's table, which lists
// no IDs, on the example doc/FORMAT.md gives for it.
func TestSplitGroupV2(t *testing.T) {
	got, err := splitGroupV2(nil, mustHex(t, "61 62 63 02 02 01 03 00 00 00"))
	if err != nil {
		t.Fatal(err)
	}
	wantMembers(t, got, [][]byte{[]byte("ab"), []byte("c")})
	if _, err := splitGroupV2(nil, rawGroup("ab", cat([]byte{2, 1, 1}, idBytes(2))...)); !errors.Is(err, ErrGroup) {
		t.Errorf("version 3's table read as version 2's: got %v, want ErrGroup", err)
	}
}

// TestSplitGroupRejects runs both versions' readers on tables that
// neither may accept, and version 3's on tables whose IDs are wrong.
func TestSplitGroupRejects(t *testing.T) {
	overflow := append(bytes.Repeat([]byte{0xff}, 9), 0x02) // 2^64 and more
	tableLen := func(b []byte, n uint32) []byte {
		return binary.LittleEndian.AppendUint32(b[:len(b)-4], n)
	}
	ids := idBytes(2)
	type tc struct {
		name  string
		plain []byte
	}
	both := []tc{
		{"empty", nil},
		{"3 bytes", []byte{0, 0, 0}},
		{"empty table", rawGroup("ab")},
		{"table longer than the group", tableLen(rawGroup("ab", 2, 1, 1), 6)},
		{"table length 2^32-1", tableLen(rawGroup("ab", 2, 1, 1), 1<<32-1)},
		{"no members", rawGroup("", 0)},
		{"one member", rawGroup("abc", cat([]byte{1, 3}, idBytes(1))...)},
		{"2^16+1 members", rawGroup("ab", cat(varintBytes(maxMembers+1), []byte{1, 1})...)},
		{"2^64 members", rawGroup("ab", cat(overflow, []byte{1, 1})...)},
		{"member count cut short", rawGroup("ab", 0x80)},
		{"a member of 0 bytes", rawGroup("ab", cat([]byte{2, 0, 2}, ids)...)},
		{"lengths add up to more", rawGroup("ab", cat([]byte{2, 1, 2}, ids)...)},
		{"lengths add up to less", rawGroup("abc", cat([]byte{2, 1, 1}, ids)...)},
		{"fewer lengths than members", rawGroup("ab", 3, 1, 1)},
		{"length cut short", rawGroup("ab", 2, 1, 0x80)},
		{"length of 2^64", rawGroup("ab", cat([]byte{2, 1}, overflow)...)},
		{"member count not minimal", rawGroup("ab", cat([]byte{0x82, 0x00, 1, 1}, ids)...)},
		{"length not minimal", rawGroup("ab", cat([]byte{2, 0x81, 0x00, 1}, ids)...)},
	}
	for _, c := range append(both, []tc{
		{"no IDs", rawGroup("ab", 2, 1, 1)},
		{"one ID", rawGroup("ab", cat([]byte{2, 1, 1}, idBytes(1))...)},
		{"an ID cut short", rawGroup("ab", cat([]byte{2, 1, 1}, ids[:len(ids)-1])...)},
		{"a byte after the IDs", rawGroup("ab", cat([]byte{2, 1, 1}, ids, []byte{0})...)},
		{"three IDs", rawGroup("ab", cat([]byte{2, 1, 1}, idBytes(3))...)},
	}...) {
		got, ids, err := SplitGroup(nil, nil, c.plain)
		if !errors.Is(err, ErrGroup) {
			t.Errorf("%s (%x): got %d members and %d IDs, %v; want ErrGroup", c.name, c.plain, len(got), len(ids), err)
		}
	}
	for _, c := range append(both, tc{"bytes after the table", rawGroup("ab", 2, 1, 1, 0)}) {
		got, err := splitGroupV2(nil, c.plain)
		if !errors.Is(err, ErrGroup) {
			t.Errorf("version 2: %s (%x): got %d members, %v; want ErrGroup", c.name, c.plain, len(got), err)
		}
	}
}

func BenchmarkOpenGroup(b *testing.B) {
	keys := goldenKeys(b)
	s, o := newSealer(b, keys, LevelAuto), newOpener(b, keys)
	members := testMembers(6)
	sealed := sealGroup(b, s, vaultapi.KindData, members)
	buf := make([]byte, len(sealed))
	var plain []byte
	var ms [][]byte
	var ids []vaultapi.ID
	b.SetBytes(int64(len(groupPlain(members))))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, sealed)
		var err error
		plain, ms, ids, err = o.OpenGroup(plain, ms, ids, vaultapi.KindData, buf)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// TestNewerVersionNamed: a sealed blob or group of a version this reader
// does not know fails authentication, with a message that says why.
func TestNewerVersionNamed(t *testing.T) {
	keys := goldenKeys(t)
	o := newOpener(t, keys)
	sealed := sealGroup(t, newSealer(t, keys, LevelAuto), vaultapi.KindData, testMembers(8))
	sealed[0] = groupVersion + 1
	_, _, _, err := o.OpenGroup(nil, nil, nil, vaultapi.KindData, bytes.Clone(sealed))
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "newer Coffer") {
		t.Errorf("group of version %d: %v, want ErrAuth naming a newer Coffer", sealed[0], err)
	}
	if _, err := o.Open(nil, vaultapi.KindData, vaultapi.ID{}, sealed); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "newer Coffer") {
		t.Errorf("blob of version %d: %v, want ErrAuth naming a newer Coffer", sealed[0], err)
	}
}

// TestGroupFrameAllocates checks that framing a group, which a backup does
// for every 512 KiB of small files, allocates nothing once its buffer is
// large enough: checking the table collects no members or IDs.
func TestGroupFrameAllocates(t *testing.T) {
	s := newSealer(t, goldenKeys(t), LevelAuto)
	var members [][]byte
	for i := range 300 {
		members = append(members, fmt.Appendf(nil, "member %d of a group, with some text to compress\n", i))
	}
	plain := groupPlain(members)
	buf, err := s.GroupFrame(nil, plain)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() {
		if buf, err = s.GroupFrame(buf[:0], plain); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("GroupFrame: %.1f allocations, want 0", n)
	}
}
