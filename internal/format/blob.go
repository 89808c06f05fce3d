package format

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

// Blob framing (see doc/FORMAT.md, "Blobs"):
//
//	version (1 byte, 1) | nonce (24 bytes) | AES-256-GCM(plain) with 16-byte tag
//
// where nonce = prefix (16 random bytes) | counter (8 bytes, big endian),
// the GCM key is BLAKE3-DeriveKey(subkeyContext, data key | prefix) and the
// GCM nonce is 4 zero bytes | counter. The additional data is kind | ID.
// plain = compression (1 byte: 0 raw, 1 zstd) | payload.
const (
	blobVersion = 1
	nonceSize   = 24
	prefixSize  = 16
	// Overhead is the sealed size minus the payload size of a raw blob.
	Overhead = 1 + nonceSize + 1 + 16

	compRaw  = 0
	compZstd = 1

	subkeyContext = "coffer 2026-11 blob subkey v1"
	// maxPerPrefix bounds the blobs sealed under one subkey; the sealer
	// draws a new prefix before it is reached.
	maxPerPrefix = 1 << 32
	// MaxPlain bounds a blob's plaintext (and what decompression may produce).
	MaxPlain = 256 << 20
	// zstdWindow is the compressor's window: matches reach this far back.
	// Chunks average 1 MiB, and a window of 1 MiB compresses the Linux
	// source tree as well as one of 4 MiB (its default) while each
	// encoder's history buffer shrinks from 4 MiB to 1 MiB.
	zstdWindow = 1 << 20
	// minCompress is the size below which compressing is not tried.
	minCompress = 64
	// LevelAuto's probe: see Level.
	probeMin   = 256 << 10
	probeSize  = 32 << 10
	probeRatio = 12
)

// ErrAuth is returned when a blob fails authentication: wrong key, or
// bytes damaged or swapped.
var ErrAuth = errors.New("blob failed authentication")

// Level selects compression.
type Level int

const (
	LevelNone Level = -1
	// LevelAuto, the default, compresses groups of small chunks with zstd
	// SpeedFastest and every other blob with SpeedDefault, except blobs of
	// probeMin bytes or more whose first probeSize bytes shrink at least
	// probeRatio times at SpeedFastest: a group's shared context does more
	// for its ratio than a slower level would, large chunks compress at
	// SpeedDefault for little more time than at SpeedFastest, and very
	// redundant ones come out as small or smaller at SpeedFastest, in a
	// third less time (BENCHMARKS.md, "Compression").
	LevelAuto    Level = 0
	LevelFastest Level = 1 // zstd SpeedFastest
	LevelDefault Level = 2 // zstd SpeedDefault
	LevelBetter  Level = 3 // zstd SpeedBetterCompression
)

// ParseLevel parses a --compression value.
func ParseLevel(s string) (Level, error) {
	switch s {
	case "none", "off":
		return LevelNone, nil
	case "", "auto":
		return LevelAuto, nil
	case "fastest":
		return LevelFastest, nil
	case "default":
		return LevelDefault, nil
	case "better", "max":
		return LevelBetter, nil
	}
	return 0, fmt.Errorf("compression %q: want auto, none, fastest, default or better", s)
}

// Sealer compresses and encrypts blobs; safe for concurrent use.
type Sealer struct {
	key   [32]byte
	rand  io.Reader
	enc   *zstd.Encoder // single blobs
	genc  *zstd.Encoder // groups; enc itself unless the level is LevelAuto
	level Level

	mu     sync.Mutex
	prefix [prefixSize]byte
	count  uint64
	limit  uint64 // blobs per prefix: maxPerPrefix (lowered by tests)
	aead   cipher.AEAD
}

// NewSealer returns a Sealer for k that draws nonce prefixes from rand.
func NewSealer(k *Keys, rand io.Reader, level Level) (*Sealer, error) {
	s := &Sealer{key: k.Data, rand: rand, level: level, limit: maxPerPrefix}
	var err error
	switch level {
	case LevelNone:
	case LevelAuto:
		if s.enc, err = newEncoder(zstd.SpeedDefault); err == nil {
			s.genc, err = newEncoder(zstd.SpeedFastest)
		}
	case LevelFastest, LevelDefault, LevelBetter:
		zl := map[Level]zstd.EncoderLevel{LevelFastest: zstd.SpeedFastest, LevelDefault: zstd.SpeedDefault,
			LevelBetter: zstd.SpeedBetterCompression}[level]
		s.enc, err = newEncoder(zl)
		s.genc = s.enc
	default:
		return nil, fmt.Errorf("sealer: unknown compression level %d", level)
	}
	if err != nil {
		return nil, fmt.Errorf("sealer: %w", err)
	}
	if err := s.rotate(); err != nil {
		return nil, err
	}
	return s, nil
}

