//go:build !linux

package fusefs

import (
	"context"
	"time"

	"github.com/coffer-backup/coffer/internal/repo"
)

// Options of a mount.
type Options struct {
	Repo        *repo.Repo
	Cache       *repo.ChunkCache
	IdleTimeout time.Duration
	Refresh     time.Duration
	Ready       func()
}

// Run is not available on this system.
func Run(ctx context.Context, dir string, o Options) error { return ErrUnavailable }
