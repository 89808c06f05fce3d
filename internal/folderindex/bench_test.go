package folderindex

import (
	"math/rand/v2"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// benchBuilder holds 5,000 folders with 0 to 32 chunk IDs each, 16 on
// average, from a fixed seed.
func benchBuilder() *Builder {
	rng := rand.New(rand.NewPCG(1, 2))
	b := NewBuilder()
	for range 5000 {
		var k Key
		var e Entry
		fill := func(p []byte) {
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
		}
		fill(k[:])
		fill(e.FP[:])
		fill(e.Tree[:])
		e.Chunks = make([]vaultapi.ID, rng.IntN(33))
		for i := range e.Chunks {
			fill(e.Chunks[i][:])
		}
		b.Add(k, e)
	}
	return b
}

func BenchmarkDecode(b *testing.B) {
	data := benchBuilder().Encode(testPoint, testScope, testMAC)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data, testMAC); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	bld := benchBuilder()
	data := bld.Encode(testPoint, testScope, testMAC)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		bld.Encode(testPoint, testScope, testMAC)
	}
}
