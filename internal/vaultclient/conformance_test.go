package vaultclient_test

import (
	"context"
	"testing"

	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vaultapi"
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
		_, op := env.Operator(t)
		ctx := context.Background()
		return vaulttest.Env{
			A: env.Machine(t, "machine-a"), B: env.Machine(t, "machine-b"),
			Now: env.Clock.Now, Advance: env.Clock.Advance,
			// The operator surface over HTTPS, by machine name.
			SetPolicy: func(m vaultapi.Info, s policy.Spec) error {
				_, err := op.SetPolicy(ctx, m.MachineName, s)
				return err
			},
			Undelete: func(m vaultapi.Info, id string) error { return op.UndeletePoint(ctx, m.MachineName, id) },
		}
	}})
}
