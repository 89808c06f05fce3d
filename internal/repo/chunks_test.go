package repo_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// sealGroup seals members as one group and returns it with their IDs.
func sealGroup(t testing.TB, r *repo.Repo, s *format.Sealer, members ...[]byte) ([]byte, []vaultapi.ID) {
	t.Helper()
	var plain []byte
	var lens []int
	var ids []vaultapi.ID
	for _, m := range members {
		plain = append(plain, m...)
		lens = append(lens, len(m))
		ids = append(ids, r.Hasher.ID(m))
	}
	frame, err := s.GroupFrame(nil, format.AppendGroupTable(plain, lens))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.SealGroup(nil, vaultapi.KindData, frame)
	if err != nil {
		t.Fatal(err)
	}
	return sealed, ids
}

func TestChunkOpener(t *testing.T) {
	keys, _ := format.NewKeys(rand.Reader)
	r, err := repo.New(nil, keys)
	if err != nil {
		t.Fatal(err)
	}
	s, err := format.NewSealer(keys, rand.Reader, format.LevelAuto)
	if err != nil {
		t.Fatal(err)
	}
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
