// Package repo is the agent's view of a vault with keys: it opens or
// creates the machine's keys from a key slot, and loads and decodes blobs,
// trees, manifests and recovery points. The archiver, restorer and mount
// build on it.
package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Repo is a vault opened with the machine's keys.
type Repo struct {
	Vault  vaultapi.Vault
	Keys   *format.Keys
	Hasher *format.Hasher
	Opener *format.Opener

	treeMu sync.Mutex
	trees  map[vaultapi.ID]*treeEntry

	// Slot is the key slot the keys were opened from (or made with); empty
	// for a Repo made by New.
	Slot vaultapi.KeySlot

	// Trees, if set, keeps sealed tree blobs in the agent's cache folder,
	// so that with a remote vault a backup's change detection reads the
	// previous point's trees locally instead of over the network.
	Trees *DiskCache
}

// MinPassphrase is the shortest passphrase accepted for new keys.
const MinPassphrase = 16

// SlotPassphrase is the ID of the passphrase key slot.
const SlotPassphrase = "passphrase"

// ErrNoKeys means the machine has no keys yet (no backup was ever made).
var ErrNoKeys = errors.New("this machine has no keys in the vault yet: run a first backup")

// ErrShortPassphrase refuses a passphrase that is too short for new keys.
var ErrShortPassphrase = fmt.Errorf("the passphrase must have at least %d characters", MinPassphrase)

// Open unlocks the machine's keys with secret (a passphrase, or a recovery
// key). With create set and no key slot in the vault, it makes new keys,
// wraps them with secret and stores the slot.
func Open(ctx context.Context, v vaultapi.Vault, secret []byte, create bool, rand io.Reader) (*Repo, bool, error) {
	slots, err := v.KeySlots(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("read key slots: %w", err)
	}
	if len(slots) == 0 {
		if !create {
			return nil, false, ErrNoKeys
		}
		if len([]rune(string(secret))) < MinPassphrase {
			return nil, false, ErrShortPassphrase
		}
		keys, err := format.NewKeys(rand)
		if err != nil {
			return nil, false, err
		}
		slot, err := format.WrapKeys(keys, secret, format.DefaultArgon2, rand)
		if err != nil {
			return nil, false, err
		}
		ks := vaultapi.KeySlot{ID: SlotPassphrase, Data: slot}
		if err := v.PutKeySlot(ctx, ks); err != nil {
			return nil, false, fmt.Errorf("store key slot: %w", err)
		}
		r, err := New(v, keys)
		if r != nil {
			r.Slot = ks
		}
		return r, true, err
	}
	keys, ks, err := unlock(slots, secret)
	if err != nil {
		return nil, false, err
	}
	r, err := New(v, keys)
	if r != nil {
		r.Slot = ks
	}
	return r, false, err
}

func unlock(slots []vaultapi.KeySlot, secret []byte) (*format.Keys, vaultapi.KeySlot, error) {
	// A recovery key opens recovery slots; anything else is a passphrase.
	rk, rkErr := format.ParseRecoveryKey(string(secret))
	for _, s := range slots {
		kdf := format.SlotKDF(s.Data)
		var k *format.Keys
		var err error
		switch {
		case kdf == "blake3" && rkErr == nil:
			k, err = format.UnwrapKeys(s.Data, rk)
		case kdf == "argon2id":
			k, err = format.UnwrapKeys(s.Data, secret)
		default:
			continue
		}
		if err == nil {
			return k, s, nil
		}
		if !errors.Is(err, format.ErrWrongSecret) {
			return nil, vaultapi.KeySlot{}, fmt.Errorf("key slot %s: %w", s.ID, err)
		}
	}
	return nil, vaultapi.KeySlot{}, format.ErrWrongSecret
}

// New returns a Repo for already unlocked keys.
func New(v vaultapi.Vault, keys *format.Keys) (*Repo, error) {
	op, err := format.NewOpener(keys)
	if err != nil {
		return nil, err
	}
	return &Repo{Vault: v, Keys: keys, Hasher: format.NewHasher(keys), Opener: op,
		trees: make(map[vaultapi.ID]*treeEntry)}, nil
}

// LoadBlob fetches, authenticates and decrypts one blob, appending its
// plaintext to buf[:0].
func (r *Repo) LoadBlob(ctx context.Context, kind vaultapi.Kind, id vaultapi.ID, buf []byte) ([]byte, error) {
	locs, err := r.Vault.Locate(ctx, []vaultapi.ID{id})
	if err != nil {
		return nil, err
	}
	return r.LoadAt(ctx, locs[0], kind, buf)
}

