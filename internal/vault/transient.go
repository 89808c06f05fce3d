package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/local"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// ErrReadOnly refuses a change through a Transient vault.
var ErrReadOnly = errors.New("read-only view of the vault")

// Transient is a read-only view of an embedded vault for long-lived
// readers such as the instant-restore mount. The metadata store can be
// open in one process at a time, so a Transient opens it for each call
// and closes it right after: backups keep running while a mount is open.
// Packs are read straight from storage, without the metadata store.
// A call made while a backup holds the store waits for it (up to ctx).
type Transient struct {
	dir       string
	st        storage.Storage
	machineID string
	mu        sync.Mutex // one opening of the store at a time in this process
}

// OpenTransient opens the embedded vault in dir for reading.
func OpenTransient(ctx context.Context, dir string) (*Transient, error) {
	st, err := local.New(filepath.Join(dir, "data"))
	if err != nil {
		return nil, fmt.Errorf("vault storage: %w", err)
	}
	t := &Transient{dir: dir, st: st}
	err = t.with(ctx, func(v vaultapi.Vault) error {
		info, err := v.Info(ctx)
		t.machineID = info.MachineID
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// with opens the vault, calls fn and closes the vault, retrying the
// opening while another process holds the store.
func (t *Transient) with(ctx context.Context, fn func(v vaultapi.Vault) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		e, err := OpenEmbedded(ctx, t.dir, t.st, nil)
		if err != nil && strings.Contains(err.Error(), "another Coffer process holds it") {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (%v)", err, ctx.Err())
			case <-time.After(100 * time.Millisecond):
				continue
			}
		}
		if err != nil {
			return err
		}
		err = fn(e.Machine)
		if cerr := e.Close(); err == nil {
			err = cerr
		}
		return err
	}
}

func (t *Transient) Info(ctx context.Context) (i vaultapi.Info, err error) {
	err = t.with(ctx, func(v vaultapi.Vault) error { i, err = v.Info(ctx); return err })
	return i, err
}

func (t *Transient) KeySlots(ctx context.Context) (s []vaultapi.KeySlot, err error) {
	err = t.with(ctx, func(v vaultapi.Vault) error { s, err = v.KeySlots(ctx); return err })
	return s, err
}

func (t *Transient) Points(ctx context.Context) (p []vaultapi.Point, err error) {
	err = t.with(ctx, func(v vaultapi.Vault) error { p, err = v.Points(ctx); return err })
	return p, err
}

func (t *Transient) Point(ctx context.Context, id string) (p vaultapi.Point, err error) {
	err = t.with(ctx, func(v vaultapi.Vault) error { p, err = v.Point(ctx, id); return err })
	return p, err
}

func (t *Transient) Locate(ctx context.Context, ids []vaultapi.ID) (l []vaultapi.Location, err error) {
	err = t.with(ctx, func(v vaultapi.Vault) error { l, err = v.Locate(ctx, ids); return err })
	return l, err
}

// ReadPack reads from storage directly: the locations come from Locate,
// which only names this machine's packs.
func (t *Transient) ReadPack(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if !pack.ValidName(name) || off < 0 || length < 0 {
		return nil, fmt.Errorf("%w: pack %q range %d+%d", vaultapi.ErrBadRequest, name, off, length)
	}
	rc, err := t.st.Get(ctx, PackObject(t.machineID, name), off, length)
	return rc, mapErr(err)
}

func (t *Transient) PutKeySlot(context.Context, vaultapi.KeySlot) error { return ErrReadOnly }
func (t *Transient) BeginBackup(context.Context) (vaultapi.Session, error) {
	return vaultapi.Session{}, ErrReadOnly
}
func (t *Transient) RenewSession(context.Context, string) (vaultapi.Session, error) {
	return vaultapi.Session{}, ErrReadOnly
}
func (t *Transient) EndSession(context.Context, string) error { return ErrReadOnly }
func (t *Transient) HasBlobs(ctx context.Context, ids []vaultapi.ID) (h []bool, err error) {
	err = t.with(ctx, func(v vaultapi.Vault) error { h, err = v.HasBlobs(ctx, ids); return err })
	return h, err
}
func (t *Transient) StorePack(context.Context, string, vaultapi.Pack) error { return ErrReadOnly }
func (t *Transient) Commit(context.Context, string, vaultapi.Commit) (vaultapi.Point, error) {
	return vaultapi.Point{}, ErrReadOnly
}

var _ vaultapi.Vault = (*Transient)(nil)