func newEncoder(zl zstd.EncoderLevel) (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zl), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithZeroFrames(true), zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(zstdWindow))
}

func (s *Sealer) rotate() error {
	if _, err := io.ReadFull(s.rand, s.prefix[:]); err != nil {
		return fmt.Errorf("sealer: nonce prefix: %w", err)
	}
	aead, err := subkeyAEAD(&s.key, s.prefix[:])
	if err != nil {
		return err
	}
	s.aead, s.count = aead, 0
	return nil
}

func subkeyAEAD(key *[32]byte, prefix []byte) (cipher.AEAD, error) {
	var material [32 + prefixSize]byte
	copy(material[:], key[:])
	copy(material[32:], prefix)
	var sub [32]byte
	blake3.DeriveKey(subkeyContext, material[:], sub[:])
	block, err := aes.NewCipher(sub[:])
	if err != nil {
		return nil, fmt.Errorf("sealer: %w", err)
	}
	return cipher.NewGCM(block)
}

// next reserves a nonce and returns it with the AEAD of its subkey.
func (s *Sealer) next() ([nonceSize]byte, cipher.AEAD, error) {
	var nonce [nonceSize]byte
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count >= s.limit {
		if err := s.rotate(); err != nil {
			return nonce, nil, err
		}
	}
	copy(nonce[:], s.prefix[:])
	binary.BigEndian.PutUint64(nonce[prefixSize:], s.count)
	s.count++
	return nonce, s.aead, nil
}

// Seal compresses (when it helps) and encrypts plain, appending the sealed
// blob to dst. scratch, if large enough, is used for compression output.
func (s *Sealer) Seal(dst []byte, kind vaultapi.Kind, id vaultapi.ID, plain []byte, scratch []byte) ([]byte, []byte, error) {
	frame, err := s.Frame(scratch, plain)
	if err != nil {
		return dst, scratch, err
	}
	dst, err = s.SealFrame(dst, kind, id, frame)
	return dst, frame, err
}

// Frame returns the plaintext of plain's blob, reusing buf's memory: the
// compression byte, then plain compressed with zstd if that is shorter,
// else plain itself. Frame is the costly half of Seal (compression) and
// may run in many goroutines; SealFrame encrypts the result.
func (s *Sealer) Frame(buf, plain []byte) ([]byte, error) {
	enc, buf := s.encoder(buf, plain)
	return frame(enc, buf, plain)
}

// encoder returns the encoder for a single blob's plaintext, probing large
// ones under LevelAuto (see Level) with buf's memory.
func (s *Sealer) encoder(buf, plain []byte) (*zstd.Encoder, []byte) {
	if s.level != LevelAuto || len(plain) < probeMin {
		return s.enc, buf
	}
	buf = s.genc.EncodeAll(plain[:probeSize], buf[:0])
	if len(buf)*probeRatio <= probeSize {
		return s.genc, buf
	}
	return s.enc, buf
}

func frame(enc *zstd.Encoder, buf, plain []byte) ([]byte, error) {
	if len(plain) > MaxPlain {
		return buf, fmt.Errorf("seal: blob of %d bytes exceeds %d", len(plain), MaxPlain)
	}
	// buf grows to the largest frame made, not to the largest plaintext:
	// most compress to a fraction, and every byte of capacity counts.
	if enc != nil && len(plain) >= minCompress {
		buf = append(buf[:0], compZstd)
		buf = enc.EncodeAll(plain, buf)
		if len(buf)-1 < len(plain) {
			return buf, nil
		}
	}
	buf = append(buf[:0], compRaw)
	return append(buf, plain...), nil
}

// SealFrame encrypts a frame made by Frame as a blob of the given kind and
// ID, appending the sealed blob (SealedSize(len(frame)) bytes) to dst.
func (s *Sealer) SealFrame(dst []byte, kind vaultapi.Kind, id vaultapi.ID, frame []byte) ([]byte, error) {
	if !kind.Valid() {
		return dst, fmt.Errorf("seal: kind %d", kind)
	}
	return s.seal(dst, blobVersion, blobAD(kind, id), frame)
}

// blobAD is the additional data of a single blob: its kind and ID.
func blobAD(kind vaultapi.Kind, id vaultapi.ID) [33]byte {
	var ad [33]byte
	ad[0] = byte(kind)
	copy(ad[1:], id[:])
	return ad
}

