package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/coffer-backup/coffer/internal/agent"
	"github.com/coffer-backup/coffer/internal/cache"
	"github.com/spf13/cobra"
)

func newCacheCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Show and move the cache folder",
		Long: `The cache folder holds the agent's working files (the chunk cache of mounts,
the system-state snapshot). It is HOME/cache unless moved.

  coffer cache status     location, size, free space and file system
  coffer cache move DIR   move it, safely even if interrupted`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "status [--json]",
		Short: "Show the cache folder's location, size, free space and file system",
		Long: `Show where the cache folder is, how much it holds, the free space of its file
system against what a backup needs (doc/AGENT.md), and its file system
type; warns when it is on a network (NFS, SMB/CIFS, SSHFS...) or removable
file system, or when a move was interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := g.homeDir()
			if err != nil {
				return err
			}
			st, err := cache.Stat(home)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(g.stdout, st)
			}
			free := "unknown"
			if st.Free >= 0 {
				free = humanBytes(uint64(st.Free))
			}
			fstype := st.FSType
			if fstype == "" {
				fstype = "unknown"
			}
			if !st.Exists {
				fstype += " (the folder does not exist yet)"
			}
			fmt.Fprintf(g.stdout, "location:    %s\nsize:        %s\nfree:        %s (a backup needs %s)\nfile system: %s\n",
				st.Dir, humanBytes(uint64(st.Size)), free, humanBytes(uint64(st.Need)), fstype)
			if st.Warning != "" {
				fmt.Fprintf(g.stdout, "warning:     %s\n", st.Warning)
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "move [DIR]",
		Short: "Move the cache folder to DIR, safely even if interrupted",
		Long: `Move the cache folder to DIR (new or empty): copy every file and sync it,
switch the pointer file in the home atomically, then delete the old
folder. An interrupted move is finished by running coffer cache move
again (DIR may be left out then). No backup may run meanwhile: the move
takes the backup lock.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := g.homeDir()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(home, 0o700); err != nil {
				return err
			}
			lock, err := agent.TryLock(filepath.Join(home, agent.LockName))
			if err != nil {
				return err
			}
			defer lock.Unlock()
			dst := ""
			if len(args) == 1 {
				dst = args[0]
			}
			out := g.stderr
			if g.quiet {
				out = nil
			}
			to, err := cache.Move(home, dst, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "the cache folder is %s\n", to)
			return nil
		},
	})
	return cmd
}
