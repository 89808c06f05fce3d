package vaultclient_test

import (
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi/vaulttest"
	"github.com/coffer-backup/coffer/internal/vaultserver/servertest"
)

// TestConformanceHTTPS runs the agent⇄vault contract's suite over HTTPS:
// a real vault server on 127.0.0.1, two registered machines, each a
// vaultclient with its own credentials.
func TestConformanceHTTPS(t *testing.T) {
	vaulttest.Run(t, vaulttest.Harness{New: func(t *testing.T) vaulttest.Env {
		t.Helper()
		env := servertest.Start(t, servertest.Options{})
		return vaulttest.Env{
			A: env.Machine(t, "machine-a"), B: env.Machine(t, "machine-b"),
			Now: env.Clock.Now, Advance: env.Clock.Advance,
		}
	}})
}
