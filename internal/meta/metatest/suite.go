package metatest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Run runs the conformance suite. newStore is called once per subtest and
// returns an empty store; the suite closes it.
func Run(t *testing.T, newStore func(t *testing.T) meta.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s meta.Store)
	}{
		{"VaultID", testVaultID},
		{"Machines", testMachines},
		{"UnknownMachine", testUnknownMachine},
		{"KeySlots", testKeySlots},
		{"Packs", testPacks},
		{"FirstLocationWins", testFirstLocationWins},
		{"HasBlobsBatch", testHasBlobsBatch},
		{"Sessions", testSessions},
		{"AddPoint", testAddPoint},
		{"AddPointMissing", testAddPointMissing},
		{"PointsSorted", testPointsSorted},
		{"MachineIsolation", testMachineIsolation},
		{"Concurrent", testConcurrent},
		{"CancelledContext", testCancelledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

// rng returns a seeded random source and logs the seed, so a failing run
// can be replayed.
func rng(t *testing.T) *rand.Rand {
	t.Helper()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func randomID(r *rand.Rand) vaultapi.ID {
	var id vaultapi.ID
	for i := 0; i < len(id); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			id[i+j] = byte(v >> (8 * j))
		}
	}
	return id
}

func randomIDs(r *rand.Rand, n int) []vaultapi.ID {
	ids := make([]vaultapi.ID, n)
	for i := range ids {
		ids[i] = randomID(r)
	}
	return ids
}

// packName returns a random, valid pack name (64 lower-case hex digits).
func packName(r *rand.Rand) string { return randomID(r).String() }

// entries lays out blobs of the given IDs back to back after an 8-byte
// header, as a pack trailer would list them.
func entries(r *rand.Rand, ids []vaultapi.ID) []vaultapi.PackEntry {
	out := make([]vaultapi.PackEntry, len(ids))
	off := uint64(8)
	for i, id := range ids {
		n := uint32(1 + r.IntN(1<<20))
		out[i] = vaultapi.PackEntry{ID: id, Kind: vaultapi.Kind(1 + r.IntN(3)), Offset: off, Length: n}
		off += uint64(n)
	}
	return out
}

func record(name string, es []vaultapi.PackEntry) meta.PackRecord {
	size := int64(8)
	for _, e := range es {
		size += int64(e.Length)
	}
	return meta.PackRecord{Name: name, Size: size + int64(len(es))*45 + 8, Blobs: len(es)}
}

// machine creates a machine and fails the test on error.
func machine(t *testing.T, s meta.Store, name string) meta.Machine {
	t.Helper()
	m := meta.Machine{ID: "id-" + name, Name: name, Created: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := s.CreateMachine(ctx, m); err != nil {
		t.Fatalf("CreateMachine(%q): %v", name, err)
	}
	return m
}

func addPack(t *testing.T, s meta.Store, machine string, p meta.PackRecord, es []vaultapi.PackEntry) {
	t.Helper()
	if err := s.AddPack(ctx, machine, p, es); err != nil {
		t.Fatalf("AddPack(%s, %s, %d entries): %v", machine, p.Name[:8], len(es), err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func wantHas(t *testing.T, s meta.Store, machine string, ids []vaultapi.ID, want []bool) {
	t.Helper()
	got, err := s.HasBlobs(ctx, machine, ids)
	if err != nil {
		t.Fatalf("HasBlobs(%d ids): %v", len(ids), err)
	}
	if len(got) != len(want) {
		t.Fatalf("HasBlobs(%d ids): got %d answers, want %d", len(ids), len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("HasBlobs: id %d (%s): got %v, want %v", i, ids[i].Short(), got[i], want[i])
		}
	}
}

// wantLocations checks Locate of the entries' IDs against where they are.
func wantLocations(t *testing.T, s meta.Store, machine, pack string, es []vaultapi.PackEntry) {
	t.Helper()
	ids := make([]vaultapi.ID, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	got, err := s.Locate(ctx, machine, ids)
	if err != nil {
		t.Fatalf("Locate(%d ids): %v", len(ids), err)
	}
	if len(got) != len(es) {
		t.Fatalf("Locate(%d ids): got %d locations", len(ids), len(got))
	}
	for i, e := range es {
		want := vaultapi.Location{ID: e.ID, Kind: e.Kind, Pack: pack, Offset: e.Offset, Length: e.Length}
		if got[i] != want {
			t.Fatalf("Locate: id %d: got %+v, want %+v", i, got[i], want)
		}
	}
}

func sortedIDs(ids []vaultapi.ID) []vaultapi.ID {
	out := slices.Clone(ids)
	slices.SortFunc(out, vaultapi.ID.Compare)
	return slices.Compact(out)
}

func wantIDSet(t *testing.T, what string, got, want []vaultapi.ID) {
	t.Helper()
	g, w := sortedIDs(got), sortedIDs(want)
	if !slices.Equal(g, w) {
		t.Fatalf("%s: got %d distinct IDs %s, want %d %s", what, len(g), short(g), len(w), short(w))
	}
}

func short(ids []vaultapi.ID) string {
	s := "["
	for i, id := range ids {
		if i == 6 {
			return s + " …]"
		}
		if i > 0 {
			s += " "
		}
		s += id.Short()
	}
	return s + "]"
}

func wantPoint(t *testing.T, got, want vaultapi.Point) {
	t.Helper()
	if got.ID != want.ID || got.Machine != want.Machine || !got.Time.Equal(want.Time) ||
		got.Info != want.Info || got.Stats != want.Stats {
		t.Fatalf("point: got %+v, want %+v", got, want)
	}
}

func point(r *rand.Rand, machine string, tm time.Time, info vaultapi.ID) vaultapi.Point {
	return vaultapi.Point{
		ID: fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()), Machine: machine, Time: tm, Info: info,
		Stats: vaultapi.Stats{Files: r.Uint64N(1e6), Dirs: 7, Bytes: r.Uint64(), BytesRead: 3,
			BytesAdded: 2, Blobs: 99, Errors: 1, DurationMS: 1234},
	}
}

// someTime is a time for records whose time does not matter.
var someTime = time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
