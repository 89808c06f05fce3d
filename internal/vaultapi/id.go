package vaultapi

import (
	"bytes"
	"encoding/hex"
	"fmt"
)

// ID names a blob: the keyed BLAKE3-256 hash of its plaintext, computed by
// the agent. To the vault it is an opaque 32-byte name that reveals only
// equality within one machine's key domain.
type ID [32]byte

// String returns the ID in lower-case hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, for messages.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// Compare orders IDs bytewise.
func (id ID) Compare(o ID) int { return bytes.Compare(id[:], o[:]) }

// ParseID parses 64 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("blob id %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("blob id %q: %w", s, err)
	}
	return id, nil
}

// MarshalText encodes the ID as hex (JSON, logs).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes hex.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Kind tells what a blob holds. The vault keeps data and metadata apart in
// separate packs; the kind is also bound into each blob's authentication.
type Kind uint8

const (
	KindData Kind = 1 // file content chunk
	KindTree Kind = 2 // directory listing
	KindInfo Kind = 3 // recovery-point manifest (paths, host, options)
)

func (k Kind) String() string {
	switch k {
	case KindData:
		return "data"
	case KindTree:
		return "tree"
	case KindInfo:
		return "info"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k >= KindData && k <= KindInfo }
