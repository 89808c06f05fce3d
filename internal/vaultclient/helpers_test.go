package vaultclient_test

import (
	"crypto/tls"
	"testing"

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