func (s *Sealer) seal(dst []byte, version byte, ad [33]byte, frame []byte) ([]byte, error) {
	if len(frame) == 0 || len(frame)-1 > MaxPlain {
		return dst, fmt.Errorf("seal: frame of %d bytes", len(frame))
	}
	nonce, aead, err := s.next()
	if err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, SealedSize(len(frame)))
	dst = append(dst, version)
	dst = append(dst, nonce[:]...)
	var gcmNonce [12]byte
	copy(gcmNonce[4:], nonce[prefixSize:])
	return aead.Seal(dst, gcmNonce[:], frame, ad[:]), nil
}

// SealedSize is the size of the blob SealFrame makes of a frame of n bytes.
func SealedSize(n int) int { return Overhead - 1 + n }

// Opener decrypts and decompresses blobs; safe for concurrent use.
type Opener struct {
	key  [32]byte
	dec  *zstd.Decoder
	mu   sync.Mutex
	aead map[[prefixSize]byte]cipher.AEAD
}

// NewOpener returns an Opener for k.
func NewOpener(k *Keys) (*Opener, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxPlain))
	if err != nil {
		return nil, fmt.Errorf("opener: %w", err)
	}
	return &Opener{key: k.Data, dec: dec, aead: make(map[[prefixSize]byte]cipher.AEAD)}, nil
}

func (o *Opener) aeadFor(prefix []byte) (cipher.AEAD, error) {
	var p [prefixSize]byte
	copy(p[:], prefix)
	o.mu.Lock()
	a, ok := o.aead[p]
	o.mu.Unlock()
	if ok {
		return a, nil
	}
	a, err := subkeyAEAD(&o.key, prefix)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	if len(o.aead) > 4096 {
		clear(o.aead)
	}
	o.aead[p] = a
	o.mu.Unlock()
	return a, nil
}

// Open authenticates and decrypts a sealed blob of the given kind and ID
// and returns its plaintext, appended to dst[:0]. sealed is overwritten.
func (o *Opener) Open(dst []byte, kind vaultapi.Kind, id vaultapi.ID, sealed []byte) ([]byte, error) {
	if !kind.Valid() {
		// Its additional data could be a group's (kind|0x80, a zero ID).
		return dst, fmt.Errorf("open blob %s: kind %d: %w", id.Short(), kind, ErrAuth)
	}
	out, err := o.open(dst, blobVersion, blobAD(kind, id), sealed)
	if err != nil {
		return dst, fmt.Errorf("open blob %s: %w", id.Short(), err)
	}
	return out, nil
}

// growStep is what growFor rounds a buffer up to.
const growStep = 1 << 20

// growFor returns dst, or a larger empty buffer if the zstd frame says it
// decompresses to more than dst holds. The decoder would allocate the
// exact size itself, so a buffer reused for blobs of varied sizes would
// be allocated again at each new largest one; this rounds it up to whole
// MiB.
func growFor(dst, frame []byte) []byte {
	var h zstd.Header
	if h.Decode(frame) != nil || !h.HasFCS || h.FrameContentSize > MaxPlain {
		return dst
	}
	need := int(h.FrameContentSize) + 16 // the decoder's own slack
	if cap(dst) >= need {
		return dst
	}
	return make([]byte, 0, (need+growStep-1)/growStep*growStep)
}

// open authenticates, decrypts and decompresses a sealed blob or group
// of the given version and additional data.
func (o *Opener) open(dst []byte, version byte, ad [33]byte, sealed []byte) ([]byte, error) {
	if len(sealed) > 0 && sealed[0] > groupVersion {
		return dst, fmt.Errorf("%w (version %d: written by a newer Coffer? upgrade this one)", ErrAuth, sealed[0])
	}
	if len(sealed) < Overhead || sealed[0] != version {
		return dst, fmt.Errorf("%w (bad framing)", ErrAuth)
	}
	nonce := sealed[1 : 1+nonceSize]
	aead, err := o.aeadFor(nonce[:prefixSize])
	if err != nil {
		return dst, err
	}
	var gcmNonce [12]byte
	copy(gcmNonce[4:], nonce[prefixSize:])
	ct := sealed[1+nonceSize:]
	pt, err := aead.Open(ct[:0], gcmNonce[:], ct, ad[:])
	if err != nil {
		return dst, ErrAuth
	}
	switch pt[0] {
	case compRaw:
		return append(dst[:0], pt[1:]...), nil
	case compZstd:
		if cap(dst) > 0 {
			dst = growFor(dst, pt[1:])
		}
		out, err := o.dec.DecodeAll(pt[1:], dst[:0])
		if err != nil {
			return dst, fmt.Errorf("decompress: %w", err)
		}
		if len(out) > MaxPlain {
			return dst, fmt.Errorf("decompresses past %d bytes", MaxPlain)
		}
		return out, nil
	}
	return dst, fmt.Errorf("unknown compression %d (written by a newer Coffer?)", pt[0])
}
