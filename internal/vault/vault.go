// Package vault is the vault core: machines, key slots, the blob index,
// packs, backup sessions and recovery points, over a metadata store and a
// blob storage. It never sees a key or plaintext and never imports the
// agent's data format. ForMachine gives the agent⇄vault contract
// (vaultapi.Vault) as one machine sees it; the embedded vault is exactly
// this, in-process, and the HTTPS server carries the same calls.
package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Version is the vault software version reported by Info.
const Version = "0.1.0"

// Config holds the vault's parts. Clock and Rand are injected so tests
// control time and randomness.
type Config struct {
	Meta         meta.Store
	Storage      storage.Storage
	Clock        func() time.Time // default time.Now
	Rand         io.Reader        // default crypto/rand
	Log          *slog.Logger     // default discards
	SessionLease time.Duration    // default 30 minutes
	Embedded     bool
}

// Vault is the vault core.
type Vault struct {
	meta     meta.Store
	st       storage.Storage
	clock    func() time.Time
	rand     io.Reader
	log      *slog.Logger
	lease    time.Duration
	embedded bool
	sessions keyLock // held while a session commits or ends
	retain   keyLock // held while retention runs on a machine
}

// New returns a vault over cfg's store and storage.
func New(cfg Config) *Vault {
	v := &Vault{meta: cfg.Meta, st: cfg.Storage, clock: cfg.Clock, rand: cfg.Rand, log: cfg.Log,
		lease: cfg.SessionLease, embedded: cfg.Embedded}
	if v.clock == nil {
		v.clock = time.Now
	}
	if v.rand == nil {
		v.rand = rand.Reader
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.lease == 0 {
		v.lease = 30 * time.Minute
	}
	return v
}

// now reads the clock in UTC, to the microsecond: every metadata store
// keeps that much, so a time reads back exactly as it was stamped.
func (v *Vault) now() time.Time { return v.clock().UTC().Truncate(time.Microsecond) }

// Meta returns the metadata store (for operator commands).
func (v *Vault) Meta() meta.Store { return v.meta }

// NewID returns 16 random bytes in hex.
func (v *Vault) NewID() string {
	b := make([]byte, 16)
	if _, err := io.ReadFull(v.rand, b); err != nil {
		panic(fmt.Sprintf("vault: random source failed: %v", err))
	}
	return hex.EncodeToString(b)
}

// CreateMachine registers a machine under a unique name.
func (v *Vault) CreateMachine(ctx context.Context, name string) (meta.Machine, error) {
	if !validMachineName(name) {
		return meta.Machine{}, fmt.Errorf("%w: machine name %q: want 1-255 bytes of UTF-8 without control characters",
			vaultapi.ErrBadRequest, name)
	}
	m := meta.Machine{ID: v.NewID(), Name: name, Created: v.now()}
	if err := v.meta.CreateMachine(ctx, m); err != nil {
		return meta.Machine{}, mapErr(err)
	}
	v.log.Info("machine registered", "machine", m.ID, "name", name)
	return m, nil
}

func validMachineName(name string) bool {
	if name == "" || len(name) > 255 || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// EnsureMachine returns the machine of that name, creating it if needed.
func (v *Vault) EnsureMachine(ctx context.Context, name string) (meta.Machine, error) {
	m, err := v.meta.MachineByName(ctx, name)
	if errors.Is(err, meta.ErrNotFound) {
		m, err = v.CreateMachine(ctx, name)
		if errors.Is(err, vaultapi.ErrForbidden) { // lost a race: it exists now
			return v.meta.MachineByName(ctx, name)
		}
	}
	return m, err
}

// ForMachine returns the contract as the given machine sees it.
func (v *Vault) ForMachine(ctx context.Context, machineID string) (vaultapi.Vault, error) {
	m, err := v.meta.Machine(ctx, machineID)
	if err != nil {
		return nil, mapErr(err)
	}
	return &machine{v: v, m: m}, nil
}

// PackObject is the storage name of a machine's pack.
func PackObject(machineID, name string) string {
	return "packs/" + machineID + "/" + name[:2] + "/" + name
}

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, meta.ErrNotFound), errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("%w: %v", vaultapi.ErrNotFound, err)
	case errors.Is(err, meta.ErrExists):
		return fmt.Errorf("%w: %v", vaultapi.ErrForbidden, err)
	}
	return err
}

