package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coffer-backup/coffer/internal/agent"
	"github.com/coffer-backup/coffer/internal/cache"
	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/throttle"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/spf13/cobra"
)

func init() {
	exitMappers = append(exitMappers, func(err error) (int, bool) {
		switch {
		case errors.Is(err, cache.ErrNoSpace):
			return exitNoSpace, true
		case errors.Is(err, agent.ErrLocked):
			return exitBusy, true
		case errors.Is(err, vaultapi.ErrForbidden):
			return exitRefused, true
		}
		return 0, false
	})
}

// addLimitFlags adds --limit-upload and --limit-download to a command
// that moves data to or from the vault.
func addLimitFlags(cmd *cobra.Command, g *globals) {
	cmd.Flags().StringVar(&g.limitUpload, "limit-upload", "", "upload limit, e.g. 8MiB/s or unlimited (default: the policy's)")
	cmd.Flags().StringVar(&g.limitDownload, "limit-download", "", "download limit, e.g. 500KiB/s or unlimited (default: the policy's)")
}

// wrapVault returns v as the command should use it: with the bandwidth
// limits of the machine's policy (switched at the work-hours edges while
// ctx lasts), or of --limit-upload/--limit-download, and with commits
// marked on demand when the command is a backup by hand.
func (g *globals) wrapVault(ctx context.Context, v vaultapi.Vault) (vaultapi.Vault, error) {
	var up, down policy.Throttle
	if g.limitUpload == "" || g.limitDownload == "" {
		if p, err := v.Policy(ctx); err == nil {
			if c, err := p.Spec.Compile(); err == nil {
				up, down = c.Upload, c.Download
			}
		}
	}
	for _, o := range []struct {
		flag, v string
		t       *policy.Throttle
	}{{"--limit-upload", g.limitUpload, &up}, {"--limit-download", g.limitDownload, &down}} {
		if o.v == "" {
			continue
		}
		r, err := policy.ParseRate(o.v)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: %w", o.flag, err)}
		}
		*o.t = policy.Throttle{Outside: r}
	}
	limiter := func(t policy.Throttle) *throttle.Limiter {
		if t.Outside == 0 && (t.Window.IsZero() || t.InWindow == 0) {
			return nil
		}
		l := throttle.NewLimiter(policy.RateAt(t, agent.RealClock{}.Now()))
		go throttle.Follow(ctx, agent.RealClock{}, t, l.SetRate)
		return l
	}
	v = throttle.Vault(v, limiter(up), limiter(down))
	if uploadMeter != nil {
		v = meteredVault{v}
	}
	if g.onDemand {
		v = onDemandVault{v}
	}
	return v, nil
}

// onDemandVault marks its commits as made by hand (for retention's
// keep-on-demand-days).
type onDemandVault struct{ vaultapi.Vault }

func (v onDemandVault) Commit(ctx context.Context, s string, c vaultapi.Commit) (vaultapi.Point, error) {
	c.OnDemand = true
	return v.Vault.Commit(ctx, s, c)
}

// uploadMeter, when set (by tests), is told of each pack stored: its size
// and when its upload, throttle included, began and ended.
var uploadMeter func(n int, began, ended time.Time)

type meteredVault struct{ vaultapi.Vault }

func (v meteredVault) StorePack(ctx context.Context, s string, p vaultapi.Pack) error {
	began := time.Now()
	err := v.Vault.StorePack(ctx, s, p)
	if err == nil {
		uploadMeter(len(p.Data), began, time.Now())
	}
	return err
}
