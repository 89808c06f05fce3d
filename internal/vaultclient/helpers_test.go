package vaultclient_test

import (
	crand "crypto/rand"
	"crypto/tls"
	"testing"

	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultclient"
	"github.com/coffer-backup/coffer/internal/vaultwire"
)

func pinned(t *testing.T, fp string) *tls.Config {
	t.Helper()
	b, err := vaultwire.ParseFingerprint(fp)
	if err != nil {
		t.Fatal(err)
	}
	return vaultclient.PinnedTLS(b)
}

func benchPack(b *testing.B) vaultapi.Pack {
	b.Helper()
	w := pack.NewWriter(nil)
	blob := make([]byte, 1<<20)
	for range 16 {
		var id vaultapi.ID
		crand.Read(id[:])
		crand.Read(blob[:64])
		w.Add(vaultapi.KindData, id, blob)
	}
	return w.Finish()
}
