package main

import (
	"fmt"
	"os"
	"time"

	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/spf13/cobra"
)

func newRestoreCmd(g *globals) *cobra.Command {
	var target string
	var noOwner bool
	cmd := &cobra.Command{
		Use:   "restore POINT [PATH...] --target DIR",
		Short: "Restore a recovery point, or some paths of it, into a folder",
		Long: `Restore a recovery point, or the given paths of it, into DIR.

POINT is an ID prefix or "latest". Each PATH is an absolute path as it was
backed up; it is restored under DIR with its full path (so /home/ana/a.txt
lands in DIR/home/ana/a.txt). Contents, modes, times and symlinks are
restored; owners too when run as root. Every chunk is authenticated and
checked before it is written. A point holding a name that would escape DIR
is refused and nothing of it is written outside DIR.

Examples:
  coffer restore latest --target /tmp/restored
  coffer restore 3f2a /home/ana/Documents/report.odt --target /tmp/r --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usageError{fmt.Errorf("restore needs a POINT (an ID prefix or \"latest\")")}
			}
			if target == "" {
				return usageError{fmt.Errorf("restore needs --target DIR: where to put the restored files")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, s, err := g.openRepo(ctx, false)
			if err != nil {
				return err
			}
			defer s.close()
			p, err := repo.ResolvePoint(ctx, r.Vault, args[0])
			if err != nil {
				return err
			}
			m, err := r.Manifest(ctx, p)
			if err != nil {
				return err
			}
			status := g.newStatusLine()
			opts := restorer.Options{
				Target: target, Paths: args[1:], Owners: os.Geteuid() == 0 && !noOwner,
				Report: func(pr restorer.Problem) {
					if g.json {
						status.println(mustJSON(map[string]any{"type": "problem", "path": pr.Path, "error": pr.Err.Error()}))
						return
					}
					status.println(fmt.Sprintf("error: %s: %v", pr.Path, pr.Err))
				},
			}
			if status.on {
				opts.Progress = func(pg restorer.Progress) {
					line := fmt.Sprintf("%s  %d/%d files  %s of %s", humanDuration(pg.Elapsed), pg.FilesDone, pg.Files,
						humanBytes(pg.Bytes), humanBytes(pg.TotalBytes))
					if pg.Bytes > 0 && pg.TotalBytes > pg.Bytes {
						left := time.Duration(float64(pg.Elapsed) * float64(pg.TotalBytes-pg.Bytes) / float64(pg.Bytes))
						line += "  ETA " + humanDuration(left)
					}
					status.set(line)
				}
			}
			start := time.Now()
			res, err := restorer.Restore(ctx, r, m.Root, opts)
			status.done()
			if err != nil {
				return err
			}
			if g.json {
				err = writeJSON(g.stdout, map[string]any{"type": "summary", "point": p.ID, "target": target,
					"files": res.Files, "dirs": res.Dirs, "symlinks": res.Links, "others": res.Others,
					"bytes": res.Bytes, "errors": res.Problems, "duration_ms": time.Since(start).Milliseconds()})
			} else if !g.quiet {
				fmt.Fprintf(g.stdout, "restored %d files, %d folders, %s from point %s into %s in %s\n",
					res.Files, res.Dirs, humanBytes(res.Bytes), p.ID[:8], target, time.Since(start).Round(10*time.Millisecond))
			}
			if err != nil {
				return err
			}
			if res.Problems > 0 {
				return fmt.Errorf("restore incomplete: %d entries could not be restored (listed above)", res.Problems)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "folder to restore into (created if missing)")
	cmd.Flags().BoolVar(&noOwner, "no-owner", false, "do not restore owners, even as root")
	return cmd
}
