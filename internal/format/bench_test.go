package format

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// benchInputs are 1 MiB (the average chunk) of text-like and random bytes.
func benchInputs() map[string][]byte {
	r := rand.New(rand.NewPCG(5, 6))
	words := []string{"backup ", "restore ", "vault ", "chunk ", "the ", "of ", "a ", "pack\n", "tree ", "key "}
	var text bytes.Buffer
	for text.Len() < 1<<20 {
		text.WriteString(words[r.IntN(len(words))])
	}
	random := make([]byte, 1<<20)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	return map[string][]byte{"text": text.Bytes()[:1<<20], "random": random}
}

func BenchmarkSeal(b *testing.B) {
	keys := goldenKeys(b)
	for _, name := range []string{"text", "random"} {
		plain := benchInputs()[name]
		b.Run(name, func(b *testing.B) {
			s := newSealer(b, keys, LevelFastest)
			id := NewHasher(keys).ID(plain)
			var dst, scratch []byte
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				dst, scratch, err = s.Seal(dst[:0], vaultapi.KindData, id, plain, scratch)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(dst))/float64(len(plain)), "ratio")
		})
	}
}

// BenchmarkSealFrame measures the two halves of Seal as the backup runs
// them: Frame (compression, in the caller's goroutine) and SealFrame
// (encryption straight into a pack-sized buffer).
func BenchmarkSealFrame(b *testing.B) {
	keys := goldenKeys(b)
	for _, name := range []string{"text", "random"} {
		plain := benchInputs()[name]
		b.Run(name, func(b *testing.B) {
			s := newSealer(b, keys, LevelFastest)
			id := NewHasher(keys).ID(plain)
			var frame []byte
			pack := make([]byte, 0, 16<<20)
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if frame, err = s.Frame(frame, plain); err != nil {
					b.Fatal(err)
				}
				if len(pack)+SealedSize(len(frame)) > cap(pack) {
					pack = pack[:0]
				}
				if pack, err = s.SealFrame(pack, vaultapi.KindData, id, frame); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(frame))/float64(len(plain)), "ratio")
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	keys := goldenKeys(b)
	for _, name := range []string{"text", "random"} {
		plain := benchInputs()[name]
		b.Run(name, func(b *testing.B) {
			s, o := newSealer(b, keys, LevelFastest), newOpener(b, keys)
			id := NewHasher(keys).ID(plain)
			sealed, _, err := s.Seal(nil, vaultapi.KindData, id, plain, nil)
			if err != nil {
				b.Fatal(err)
			}
			work := make([]byte, len(sealed))
			var out []byte
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				copy(work, sealed)
				if out, err = o.Open(out, vaultapi.KindData, id, work); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkHasherID(b *testing.B) {
	h := NewHasher(goldenKeys(b))
	plain := benchInputs()["random"]
	b.SetBytes(int64(len(plain)))
	b.ReportAllocs()
	for b.Loop() {
		h.ID(plain)
	}
}

func BenchmarkDecodeTree(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	var tr *Tree
	for tr == nil || len(tr.Nodes) < 15 {
		tr = randomTree(r)
	}
	enc := encodeTree(b, tr)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeTree(enc); err != nil {
			b.Fatal(err)
		}
	}
}
