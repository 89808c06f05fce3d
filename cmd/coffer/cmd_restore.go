package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/coffer-backup/coffer/internal/exclude"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/sysstate"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/spf13/cobra"
)

func newRestoreCmd(g *globals) *cobra.Command {
	var target string
	var noOwner, numericOwner, noXattrs, dryRun, verifyChunks bool
	var includes, excludes []string
	var ifExists string
	var systemState bool
	cmd := &cobra.Command{
		Use:   "restore POINT [PATH...] --target DIR",
		Short: "Restore a recovery point, or some paths of it, into a folder",
		Long: `Restore a recovery point, or the given paths of it, into DIR.

POINT is an ID prefix or "latest". Each PATH is an absolute path as it was
backed up; it is restored under DIR with its full path (so /home/ana/a.txt
lands in DIR/home/ana/a.txt). Contents (sparse files with their holes),
modes with setuid bits, nanosecond times, symlinks, hard links, extended
attributes and POSIX ACLs are restored; owners (by name, else by number),
FIFOs and device nodes too when run as root. Every chunk is authenticated
before it is written, which proves it is the chunk stored under its ID;
--verify also hashes each against its ID, as coffer verify does, to catch a
chunk that was damaged before it was sealed. A point holding a name that would escape
DIR is refused, and nothing is ever written outside DIR, even through
symlinks DIR already holds.

Entries already in DIR with the stored size and mtime are left alone; a
file of the right size is compared chunk by chunk and only what differs is
rewritten, so re-running an interrupted restore finishes it quickly.
--if-exists says what to do with an entry that differs: overwrite (the
default) replaces it, skip keeps it, rename keeps it and restores beside it
as NAME.restored.

--include and --exclude take gitignore-style patterns matched against paths
in the point without the leading slash (home/ana/*.odt, *.tmp, cache/).

An entry that cannot be restored is named on stderr and the rest goes on; a
file left incomplete is removed. The exit code is then 5 if the vault's copy
was damaged (run coffer verify) and 3 otherwise.

Examples:
  coffer restore latest --target /tmp/restored
  coffer restore 3f2a /home/ana/Documents/report.odt --target /tmp/r --json
  coffer restore latest --include '*.odt' --exclude 'tmp/' --if-exists skip -t /
  coffer restore latest --dry-run -t /srv/old
  coffer restore latest --system-state -t /tmp/state   (then read /tmp/state/README-system-state.md)`,
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
			plainGC()
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
			paths := args[1:]
			if systemState {
				srcs := make([]string, len(m.Paths))
				for i, b := range m.Paths {
					srcs[i] = string(b)
				}
				paths = append(paths, sysstate.Find(srcs)...)
				if len(paths) == len(args[1:]) {
					return fmt.Errorf("point %s holds no system state (back it up with coffer backup --system-state)", p.ID[:8])
				}
			}
			ie, err := restorer.ParseIfExists(ifExists)
			if err != nil {
				return usageError{err}
			}
			status := g.newStatusLine()
			var damaged atomic.Bool // a problem was damage in the vault: exit code 5
			opts := restorer.Options{
				Target: target, Paths: paths, Owners: os.Geteuid() == 0 && !noOwner,
				NumericOwner: numericOwner, NoXattrs: noXattrs, IfExists: ie, DryRun: dryRun, Verify: verifyChunks,
				Report: func(pr restorer.Problem) {
					if errors.Is(pr.Err, vaultapi.ErrDamaged) {
						damaged.Store(true)
					}
					if g.json {
						status.println(mustJSON(map[string]any{"type": "problem", "path": pr.Path, "error": pr.Err.Error()}))
						return
					}
					status.println(fmt.Sprintf("error: %s: %v", pr.Path, pr.Err))
				},
			}
			if opts.Include, err = compileMatcher(includes); err != nil {
				return usageError{err}
			}
			if opts.Exclude, err = compileMatcher(excludes); err != nil {
				return usageError{err}
			}
			if dryRun {
				opts.List = func(a restorer.Action) { // called by the planner only, in order
					if g.json {
						writeJSON(g.stdout, map[string]any{"type": "action", "path": a.Path, "kind": a.Type.String(), "do": a.Do})
						return
					}
					fmt.Fprintf(g.stdout, "%-9s %-8s %s\n", a.Do, a.Type, printable([]byte(a.Path)))
				}
			}
			if status.on && !dryRun {
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
			if systemState && !dryRun {
				if err := sysstate.WriteREADME(target, paths); err != nil {
					return err
				}
				if !g.quiet && !g.json {
					fmt.Fprintf(g.stdout, "system state restored as files; how to apply it: %s\n", filepath.Join(target, "README-system-state.md"))
				}
			}
			if g.json {
				err = writeJSON(g.stdout, map[string]any{"type": "summary", "point": p.ID, "target": target, "dry_run": dryRun,
					"files": res.Files, "dirs": res.Dirs, "symlinks": res.Links, "others": res.Others,
					"hard_links": res.HardLinks, "unchanged": res.Unchanged, "skipped": res.Skipped,
					"bytes": res.Bytes, "errors": res.Problems, "duration_ms": time.Since(start).Milliseconds()})
			} else if !g.quiet {
				verb := "restored"
				if dryRun {
					verb = "would restore"
				}
				fmt.Fprintf(g.stdout, "%s %s, %s, %s from point %s into %s in %s (%d unchanged, %d kept as they were)\n",
					verb, count(res.Files, "file"), count(res.Dirs, "folder"), humanBytes(res.Bytes), p.ID[:8], target, time.Since(start).Round(10*time.Millisecond),
					res.Unchanged, res.Skipped)
			}
			if err != nil {
				return err
			}
			if res.Problems > 0 {
				if damaged.Load() {
					return fmt.Errorf("restore incomplete: %s (listed above): %w; run coffer verify to list every damaged file", notRestored(res.Problems), vaultapi.ErrDamaged)
				}
				return partialError{fmt.Sprintf("restore incomplete: %s (listed above)", notRestored(res.Problems))}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "folder to restore into (created if missing)")
	fl := cmd.Flags()
	fl.BoolVar(&noOwner, "no-owner", false, "do not restore owners, even as root")
	fl.BoolVar(&numericOwner, "numeric-owner", false, "restore owners by their stored numbers, not by user and group names")
	fl.BoolVar(&noXattrs, "no-xattrs", false, "do not restore extended attributes and ACLs")
	fl.BoolVar(&verifyChunks, "verify", false, "also hash every chunk against its ID before writing it, as coffer verify does (about a tenth more CPU)")
	fl.BoolVarP(&dryRun, "dry-run", "n", false, "write nothing; list what would be created, updated, replaced or kept")
	fl.StringArrayVar(&includes, "include", nil, "restore only entries matching PATTERN (gitignore syntax; repeatable)")
	fl.StringArrayVar(&excludes, "exclude", nil, "leave out entries matching PATTERN (gitignore syntax; repeatable)")
	fl.BoolVar(&systemState, "system-state", false, "restore the point's system state as files, with a README on applying it")
	fl.StringVar(&ifExists, "if-exists", "overwrite", "for an entry in the target that differs: overwrite, skip or rename")
	addLimitFlags(cmd, g)
	return cmd
}

// compileMatcher compiles gitignore-style patterns; nil for none.
func compileMatcher(patterns []string) (restorer.Matcher, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	m, err := exclude.Compile(patterns)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// notRestored says how many entries could not be restored.
func notRestored(n uint64) string {
	if n == 1 {
		return "1 entry could not be restored"
	}
	return fmt.Sprintf("%d entries could not be restored", n)
}
