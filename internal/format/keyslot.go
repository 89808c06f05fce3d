package format

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/argon2"
)

// ErrWrongSecret is returned when a key slot does not open with the given
// passphrase or recovery key.
var ErrWrongSecret = errors.New("wrong passphrase or recovery key")

// KDF parameters of a key slot.
type KDF struct {
	Name      string `json:"name"` // "argon2id" for passphrases, "blake3" for recovery keys
	Salt      []byte `json:"salt"`
	Time      uint32 `json:"time,omitempty"`
	MemoryKiB uint32 `json:"memory_kib,omitempty"`
	Threads   uint8  `json:"threads,omitempty"`
}

// DefaultArgon2 are the Argon2id parameters for new passphrase slots:
// t=3, m=64 MiB, p=2 (about a quarter second on a 2-core machine).
var DefaultArgon2 = KDF{Name: "argon2id", Time: 3, MemoryKiB: 64 << 10, Threads: 2}

type slotFile struct {
	Version int    `json:"v"`
	KDF     KDF    `json:"kdf"`
	Nonce   []byte `json:"nonce"`
	Box     []byte `json:"box"`
}

// Accepted Argon2id parameters. A key slot comes from the vault, which
// must not be able to make the agent spend unbounded memory or time: a slot
// outside these ranges is refused before anything is derived.
const (
	minArgon2Time   = 1
	maxArgon2Time   = 10
	minArgon2Memory = 8 << 10 // KiB: 8 MiB
	maxArgon2Memory = 1 << 20 // KiB: 1 GiB
	minArgon2Thread = 1
	maxArgon2Thread = 16
	// maxSlotSize bounds an encoded slot (they are about 250 bytes).
	maxSlotSize = 16 << 10
)

// argon2IDKey is idKey; fuzz tests replace it to check that no
// out-of-range parameters reach it.
var argon2IDKey = idKey

// idKey is argon2.IDKey with its memory made resident first. Argon2 reads
// each block of its fresh allocation before it writes it, so every page
// is first mapped to the kernel's shared zero page and then copied on
// write, and each such copy flushes the other cores' TLBs by
// interrupting them. On a 2-core VM that made the default derivation
// (64 MiB) take 0.22 s instead of 0.12 s, on every command that unlocks
// the keys. Writing one byte per page of a heap allocation of that size
// and collecting it first gives argon2's allocation resident pages,
// which the runtime clears with plain writes.
func idKey(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	prefault(int(memory)<<10 + 1<<20)
	k := argon2.IDKey(password, salt, time, memory, threads, keyLen)
	// Give the derivation's memory back to the system at once: left to the
	// runtime's background scavenger, most of it stays resident while the
	// command goes on, and a backup's heap grows into it, making the peak
	// resident size the derivation's 64 MiB plus what the backup keeps
	// outside the heap.
	debug.FreeOSMemory()
	return k
}

// prefault makes n bytes of heap resident and frees them for reuse.
func prefault(n int) {
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	runtime.GC()
}

const (
	slotVersion   = 1
	slotAD        = "coffer key slot v1"
	recoveryCtx   = "coffer 2026-11 recovery key v1"
	keysPlainSize = 96
)

func (k KDF) check() error {
	switch k.Name {
	case "argon2id":
		if k.Time < minArgon2Time || k.Time > maxArgon2Time ||
			k.MemoryKiB < minArgon2Memory || k.MemoryKiB > maxArgon2Memory ||
			k.Threads < minArgon2Thread || k.Threads > maxArgon2Thread {
			return fmt.Errorf("key slot: argon2id parameters out of range (t=%d m=%dKiB p=%d)", k.Time, k.MemoryKiB, k.Threads)
		}
	case "blake3":
		if k.Time != 0 || k.MemoryKiB != 0 || k.Threads != 0 {
			return errors.New("key slot: blake3 takes no time, memory or thread parameters")
		}
	default:
		return fmt.Errorf("key slot: unknown KDF %q", k.Name)
	}
	if len(k.Salt) < 16 || len(k.Salt) > 64 {
		return fmt.Errorf("key slot: salt of %d bytes", len(k.Salt))
	}
	return nil
}