// machine is one machine's view of the vault.
type machine struct {
	v *Vault
	m meta.Machine
}

var _ vaultapi.Vault = (*machine)(nil)

func (m *machine) Info(ctx context.Context) (vaultapi.Info, error) {
	return vaultapi.Info{VaultID: m.v.meta.VaultID(), MachineID: m.m.ID, MachineName: m.m.Name,
		Version: Version, Embedded: m.v.embedded}, nil
}

func (m *machine) KeySlots(ctx context.Context) ([]vaultapi.KeySlot, error) {
	s, err := m.v.meta.KeySlots(ctx, m.m.ID)
	return s, mapErr(err)
}

func (m *machine) PutKeySlot(ctx context.Context, s vaultapi.KeySlot) error {
	if !vaultapi.ValidSlotID(s.ID) || len(s.Data) == 0 || len(s.Data) > vaultapi.MaxKeySlot {
		return fmt.Errorf("%w: key slot needs an ID of 1-64 letters, digits, '.', '_' or '-' (not only dots) and 1 byte to 64 KiB of data",
			vaultapi.ErrBadRequest)
	}
	return mapErr(m.v.meta.PutKeySlot(ctx, m.m.ID, s))
}

func (m *machine) BeginBackup(ctx context.Context) (vaultapi.Session, error) {
	s := vaultapi.Session{ID: m.v.NewID(), Expires: m.v.now().Add(m.v.lease)}
	if err := m.v.meta.PutSession(ctx, m.m.ID, s); err != nil {
		return vaultapi.Session{}, mapErr(err)
	}
	return s, nil
}

func (m *machine) session(ctx context.Context, id string) (vaultapi.Session, error) {
	s, err := m.v.meta.Session(ctx, m.m.ID, id)
	if errors.Is(err, meta.ErrNotFound) || err == nil && !m.v.clock().Before(s.Expires) {
		return s, fmt.Errorf("session %s: %w", id, vaultapi.ErrNoSession)
	}
	return s, mapErr(err)
}

func (m *machine) RenewSession(ctx context.Context, id string) (vaultapi.Session, error) {
	s, err := m.session(ctx, id)
	if err != nil {
		return s, err
	}
	s.Expires = m.v.now().Add(m.v.lease)
	return s, mapErr(m.v.meta.PutSession(ctx, m.m.ID, s))
}

func (m *machine) EndSession(ctx context.Context, id string) error {
	defer m.v.sessions.lock(m.m.ID + "/" + id)()
	return mapErr(m.v.meta.DeleteSession(ctx, m.m.ID, id))
}

func (m *machine) HasBlobs(ctx context.Context, ids []vaultapi.ID) ([]bool, error) {
	r, err := m.v.meta.HasBlobs(ctx, m.m.ID, ids)
	return r, mapErr(err)
}

func (m *machine) StorePack(ctx context.Context, sessionID string, p vaultapi.Pack) error {
	if _, err := m.session(ctx, sessionID); err != nil {
		return err
	}
	if !pack.ValidName(p.Name) || pack.Name(p.Data) != p.Name {
		return fmt.Errorf("%w: pack bytes do not match the name %q", vaultapi.ErrBadRequest, p.Name)
	}
	entries, err := pack.Parse(p.Data)
	if err != nil {
		return fmt.Errorf("%w: %v", vaultapi.ErrBadRequest, err)
	}
	if len(entries) != len(p.Entries) {
		return fmt.Errorf("%w: pack lists %d blobs, the request %d", vaultapi.ErrBadRequest, len(entries), len(p.Entries))
	}
	for i := range entries {
		if entries[i] != p.Entries[i] {
			return fmt.Errorf("%w: blob %d of the request differs from the pack trailer", vaultapi.ErrBadRequest, i)
		}
	}
	if ok, err := m.v.meta.HasPack(ctx, m.m.ID, p.Name); err != nil || ok {
		return mapErr(err)
	}
	obj := PackObject(m.m.ID, p.Name)
	err = m.v.st.Put(ctx, obj, bytes.NewReader(p.Data), int64(len(p.Data)), storage.PutOptions{IfAbsent: true, Consumed: p.Release})
	if err != nil && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("store pack %s: %w", p.Name[:12], err)
	}
	rec := meta.PackRecord{Name: p.Name, Size: int64(len(p.Data)), Blobs: len(entries)}
	if err := m.v.meta.AddPack(ctx, m.m.ID, rec, entries); err != nil {
		return fmt.Errorf("index pack %s: %w", p.Name[:12], err)
	}
	return nil
}

