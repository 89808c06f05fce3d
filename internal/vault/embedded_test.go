package vault_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultapi/vaulttest"
)

// TestEmbeddedReopen backs up into an embedded vault, closes it and opens
// the directory again: the same machine, its point, its slots and its
// pack are there.
func TestEmbeddedReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := vaulttest.NewClock(vaulttest.Start)
	e, err := vault.OpenEmbedded(ctx, dir, nil, clock.Now)
	if err != nil {
		t.Fatalf("OpenEmbedded: %v", err)
	}
	info, err := e.Machine.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Embedded || info.MachineName != vault.EmbeddedMachine {
		t.Fatalf("Info: got %+v, want the embedded machine %q", info, vault.EmbeddedMachine)
	}
	if err := e.Machine.PutKeySlot(ctx, vaultapi.KeySlot{ID: "passphrase", Data: []byte("slot")}); err != nil {
		t.Fatal(err)
	}
	// Data and metadata go in separate packs (doc/FORMAT.md).
	w := pack.NewWriter(nil)
	w.Add(vaultapi.KindData, vaultapi.ID{1}, []byte("first blob"))
	dataPack := w.Finish()
	w = pack.NewWriter(nil)
	w.Add(vaultapi.KindInfo, vaultapi.ID{2}, []byte("manifest"))
	metaPack := w.Finish()
	s, err := e.Machine.BeginBackup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []vaultapi.Pack{dataPack, metaPack} {
		if err := e.Machine.StorePack(ctx, s.ID, p); err != nil {
			t.Fatal(err)
		}
	}
	pt, err := e.Machine.Commit(ctx, s.ID, vaultapi.Commit{Info: vaultapi.ID{2}, Refs: []vaultapi.ID{{1}, {2}}})
	if err != nil {
		t.Fatal(err)
	}

	// While it is open, a second open of the directory fails and says why.
	if e2, err := vault.OpenEmbedded(ctx, dir, nil, clock.Now); err == nil {
		e2.Close()
		t.Fatal("second OpenEmbedded of an open vault: got no error")
	} else if !strings.Contains(err.Error(), "another Coffer process") {
		t.Fatalf("second OpenEmbedded: got %q, want it to say another Coffer process holds the vault", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e, err = vault.OpenEmbedded(ctx, dir, nil, clock.Now)
	if err != nil {
		t.Fatalf("OpenEmbedded again: %v", err)
	}
	defer e.Close()
	again, err := e.Machine.Info(ctx)
	if err != nil || again != info {
		t.Fatalf("Info after reopening: got %+v, %v; want %+v", again, err, info)
	}
	got, err := e.Machine.Point(ctx, pt.ID)
	if err != nil || !got.Time.Equal(pt.Time) || got.Info != pt.Info {
		t.Fatalf("Point after reopening: got %+v, %v; want %+v", got, err, pt)
	}
	slots, err := e.Machine.KeySlots(ctx)
	if err != nil || len(slots) != 1 || string(slots[0].Data) != "slot" {
		t.Fatalf("KeySlots after reopening: got %+v, %v", slots, err)
	}
	rc, err := e.Machine.ReadPack(ctx, dataPack.Name, 0, int64(len(dataPack.Data)))
	if err != nil {
		t.Fatalf("ReadPack after reopening: %v", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !slices.Equal(b, dataPack.Data) {
		t.Fatalf("ReadPack after reopening: got %d bytes, %v; want the %d bytes stored", len(b), err, len(dataPack.Data))
	}
}

func TestForMachineUnknown(t *testing.T) {
	ctx := context.Background()
	e, err := vault.OpenEmbedded(ctx, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.ForMachine(ctx, "no-such-machine"); !errors.Is(err, vaultapi.ErrNotFound) {
		t.Fatalf("ForMachine(unknown): got %v, want ErrNotFound", err)
	}
	if _, err := e.CreateMachine(ctx, vault.EmbeddedMachine); !errors.Is(err, vaultapi.ErrForbidden) {
		t.Fatalf("CreateMachine with a taken name: got %v, want ErrForbidden", err)
	}
	for _, name := range []string{"", strings.Repeat("n", 256), "a\nb", "a\x00", "\xff"} {
		if _, err := e.CreateMachine(ctx, name); !errors.Is(err, vaultapi.ErrBadRequest) {
			t.Fatalf("CreateMachine(%q): got %v, want ErrBadRequest", name, err)
		}
	}
	if _, err := e.CreateMachine(ctx, "Büro-PC 3"); err != nil {
		t.Fatalf("CreateMachine(%q): %v", "Büro-PC 3", err)
	}
}
