package meta_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/meta/metatest"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func newID() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("vault-%d", n) }
}

func openBolt(t testing.TB, path string) *meta.Bolt {
	t.Helper()
	s, err := meta.OpenBolt(path, newID())
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	return s
}

func TestBoltConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Store {
		return openBolt(t, filepath.Join(t.TempDir(), "meta.db"))
	})
}

// TestBoltReopen closes the store and opens the file again: everything
// written before Close is there.
func TestBoltReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	s := openBolt(t, path)
	vid := s.VaultID()
	m := meta.Machine{ID: "m1", Name: "host", Created: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := s.CreateMachine(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.PutKeySlot(ctx, m.ID, vaultapi.KeySlot{ID: "passphrase", Data: []byte("slot")}); err != nil {
		t.Fatal(err)
	}
	ids := make([]vaultapi.ID, 100)
	es := make([]vaultapi.PackEntry, len(ids))
	for i := range ids {
		binary.LittleEndian.PutUint32(ids[i][:], uint32(i+1))
		es[i] = vaultapi.PackEntry{ID: ids[i], Kind: vaultapi.KindData, Offset: 8 + uint64(i)*10, Length: 10}
	}
	pname := strings.Repeat("ab", 32)
	rec := meta.PackRecord{Name: pname, Size: 8 + 1000 + 100*45 + 8, Blobs: 100}
	if err := s.AddPack(ctx, m.ID, rec, es); err != nil {
		t.Fatal(err)
	}
	sess := vaultapi.Session{ID: "s1", Expires: time.Date(2031, 1, 1, 1, 0, 0, 0, time.UTC)}
	if err := s.PutSession(ctx, m.ID, sess); err != nil {
		t.Fatal(err)
	}
	p := vaultapi.Point{ID: "p1", Machine: m.ID, Time: time.Date(2031, 1, 1, 0, 30, 0, 0, time.UTC), Info: ids[0],
		Stats: vaultapi.Stats{Files: 3, Bytes: 1000}}
	if err := s.AddPoint(ctx, m.ID, p, ids); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openBolt(t, path)
	defer s.Close()
	if s.VaultID() != vid {
		t.Fatalf("VaultID after reopening: got %q, want %q", s.VaultID(), vid)
	}
	if got, err := s.MachineByName(ctx, "host"); err != nil || got.ID != m.ID {
		t.Fatalf("MachineByName after reopening: got %+v, %v", got, err)
	}
	if ks, err := s.KeySlots(ctx, m.ID); err != nil || len(ks) != 1 || string(ks[0].Data) != "slot" {
		t.Fatalf("KeySlots after reopening: got %+v, %v", ks, err)
	}
	if got, err := s.Pack(ctx, m.ID, pname); err != nil || got != rec {
		t.Fatalf("Pack after reopening: got %+v, %v; want %+v", got, err, rec)
	}
	locs, err := s.Locate(ctx, m.ID, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range locs {
		want := vaultapi.Location{ID: es[i].ID, Kind: es[i].Kind, Pack: pname, Offset: es[i].Offset, Length: es[i].Length}
		if l != want {
			t.Fatalf("Locate after reopening: %d: got %+v, want %+v", i, l, want)
		}
	}
	if got, err := s.Session(ctx, m.ID, "s1"); err != nil || !got.Expires.Equal(sess.Expires) {
		t.Fatalf("Session after reopening: got %+v, %v", got, err)
	}
	if got, err := s.Point(ctx, m.ID, "p1"); err != nil || !got.Time.Equal(p.Time) || got.Stats != p.Stats {
		t.Fatalf("Point after reopening: got %+v, %v; want %+v", got, err, p)
	}
	if refs, err := s.PointRefs(ctx, m.ID, "p1"); err != nil || len(refs) != len(ids) {
		t.Fatalf("PointRefs after reopening: got %d, %v; want %d", len(refs), err, len(ids))
	}
}

// TestBoltLocked opens the file a second time while it is open: the second
// open fails within its timeout and says why.
func TestBoltLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s := openBolt(t, path)
	defer s.Close()
	start := time.Now()
	s2, err := meta.OpenBolt(path, newID())
	took := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second OpenBolt of an open store: got no error")
	}
	if !strings.Contains(err.Error(), "another Coffer process") {
		t.Fatalf("second OpenBolt: got error %q, want one saying another Coffer process holds it", err)
	}
	if took > 10*time.Second {
		t.Fatalf("second OpenBolt took %v, want it to give up within seconds", took)
	}
}