func (k KDF) derive(secret []byte) [32]byte {
	var out [32]byte
	switch k.Name {
	case "argon2id":
		copy(out[:], argon2IDKey(secret, k.Salt, k.Time, k.MemoryKiB, k.Threads, 32))
	case "blake3":
		blake3.DeriveKey(recoveryCtx, append(append([]byte{}, k.Salt...), secret...), out[:])
	}
	return out
}

// WrapKeys seals keys under secret with kdf (whose Salt is drawn from rand)
// and returns the encoded key slot.
func WrapKeys(keys *Keys, secret []byte, kdf KDF, rand io.Reader) ([]byte, error) {
	kdf.Salt = make([]byte, 32)
	if _, err := io.ReadFull(rand, kdf.Salt); err != nil {
		return nil, fmt.Errorf("wrap keys: %w", err)
	}
	if err := kdf.check(); err != nil {
		return nil, err
	}
	kek := kdf.derive(secret)
	aead, err := gcm(kek[:])
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("wrap keys: %w", err)
	}
	plain, _ := keys.MarshalBinary()
	box := aead.Seal(nil, nonce, plain, []byte(slotAD))
	return json.Marshal(slotFile{Version: slotVersion, KDF: kdf, Nonce: nonce, Box: box})
}

// UnwrapKeys opens an encoded key slot with secret.
func UnwrapKeys(slot []byte, secret []byte) (*Keys, error) {
	if len(slot) > maxSlotSize {
		return nil, fmt.Errorf("key slot: %d bytes, at most %d expected", len(slot), maxSlotSize)
	}
	var f slotFile
	if err := json.Unmarshal(slot, &f); err != nil {
		return nil, fmt.Errorf("key slot: %w", err)
	}
	if f.Version != slotVersion {
		return nil, fmt.Errorf("key slot: version %d, this Coffer reads version %d", f.Version, slotVersion)
	}
	if err := f.KDF.check(); err != nil {
		return nil, err
	}
	if len(f.Nonce) != 12 || len(f.Box) != keysPlainSize+16 {
		return nil, fmt.Errorf("key slot: bad sizes")
	}
	kek := f.KDF.derive(secret)
	aead, err := gcm(kek[:])
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, f.Nonce, f.Box, []byte(slotAD))
	if err != nil {
		return nil, ErrWrongSecret
	}
	var k Keys
	if err := k.UnmarshalBinary(plain); err != nil {
		return nil, err
	}
	return &k, nil
}

// SlotKDF reports the KDF name of an encoded slot ("" if unreadable).
func SlotKDF(slot []byte) string {
	var f slotFile
	if json.Unmarshal(slot, &f) != nil {
		return ""
	}
	return f.KDF.Name
}

func gcm(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

var recoveryEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewRecoveryKey draws a 256-bit recovery key and returns its printable
// form (groups of five base32 characters) and its bytes.
func NewRecoveryKey(rand io.Reader) (string, []byte, error) {
	k := make([]byte, 32)
	if _, err := io.ReadFull(rand, k); err != nil {
		return "", nil, err
	}
	s := recoveryEnc.EncodeToString(k)
	var b strings.Builder
	for i := 0; i < len(s); i += 5 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[i:min(i+5, len(s))])
	}
	return b.String(), k, nil
}

// ParseRecoveryKey parses a printed recovery key (case, spaces and dashes
// do not matter).
func ParseRecoveryKey(s string) ([]byte, error) {
	s = strings.ToUpper(strings.NewReplacer("-", "", " ", "", "\n", "", "\t", "").Replace(strings.TrimSpace(s)))
	k, err := recoveryEnc.DecodeString(s)
	// The last character carries one bit of the key and four zero bits;
	// refusing other characters there catches some typing errors.
	if err != nil || len(k) != 32 || recoveryEnc.EncodeToString(k) != s {
		return nil, errors.New("recovery key: not a Coffer recovery key (expect 52 base32 characters in groups of five)")
	}
	return k, nil
}