// LoadAt is LoadBlob for a known location.
func (r *Repo) LoadAt(ctx context.Context, loc vaultapi.Location, kind vaultapi.Kind, buf []byte) ([]byte, error) {
	if loc.Pack == "" {
		return nil, fmt.Errorf("%s blob %s: %w: the vault does not hold it", kind, loc.ID.Short(), vaultapi.ErrDamaged)
	}
	if loc.Kind != kind {
		return nil, fmt.Errorf("blob %s: %w: stored as %s, wanted %s", loc.ID.Short(), vaultapi.ErrDamaged, loc.Kind, kind)
	}
	rc, err := r.Vault.ReadPack(ctx, loc.Pack, int64(loc.Offset), int64(loc.Length))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", loc.ID.Short(), err)
	}
	sealed := make([]byte, loc.Length)
	_, err = io.ReadFull(rc, sealed)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", loc.ID.Short(), err)
	}
	return r.OpenBlob(kind, loc.ID, sealed, buf)
}

// OpenBlob decrypts a sealed blob and checks that its plaintext hashes to
// its ID.
func (r *Repo) OpenBlob(kind vaultapi.Kind, id vaultapi.ID, sealed, buf []byte) ([]byte, error) {
	plain, err := r.Opener.Open(buf, kind, id, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", vaultapi.ErrDamaged, err)
	}
	if r.Hasher.ID(plain) != id {
		return nil, fmt.Errorf("blob %s: %w: content does not match its ID", id.Short(), vaultapi.ErrDamaged)
	}
	return plain, nil
}

// openData decrypts a data chunk stored as a blob of its own. The blob's
// additional data holds its ID, so it authenticates only as that chunk;
// check also hashes the plaintext, to catch a writer that sealed other
// bytes than it hashed.
func (r *Repo) openData(id vaultapi.ID, sealed, buf []byte, check bool) ([]byte, error) {
	if check {
		return r.OpenBlob(vaultapi.KindData, id, sealed, buf)
	}
	plain, err := r.Opener.Open(buf, vaultapi.KindData, id, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", vaultapi.ErrDamaged, err)
	}
	return plain, nil
}

// Manifest loads a point's manifest.
func (r *Repo) Manifest(ctx context.Context, p vaultapi.Point) (*format.Manifest, error) {
	b, err := r.LoadBlob(ctx, vaultapi.KindInfo, p.Info, nil)
	if err != nil {
		return nil, fmt.Errorf("point %s: %w", p.ID[:8], err)
	}
	m, err := format.DecodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("point %s: %w: %v", p.ID[:8], vaultapi.ErrDamaged, err)
	}
	return m, nil
}

// ErrAmbiguous is returned for a point ID prefix matching several points.
var ErrAmbiguous = errors.New("ambiguous recovery point")

// ResolvePoint finds a point by "latest" or a unique ID prefix.
func ResolvePoint(ctx context.Context, v vaultapi.Vault, ref string) (vaultapi.Point, error) {
	points, err := v.Points(ctx)
	if err != nil {
		return vaultapi.Point{}, err
	}
	if len(points) == 0 {
		return vaultapi.Point{}, fmt.Errorf("no recovery points yet: %w", vaultapi.ErrNotFound)
	}
	if ref == "latest" || ref == "" {
		return points[len(points)-1], nil
	}
	var found []vaultapi.Point
	for _, p := range points {
		if strings.HasPrefix(p.ID, strings.ToLower(ref)) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return vaultapi.Point{}, fmt.Errorf("recovery point %q: %w (see coffer points)", ref, vaultapi.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return vaultapi.Point{}, fmt.Errorf("%w: %q matches %d points; give more digits", ErrAmbiguous, ref, len(found))
}

// ChangePassphrase re-wraps the keys under a new passphrase, replacing the
// passphrase slot, and returns the new slot; data is untouched.
func (r *Repo) ChangePassphrase(ctx context.Context, newPass []byte, rand io.Reader) (vaultapi.KeySlot, error) {
	if len([]rune(string(newPass))) < MinPassphrase {
		return vaultapi.KeySlot{}, ErrShortPassphrase
	}
	slot, err := format.WrapKeys(r.Keys, newPass, format.DefaultArgon2, rand)
	if err != nil {
		return vaultapi.KeySlot{}, err
	}
	ks := vaultapi.KeySlot{ID: SlotPassphrase, Data: slot}
	return ks, r.Vault.PutKeySlot(ctx, ks)
}

// AddRecoveryKey makes a recovery key, stores a slot it opens, and returns
// the printable key.
func (r *Repo) AddRecoveryKey(ctx context.Context, rand io.Reader) (string, string, error) {
	printable, key, err := format.NewRecoveryKey(rand)
	if err != nil {
		return "", "", err
	}
	slot, err := format.WrapKeys(r.Keys, key, format.KDF{Name: "blake3"}, rand)
	if err != nil {
		return "", "", err
	}
	slots, err := r.Vault.KeySlots(ctx)
	if err != nil {
		return "", "", err
	}
	id := fmt.Sprintf("recovery-%d", len(slots))
	if err := r.Vault.PutKeySlot(ctx, vaultapi.KeySlot{ID: id, Data: slot}); err != nil {
		return "", "", err
	}
	return printable, id, nil
}
