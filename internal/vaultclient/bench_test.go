package vaultclient_test

import (
	"context"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultserver/servertest"
)

// BenchmarkHasBlobsOne measures one round trip: what the archiver pays per
// new blob.
func BenchmarkHasBlobsOne(b *testing.B) {
	env := servertest.Start(b, servertest.Options{})
	c := env.Machine(b, "bench")
	ctx := context.Background()
	ids := []vaultapi.ID{{1}}
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.HasBlobs(ctx, ids); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHasBlobsOneParallel is the same from several goroutines.
func BenchmarkHasBlobsOneParallel(b *testing.B) {
	env := servertest.Start(b, servertest.Options{})
	c := env.Machine(b, "bench")
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		ids := []vaultapi.ID{{1}}
		for pb.Next() {
			if _, err := c.HasBlobs(ctx, ids); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkStorePack measures pack uploads of 16 MiB.
func BenchmarkStorePack(b *testing.B) {
	env := servertest.Start(b, servertest.Options{})
	c := env.Machine(b, "bench")
	ctx := context.Background()
	s, err := c.BeginBackup(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(16 << 20)
	for b.Loop() {
		p := benchPack(b)
		if err := c.StorePack(ctx, s.ID, p); err != nil {
			b.Fatal(err)
		}
	}
}
