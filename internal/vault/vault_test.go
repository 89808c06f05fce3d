package vault_test

import (
	"context"
	"testing"

	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/memory"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultapi/vaulttest"
)

// embedded returns a harness for the embedded vault in a temporary
// directory, its packs in the storage newStorage returns (nil: the local
// directory driver in the vault's directory).
func embedded(newStorage func() storage.Storage) vaulttest.Harness {
	return vaulttest.Harness{New: func(t *testing.T) vaulttest.Env {
		t.Helper()
		ctx := context.Background()
		clock := vaulttest.NewClock(vaulttest.Start)
		var st storage.Storage
		if newStorage != nil {
			st = newStorage()
		}
		e, err := vault.OpenEmbedded(ctx, t.TempDir(), st, clock.Now)
		if err != nil {
			t.Fatalf("OpenEmbedded: %v", err)
		}
		t.Cleanup(func() {
			if err := e.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		mb, err := e.CreateMachine(ctx, "other-machine")
		if err != nil {
			t.Fatalf("CreateMachine: %v", err)
		}
		b, err := e.ForMachine(ctx, mb.ID)
		if err != nil {
			t.Fatalf("ForMachine: %v", err)
		}
		return vaulttest.Env{A: e.Machine, B: b, Now: clock.Now, Advance: clock.Advance,
			SetPolicy: func(m vaultapi.Info, s policy.Spec) error {
				_, err := e.SetPolicy(ctx, m.MachineID, s)
				return err
			},
			Undelete: func(m vaultapi.Info, id string) error { return e.UndeletePoint(ctx, m.MachineID, id) },
		}
	}}
}

func TestConformanceLocal(t *testing.T) {
	vaulttest.Run(t, embedded(nil))
}

func TestConformanceMemory(t *testing.T) {
	vaulttest.Run(t, embedded(func() storage.Storage { return memory.New(nil) }))
}
