// Package localkeys keeps a machine's unlocked keys in the agent's home
// folder, so that once the passphrase has opened them on this machine,
// scheduled and repeated commands run without it and without the Argon2id
// derivation (as the MARS agent keeps its key locally after registration).
//
// A kept key file is bound to the key slot it was opened from: its name is
// a hash of the slot's bytes. When that slot leaves the vault (the
// passphrase changed, the vault was made anew), the file no longer matches
// any slot and is not used. The file also carries a checksum, so a damaged
// file is refused instead of yielding wrong keys. The vault never sees the
// file; it is as secret as the data on the machine itself, and is written
// with mode 0600 in a 0700 folder.
package localkeys

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/coffer-backup/coffer/internal/atomicfile"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// version of the key file's JSON.
const version = 1

// suffix ends every key file's name.
const suffix = ".key"

// Dir is the folder holding the kept keys (COFFER_HOME/keys).
type Dir string

// file is a kept key file.
type file struct {
	Version int    `json:"v"`
	Slot    string `json:"slot"`  // hex SHA-256 of the slot's bytes
	Keys    []byte `json:"keys"`  // format.Keys, binary
	Check   string `json:"check"` // hex SHA-256 of slot hash and keys
}

// slotHash names a slot by its bytes.
func slotHash(slot []byte) string {
	h := sha256.Sum256(slot)
	return hex.EncodeToString(h[:])
}

func check(slot string, keys []byte) string {
	h := sha256.New()
	h.Write([]byte("coffer kept keys v1\x00"))
	h.Write([]byte(slot))
	h.Write(keys)
	return hex.EncodeToString(h.Sum(nil))
}

func (d Dir) path(hash string) string {
	return filepath.Join(string(d), hash[:32]+suffix)
}

// ErrDamaged means a kept key file exists for one of the slots but cannot
// be trusted; the caller falls back to the passphrase.
var ErrDamaged = errors.New("kept key file is damaged")

// Load returns the kept keys that belong to one of slots, with that slot,
// or nil keys when none is kept here.
func (d Dir) Load(slots []vaultapi.KeySlot) (*format.Keys, vaultapi.KeySlot, error) {
	for _, s := range slots {
		hash := slotHash(s.Data)
		b, err := os.ReadFile(d.path(hash))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, vaultapi.KeySlot{}, fmt.Errorf("kept keys: %w", err)
		}
		var f file
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, vaultapi.KeySlot{}, fmt.Errorf("%w: %s: %v", ErrDamaged, d.path(hash), err)
		}
		if f.Version != version || f.Slot != hash || f.Check != check(f.Slot, f.Keys) {
			return nil, vaultapi.KeySlot{}, fmt.Errorf("%w: %s: checksum or version mismatch", ErrDamaged, d.path(hash))
		}
		var k format.Keys
		if err := k.UnmarshalBinary(f.Keys); err != nil {
			return nil, vaultapi.KeySlot{}, fmt.Errorf("%w: %s: %v", ErrDamaged, d.path(hash), err)
		}
		return &k, s, nil
	}
	return nil, vaultapi.KeySlot{}, nil
}

// Save keeps keys, opened from slot, in the folder (made 0700 if missing).
func (d Dir) Save(slot []byte, keys *format.Keys) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("kept keys: %w", err)
	}
	kb, _ := keys.MarshalBinary()
	hash := slotHash(slot)
	b, err := json.Marshal(file{Version: version, Slot: hash, Keys: kb, Check: check(hash, kb)})
	if err != nil {
		return fmt.Errorf("kept keys: %w", err)
	}
	if old, err := os.ReadFile(d.path(hash)); err == nil && bytes.Equal(old, b) {
		return nil // already kept: no write, no sync
	}
	return atomicfile.Write(d.path(hash), b, 0o600)
}

// files lists the key files in the folder (none if it is missing).
func (d Dir) files() ([]string, error) {
	ents, err := os.ReadDir(string(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kept keys: %w", err)
	}
	var paths []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			paths = append(paths, filepath.Join(string(d), e.Name()))
		}
	}
	return paths, nil
}

// Any reports whether the folder keeps any key file.
func (d Dir) Any() bool {
	paths, _ := d.files()
	return len(paths) > 0
}

// Forget removes the kept keys of slots, or every kept key file when
// slots is nil, and returns how many files it removed.
func (d Dir) Forget(slots []vaultapi.KeySlot) (int, error) {
	var paths []string
	if slots == nil {
		var err error
		if paths, err = d.files(); err != nil {
			return 0, err
		}
	}
	for _, s := range slots {
		paths = append(paths, d.path(slotHash(s.Data)))
	}
	n := 0
	for _, p := range paths {
		err := os.Remove(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("kept keys: %w", err)
		}
		n++
	}
	if n > 0 {
		atomicfile.SyncDir(string(d))
	}
	return n, nil
}
