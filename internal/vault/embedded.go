package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/local"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// EmbeddedMachine is the name of the one machine of an embedded vault.
const EmbeddedMachine = "local"

// Embedded is a vault in a local directory, used in-process.
type Embedded struct {
	*Vault
	Dir     string
	Machine vaultapi.Vault
	bolt    *meta.Bolt
}

// OpenEmbedded opens (creating if needed) an embedded vault in dir: its
// metadata in dir/meta.db and its packs in dir/data, or in st if given.
func OpenEmbedded(ctx context.Context, dir string, st storage.Storage, clock func() time.Time) (*Embedded, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vault directory: %w", err)
	}
	if st == nil {
		l, err := local.New(filepath.Join(dir, "data"))
		if err != nil {
			return nil, fmt.Errorf("vault storage: %w", err)
		}
		st = l
	}
	m, err := meta.OpenBolt(filepath.Join(dir, "meta.db"), func() string {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	})
	if err != nil {
		return nil, err
	}
	v := New(Config{Meta: m, Storage: st, Clock: clock, Embedded: true})
	mach, err := v.EnsureMachine(ctx, EmbeddedMachine)
	if err != nil {
		m.Close()
		return nil, err
	}
	mv, err := v.ForMachine(ctx, mach.ID)
	if err != nil {
		m.Close()
		return nil, err
	}
	return &Embedded{Vault: v, Dir: dir, Machine: mv, bolt: m}, nil
}

// Close closes the vault's metadata store, compacting its file when much
// of it is free space (see meta.Bolt.CloseCompact).
func (e *Embedded) Close() error { return e.bolt.CloseCompact() }
