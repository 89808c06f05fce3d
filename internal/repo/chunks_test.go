package repo_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// sealGroup seals members as one group and returns it with their IDs.
func sealGroup(t testing.TB, r *repo.Repo, s *format.Sealer, members ...[]byte) ([]byte, []vaultapi.ID) {
	t.Helper()
	var ids []vaultapi.ID
	for _, m := range members {
		ids = append(ids, r.Hasher.ID(m))
	}
	return sealGroupAs(t, s, ids, members...), ids
}

// sealGroupAs seals members as one group whose table gives them ids,
// right or wrong.
func sealGroupAs(t testing.TB, s *format.Sealer, ids []vaultapi.ID, members ...[]byte) []byte {
	t.Helper()
	var plain []byte
	var lens []int
	for _, m := range members {
		plain = append(plain, m...)
		lens = append(lens, len(m))
	}
	frame, err := s.GroupFrame(nil, format.AppendGroupTable(plain, lens, ids))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.SealGroup(nil, vaultapi.KindData, frame)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// sealingRepo returns a repo of new keys, without a vault, and a sealer
// of those keys at the default level.
func sealingRepo(t testing.TB) (*repo.Repo, *format.Sealer) {
	t.Helper()
	keys, err := format.NewKeys(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.New(nil, keys)
	if err != nil {
		t.Fatal(err)
	}
	s, err := format.NewSealer(keys, rand.Reader, format.LevelAuto)
	if err != nil {
		t.Fatal(err)
	}
	return r, s
}

func TestChunkOpener(t *testing.T) {
	r, s := sealingRepo(t)
	var members [][]byte
	for i := range 5 {
		members = append(members, bytes.Repeat(fmt.Appendf(nil, "member %d ", i), 10+i*100))
	}
	group, ids := sealGroup(t, r, s, members...)
	single := bytes.Repeat([]byte("a blob of its own "), 50)
	singleID := r.Hasher.ID(single)
	sealedSingle, _, err := s.Seal(nil, vaultapi.KindData, singleID, single, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := func(id vaultapi.ID, off uint64, n int) vaultapi.Location {
		return vaultapi.Location{ID: id, Kind: vaultapi.KindData, Pack: "p", Offset: off, Length: uint32(n)}
	}

	o := r.NewChunkOpener()
	// The group's chunks in another order than stored; after the first,
	// the sealed bytes are not read (here: garbage).
	for n, i := range []int{3, 0, 4, 1, 2} {
		sealed := bytes.Clone(group)
		if n > 0 {
			sealed = []byte("not read")
		}
		got, err := o.Open(at(ids[i], 8, len(group)), sealed)
		if err != nil || !bytes.Equal(got, members[i]) {
			t.Fatalf("member %d: %q, %v", i, got, err)
		}
		// Opened tells the group's chunks once, when it was just opened.
		oids, oms := o.Opened()
		if n == 0 && len(oids) != len(ids) || n > 0 && oids != nil {
			t.Fatalf("Open %d: Opened gave %d chunks", n, len(oids))
		}
		for j, id := range oids {
			if k := slices.Index(ids, id); k < 0 || !bytes.Equal(oms[j], members[k]) {
				t.Fatalf("Opened: chunk %s is not the group's", id.Short())
			}
		}
		if !slices.IsSortedFunc(oids, vaultapi.ID.Compare) {
			t.Fatal("Opened: the IDs are not in ascending order")
		}
	}
	// A blob of its own, then the group again (opened afresh: its place
	// is remembered only until another blob is opened).
	if got, err := o.Open(at(singleID, 100, len(sealedSingle)), bytes.Clone(sealedSingle)); err != nil || !bytes.Equal(got, single) {
		t.Fatalf("single blob: %q, %v", got, err)
	}
	if _, err := o.Open(at(ids[2], 8, len(group)), []byte("not the group")); !errors.Is(err, vaultapi.ErrDamaged) {
		t.Fatalf("group forgotten, garbage given: %v", err)
	}
	if got, err := o.Open(at(ids[2], 8, len(group)), bytes.Clone(group)); err != nil || !bytes.Equal(got, members[2]) {
		t.Fatalf("group again: %q, %v", got, err)
	}
	// A chunk the index places in this group but that is not in it: the
	// vault handed back another group, or its index is wrong.
	if _, err := o.Open(at(singleID, 8, len(group)), nil); !errors.Is(err, vaultapi.ErrDamaged) {
		t.Fatalf("chunk not in the group: %v", err)
	}
	// The same group at another place is opened again, from its bytes.
	if got, err := o.Open(at(ids[1], 4000, len(group)), bytes.Clone(group)); err != nil || !bytes.Equal(got, members[1]) {
		t.Fatalf("group elsewhere: %q, %v", got, err)
	}
	// Damage anywhere in a group fails each of its chunks.
	for _, i := range []int{0, len(group) / 2, len(group) - 1} {
		bad := bytes.Clone(group)
		bad[i] ^= 0x10
		o := r.NewChunkOpener()
		for _, id := range ids[:2] {
			if _, err := o.Open(at(id, 8, len(bad)), bytes.Clone(bad)); !errors.Is(err, vaultapi.ErrDamaged) {
				t.Fatalf("byte %d flipped: %v", i, err)
			}
		}
	}
	// A blob's bytes are not a group's: a single blob stored where the
	// index expects one of the group's chunks fails.
	if _, err := r.NewChunkOpener().Open(at(ids[0], 8, len(sealedSingle)), bytes.Clone(sealedSingle)); !errors.Is(err, vaultapi.ErrDamaged) {
		t.Fatalf("single blob given for a group's chunk: %v", err)
	}
}

// TestChunkOpenerIDs checks what names a chunk: the ID a blob is sealed
// under and the ID a group lists for a member, both authenticated, are
// trusted without hashing; with Check, the opener hashes and refuses a
// chunk whose content does not match its ID (a writer that sealed other
// bytes than it hashed).
func TestChunkOpenerIDs(t *testing.T) {
	r, s := sealingRepo(t)
	at := func(id vaultapi.ID, n int) vaultapi.Location {
		return vaultapi.Location{ID: id, Kind: vaultapi.KindData, Pack: "p", Offset: 8, Length: uint32(n)}
	}
	a, b := []byte("member a, hashed as it should be"), []byte("member b, listed under another ID")
	wrong := r.Hasher.ID([]byte("not b"))
	group := sealGroupAs(t, s, []vaultapi.ID{r.Hasher.ID(a), wrong}, a, b)
	blob, _, err := s.Seal(nil, vaultapi.KindData, wrong, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what   string
		sealed []byte
	}{{"group", group}, {"blob", blob}} {
		got, err := r.NewChunkOpener().Open(at(wrong, len(tc.sealed)), bytes.Clone(tc.sealed))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: the chunk its sealed ID names: %q, %v", tc.what, got, err)
		}
		checking := r.NewChunkOpener()
		checking.Check = true
		if _, err := checking.Open(at(wrong, len(tc.sealed)), bytes.Clone(tc.sealed)); !errors.Is(err, vaultapi.ErrDamaged) {
			t.Errorf("%s: checked against its content: %v, want ErrDamaged", tc.what, err)
		}
		if tc.what == "group" {
			// Only the member that does not match fails: a is served,
			// and b under its true ID.
			if got, err := checking.Open(at(r.Hasher.ID(a), len(group)), nil); err != nil || !bytes.Equal(got, a) {
				t.Errorf("group, checked: the matching member: %q, %v", got, err)
			}
			if got, err := checking.Open(at(r.Hasher.ID(b), len(group)), nil); err != nil || !bytes.Equal(got, b) {
				t.Errorf("group, checked: the other member under its hash: %q, %v", got, err)
			}
		}
	}
	// A group that names one ID twice is refused: which member is it?
	twice := sealGroupAs(t, s, []vaultapi.ID{r.Hasher.ID(a), r.Hasher.ID(a)}, a, b)
	if _, err := r.NewChunkOpener().Open(at(r.Hasher.ID(a), len(twice)), twice); !errors.Is(err, vaultapi.ErrDamaged) {
		t.Errorf("a group naming an ID twice: %v, want ErrDamaged", err)
	}
}

// TestChunkOpenerGroupV2 opens the group of version 2 pinned by the
// format package's golden vectors (its members carry no IDs, so the opener
// hashes them), with the golden keys of that package.
func TestChunkOpenerGroupV2(t *testing.T) {
	var keys format.Keys
	for i := range 32 {
		keys.Data[i], keys.ID[i], keys.Chunker[i] = byte(i), byte(0x20+i), byte(0x40+i)
	}
	r, err := repo.New(nil, &keys)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join("..", "format", "testdata", "blob-group-v2.hex"))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := hex.DecodeString(strings.Join(strings.Fields(string(text)), ""))
	if err != nil {
		t.Fatal(err)
	}
	o := r.NewChunkOpener()
	for i, m := range [][]byte{[]byte("x"), []byte("Coffer golden group: member one, a small file.\n")} {
		id := r.Hasher.ID(m)
		l := vaultapi.Location{ID: id, Kind: vaultapi.KindData, Pack: "p", Offset: 8, Length: uint32(len(sealed))}
		if got, err := o.Open(l, bytes.Clone(sealed)); err != nil || !bytes.Equal(got, m) {
			t.Errorf("member %q: %q, %v", m, got, err)
		}
		if ids, _ := o.Opened(); i == 0 && (len(ids) != 4 || !slices.Contains(ids, id)) {
			t.Errorf("opened %d IDs, want the group's 4, with %s", len(ids), id.Short())
		}
	}
}
