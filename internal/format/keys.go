package format

import (
	"fmt"
	"io"
	"sync"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/zeebo/blake3"
)

// Keys are a machine's master keys, made at random when its first backup
// runs and stored only wrapped in key slots.
type Keys struct {
	Data    [32]byte // seals blobs (through derived subkeys)
	ID      [32]byte // keys the BLAKE3 hash that names chunks
	Chunker [32]byte // seeds the chunker's gear table
}

// NewKeys draws fresh keys from rand.
func NewKeys(rand io.Reader) (*Keys, error) {
	var k Keys
	for _, b := range [][]byte{k.Data[:], k.ID[:], k.Chunker[:]} {
		if _, err := io.ReadFull(rand, b); err != nil {
			return nil, fmt.Errorf("new keys: %w", err)
		}
	}
	return &k, nil
}

// Hasher computes chunk IDs; safe for concurrent use.
type Hasher struct {
	pool sync.Pool
}

// NewHasher returns a Hasher keyed with k.ID.
func NewHasher(k *Keys) *Hasher {
	key := k.ID
	h := &Hasher{}
	h.pool.New = func() any {
		x, err := blake3.NewKeyed(key[:])
		if err != nil {
			panic(err) // only on a key of the wrong length
		}
		return x
	}
	return h
}

// ID returns the keyed BLAKE3-256 of p.
func (h *Hasher) ID(p []byte) vaultapi.ID {
	x := h.pool.Get().(*blake3.Hasher)
	x.Reset()
	_, _ = x.Write(p)
	var id vaultapi.ID
	x.Sum(id[:0])
	h.pool.Put(x)
	return id
}

// KeysSize is the length of the keys' binary form.
const KeysSize = keysPlainSize

// MarshalBinary returns the keys as KeysSize bytes: Data, ID, Chunker.
func (k *Keys) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, keysPlainSize)
	return append(append(append(b, k.Data[:]...), k.ID[:]...), k.Chunker[:]...), nil
}

// UnmarshalBinary reads keys written by MarshalBinary.
func (k *Keys) UnmarshalBinary(b []byte) error {
	if len(b) != keysPlainSize {
		return fmt.Errorf("keys: %d bytes, want %d", len(b), keysPlainSize)
	}
	copy(k.Data[:], b[0:32])
	copy(k.ID[:], b[32:64])
	copy(k.Chunker[:], b[64:96])
	return nil
}
