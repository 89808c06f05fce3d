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
// open in one process at a time, so a Transient opens it only while calls
// come (closing it after HoldIdle without one) and never keeps it longer
// than HoldMax at a stretch, then lets go for a moment: a backup that
// starts meanwhile gets the store within its 2 s wait. Packs are read
// straight from storage, without the metadata store. A call made while a
// backup holds the store waits for it (up to ctx).
type Transient struct {
	dir       string
	st        storage.Storage
	machineID string

	mu       sync.Mutex // one opening of the store at a time in this process
	e        *Embedded
	openedAt time.Time
	idle     *time.Timer
}

// How long a Transient keeps the store open: at most HoldMax at a stretch,
// and HoldIdle after the last call. After HoldMax it waits HoldGap before
// opening again.
const (
	HoldMax  = time.Second
	HoldIdle = 200 * time.Millisecond
	HoldGap  = 150 * time.Millisecond
)

// OpenTransient opens the embedded vault in dir, whose packs st holds (nil
// for the local directory DIR/data), for reading.
func OpenTransient(ctx context.Context, dir string, st storage.Storage) (*Transient, error) {
	if st == nil {
		l, err := local.New(filepath.Join(dir, "data"))
		if err != nil {
			return nil, fmt.Errorf("vault storage: %w", err)
		}
		st = l
	}
	t := &Transient{dir: dir, st: st}
	err := t.with(ctx, func(v vaultapi.Vault) error {
		info, err := v.Info(ctx)
		t.machineID = info.MachineID
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// with calls fn on the open vault, opening it first if needed (retrying
// while another process holds the store).
func (t *Transient) with(ctx context.Context, fn func(v vaultapi.Vault) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.e != nil && time.Since(t.openedAt) > HoldMax {
		t.closeLocked()
		time.Sleep(HoldGap) // a backup waiting for the store gets it now
	}
	for t.e == nil {
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
		t.e, t.openedAt = e, time.Now()
	}
	err := fn(t.e.Machine)
	if t.idle == nil {
		t.idle = time.AfterFunc(HoldIdle, func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.closeLocked()
		})
	} else {
		t.idle.Reset(HoldIdle)
	}
	return err
}

func (t *Transient) closeLocked() {
	if t.e != nil {
		t.e.Close()
		t.e = nil
	}
}

// Close closes the store if it is open.
func (t *Transient) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idle != nil {
		t.idle.Stop()
	}
	t.closeLocked()
	return nil
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

func (t *Transient) Policy(ctx context.Context) (p vaultapi.Policy, err error) {
	err = t.with(ctx, func(v vaultapi.Vault) error { p, err = v.Policy(ctx); return err })
	return p, err
}
func (t *Transient) ReportJob(context.Context, vaultapi.Job) error { return ErrReadOnly }
func (t *Transient) Jobs(ctx context.Context) (j []vaultapi.Job, err error) {
	err = t.with(ctx, func(v vaultapi.Vault) error { j, err = v.Jobs(ctx); return err })
	return j, err
}
func (t *Transient) DeletedPoints(ctx context.Context) (p []vaultapi.Point, err error) {
	err = t.with(ctx, func(v vaultapi.Vault) error { p, err = v.DeletedPoints(ctx); return err })
	return p, err
}
