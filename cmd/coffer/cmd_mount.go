package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	cachedir "github.com/coffer-backup/coffer/internal/cache"
	"github.com/coffer-backup/coffer/internal/fusefs"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/spf13/cobra"
)

func init() {
	exitMappers = append(exitMappers, func(err error) (int, bool) {
		if errors.Is(err, fusefs.ErrUnavailable) {
			return exitError, true
		}
		return 0, false
	})
}

func newMountCmd(g *globals) *cobra.Command {
	var idle, refresh time.Duration
	var cacheMiB, diskMiB int
	cmd := &cobra.Command{
		Use:   "mount MOUNTPOINT",
		Short: "Mount the recovery points read-only, to browse them and copy files out",
		Long: `Mount this machine's recovery points read-only at MOUNTPOINT (an empty
folder) with FUSE: one folder per point, named by its time (UTC), and
"latest", a symlink to the newest. Files keep their modes, owners,
nanosecond times, symlinks, hard links, extended attributes and ACLs, so
cp -a (or rsync -aHAX) out of the mount restores them; sparse files stay
sparse. Content is fetched only when read, with read-ahead, and recent
chunks are kept in a memory cache of --cache-size MiB and, with
--disk-cache-size, encrypted as stored in the cache folder (HOME/cache/chunks).

The mount runs in the foreground until Ctrl-C, SIGTERM, an unmount
(fusermount3 -u MOUNTPOINT) or --idle-timeout without any access (default
6h; 0 means never). Backups keep running while the mount is open; new
points appear within --refresh.

Examples:
  coffer mount /mnt/coffer
  cp -a /mnt/coffer/latest/home/ana/Documents /tmp/`,
		Args: argCount(1, 1, "mount takes one MOUNTPOINT (an empty folder)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			dir, err := g.vaultDir()
			if err != nil {
				return err
			}
			st, err := openVaultStorage(ctx, dir, g.vaultStorageURL(), g.getenv)
			if err != nil {
				return err
			}
			tv, err := vault.OpenTransient(ctx, dir, st)
			if err != nil {
				return err
			}
			defer tv.Close()
			slots, err := tv.KeySlots(ctx)
			if err != nil {
				return err
			}
			if len(slots) == 0 {
				return repo.ErrNoKeys
			}
			wv, err := g.wrapVault(ctx, tv) // the policy's download limits
			if err != nil {
				return err
			}
			r, _, err := g.unlock(ctx, wv, slots, false, true)
			if err != nil {
				return err
			}
			cache := r.NewChunkCache(int64(cacheMiB)<<20, 16)
			if diskMiB > 0 {
				home, err := g.homeDir()
				if err != nil {
					return err
				}
				cdir, err := cachedir.Dir(home)
				if err != nil {
					return err
				}
				d, err := repo.OpenDiskCache(filepath.Join(cdir, "chunks"), int64(diskMiB)<<20)
				if err != nil {
					return err
				}
				defer d.Close()
				cache.UseDisk(d)
			}
			return fusefs.Run(ctx, args[0], fusefs.Options{
				Repo: r, Cache: cache, IdleTimeout: idle, Refresh: refresh,
				Ready: func() {
					if !g.quiet {
						fmt.Fprintf(g.stderr, "recovery points mounted at %s; stop with Ctrl-C or fusermount3 -u %s\n", args[0], args[0])
					}
				},
			})
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&idle, "idle-timeout", 6*time.Hour, "unmount after this long without any access (0: never)")
	fl.DurationVar(&refresh, "refresh", 10*time.Second, "how often to look for new recovery points")
	fl.IntVar(&cacheMiB, "cache-size", 256, "MiB of file chunks kept in memory")
	fl.IntVar(&diskMiB, "disk-cache-size", 0, "MiB of file chunks also kept, encrypted, in the cache folder (worth it with a remote vault; an embedded vault is local already)")
	return cmd
}
