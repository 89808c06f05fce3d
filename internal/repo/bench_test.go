package repo_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// sourceLike returns n bytes of text that compresses about as source code
// does, different for each seed.
func sourceLike(seed, n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, "static int handler_%d_%d(struct dev *d, unsigned long flags)\n{\n\treturn d->ops[%d] ? -EINVAL : %d;\n}\n", seed, i, i%17, (seed*31+i)%1000)
	}
	return b[:n]
}

// BenchmarkRestorePack reads a pack of groups of small chunks and opens
// every chunk, as a full restore does for each pack: ReadBlobs, then
// ChunkOpener.Open per chunk (the first of a group opens it; each chunk is
// then taken by the ID its group lists). Bytes are the chunks' plaintext.
func BenchmarkRestorePack(b *testing.B) {
	r0, s := sealingRepo(b)
	// 8 groups of 128 chunks of 4 KiB: 4 MiB of plaintext.
	var pack []byte
	var locs []vaultapi.Location
	plainBytes := 0
	for g := range 8 {
		var members [][]byte
		for m := range 128 {
			members = append(members, sourceLike(g*1000+m, 4<<10))
			plainBytes += 4 << 10
		}
		sealed, ids := sealGroup(b, r0, s, members...)
		for _, id := range ids {
			locs = append(locs, vaultapi.Location{ID: id, Kind: vaultapi.KindData, Pack: "p",
				Offset: uint64(len(pack)), Length: uint32(len(sealed))})
		}
		pack = append(pack, sealed...)
	}
	r, err := repo.New(packVault{packs: map[string][]byte{"p": pack}}, r0.Keys)
	if err != nil {
		b.Fatal(err)
	}
	// A restore's plan lists a pack's locations by offset: a group's
	// chunks share one, and ReadBlobs hands each to fn.
	ctx := context.Background()
	var buf []byte
	b.SetBytes(int64(plainBytes))
	b.ReportAllocs()
	for b.Loop() {
		o := r.NewChunkOpener()
		n := 0
		buf, err = r.ReadBlobs(ctx, "p", locs, buf, func(l vaultapi.Location, sealed []byte) error {
			plain, err := o.Open(l, sealed)
			n += len(plain)
			return err
		})
		if err != nil || n != plainBytes {
			b.Fatalf("%d of %d bytes opened: %v", n, plainBytes, err)
		}
	}
}