func (m *machine) Commit(ctx context.Context, sessionID string, c vaultapi.Commit) (vaultapi.Point, error) {
	// One commit per session: the check of the session, the point and the
	// end of the session happen under the session's lock. (A vault of
	// several instances needs the store to do this in one transaction.)
	defer m.v.sessions.lock(m.m.ID + "/" + sessionID)()
	if _, err := m.session(ctx, sessionID); err != nil {
		return vaultapi.Point{}, err
	}
	if c.Info.IsZero() {
		return vaultapi.Point{}, fmt.Errorf("%w: commit names no manifest", vaultapi.ErrBadRequest)
	}
	// The manifest is referenced too. Agents send the references sorted;
	// putting it in its place keeps them so, and spares the store a sort.
	refs := c.Refs
	if i, found := slices.BinarySearchFunc(refs, c.Info, vaultapi.ID.Compare); !found && !slices.Contains(refs, c.Info) {
		refs = slices.Insert(refs[:len(refs):len(refs)], i, c.Info)
	}
	p := vaultapi.Point{ID: m.v.NewID(), Machine: m.m.ID, Time: m.v.now(), Info: c.Info, Stats: c.Stats, OnDemand: c.OnDemand}
	if err := m.v.meta.AddPoint(ctx, m.m.ID, p, refs); err != nil {
		return vaultapi.Point{}, mapErr(err)
	}
	// The point is made: end the session even if the caller has gone.
	if err := m.v.meta.DeleteSession(context.WithoutCancel(ctx), m.m.ID, sessionID); err != nil {
		m.v.log.Warn("end session after commit", "err", err)
	}
	m.v.log.Info("recovery point committed", "machine", m.m.ID, "point", p.ID, "blobs", len(refs))
	// Retention runs on the vault after each commit; its failure does not
	// undo the point (the periodic run retries).
	if _, err := m.v.ApplyRetention(context.WithoutCancel(ctx), m.m.ID); err != nil {
		m.v.log.Warn("retention after commit", "machine", m.m.ID, "err", err)
	}
	return p, nil
}

func (m *machine) Points(ctx context.Context) ([]vaultapi.Point, error) {
	return m.v.points(ctx, m.m.ID, false)
}

func (m *machine) Point(ctx context.Context, id string) (vaultapi.Point, error) {
	p, err := m.v.meta.Point(ctx, m.m.ID, id)
	if err == nil && !p.Deleted.IsZero() {
		return vaultapi.Point{}, fmt.Errorf("%w: point %s was deleted by retention (an operator can undelete it)", vaultapi.ErrNotFound, id)
	}
	return p, mapErr(err)
}

func (m *machine) Locate(ctx context.Context, ids []vaultapi.ID) ([]vaultapi.Location, error) {
	l, err := m.v.meta.Locate(ctx, m.m.ID, ids)
	return l, mapErr(err)
}

func (m *machine) ReadPack(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if !pack.ValidName(name) || off < 0 || length < 0 {
		return nil, fmt.Errorf("%w: pack %q range %d+%d", vaultapi.ErrBadRequest, name, off, length)
	}
	rec, err := m.v.meta.Pack(ctx, m.m.ID, name)
	if err != nil {
		return nil, mapErr(err)
	}
	if off > rec.Size || length > rec.Size-off {
		return nil, fmt.Errorf("%w: range %d+%d outside pack %s of %d bytes", vaultapi.ErrBadRequest, off, length, name[:12], rec.Size)
	}
	rc, err := m.v.st.Get(ctx, PackObject(m.m.ID, name), off, length)
	return rc, mapErr(err)
}
