package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/coffer-backup/coffer/internal/agent"
	"github.com/coffer-backup/coffer/internal/archiver"
	"github.com/coffer-backup/coffer/internal/cache"
	"github.com/coffer-backup/coffer/internal/exclude"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/sysstate"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/spf13/cobra"
)

type backupFlags struct {
	excludes      []string
	excludeFiles  []string
	oneFileSystem bool
	compression   string
	host          string
	force         bool
	systemState   bool

	// ended, if set, is told how the backup ended, on the vault it used
	// while that is still open (opening the embedded vault again costs
	// a scan of its metadata file).
	ended func(v vaultapi.Vault, res *archiver.Result, err error)
}

func newBackupCmd(g *globals) *cobra.Command {
	var f backupFlags
	cmd := &cobra.Command{
		Use:   "backup [PATH...]",
		Short: "Back up files and folders to the vault",
		Long: `Back up files and folders to the vault as one recovery point.

Data is cut into chunks, deduplicated against everything this machine has
stored, compressed and encrypted here before it leaves. Files whose size,
mtime, ctime and inode are unchanged since the previous backup of the same
paths are not read again, and a folder whose listing is unchanged (every
entry's name and lstat, as the folder index in the cache folder remembers
them) keeps its tree without loading the previous one (doc/CLI.md, "The
folder index"). The first backup creates this machine's keys, wrapped
with your passphrase.

Symlinks are stored, never followed. Directories holding a CACHEDIR.TAG are
stored with only the tag. A file that cannot be read is reported and skipped;
the point still commits and the exit code is 3.

With no PATH, backs up the paths (and excludes) of the machine's policy,
held by the vault (coffer policy show). One backup runs at a time on a
machine: a backup started while another runs (by hand or by the agent)
exits with code 8. Before it starts, the free space of the cache folder is
checked (doc/AGENT.md); when short, it exits with code 7.

Examples:
  coffer backup ~/Documents ~/Pictures
  coffer backup /srv --exclude '*.tmp' --exclude 'node_modules/' --one-file-system
  coffer backup /home --exclude-file /etc/coffer/excludes --json
  coffer backup --system-state /srv`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			g.onDemand = true
			return runBackup(cmd.Context(), g, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.excludes, "exclude", "e", nil, "skip entries matching PATTERN (gitignore syntax, relative to each PATH; repeatable)")
	fl.StringArrayVar(&f.excludeFiles, "exclude-file", nil, "read exclude patterns from FILE, one per line (repeatable)")
	fl.BoolVarP(&f.oneFileSystem, "one-file-system", "x", false, "do not cross into other file systems (mount points are kept, empty)")
	fl.StringVar(&f.compression, "compression", "auto", "auto (small files compressed together at zstd's fastest level, larger chunks at its default unless very redundant), none, fastest, default or better")
	fl.StringVar(&f.host, "host", "", "host name recorded in the point (default: this host's name)")
	fl.BoolVar(&f.force, "force", false, "read every file again, ignoring the previous point and the folder index")
	fl.BoolVar(&f.systemState, "system-state", false, "add the Linux system state: /etc, package selection, enabled units, crontabs, users, mounts, boot configuration (see doc/RESTORE.md)")
	addLimitFlags(cmd, g)
	return cmd
}

// policyPaths returns the paths and excludes of the machine's policy, for
// a backup given no PATH.
func policyPaths(ctx context.Context, g *globals) ([]string, []string, error) {
	p, err := g.machinePolicy(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(p.Paths) == 0 {
		return nil, nil, usageError{errors.New("backup needs at least one PATH (for example: coffer backup ~/Documents): the machine's policy names no paths (coffer policy show)")}
	}
	return p.Paths, p.Excludes, nil
}

func runBackup(ctx context.Context, g *globals, f backupFlags, args []string) error {
	started := time.Now()
	reported := false
	f.ended = func(v vaultapi.Vault, res *archiver.Result, err error) {
		reported = true
		g.reportManualJobTo(ctx, v, started, res, err)
	}
	res, paths, parent, err := doBackup(ctx, g, f, args)
	if !reported && !errors.As(err, new(usageError)) && !errors.Is(err, agent.ErrLocked) {
		g.reportManualJob(ctx, started, res, err)
	}
	if err != nil && res == nil {
		return err
	}
	if g.json {
		err = writeJSON(g.stdout, map[string]any{
			"type": "summary", "point": res.Point.ID, "time": res.Point.Time, "paths": paths,
			"files": res.Stats.Files, "dirs": res.Stats.Dirs, "bytes": res.Stats.Bytes,
			"bytes_read": res.Stats.BytesRead, "bytes_added": res.Stats.BytesAdded,
			"skipped": res.Problems, "warnings": res.Warnings, "duration_ms": res.Stats.DurationMS,
			"parent": parentID(parent),
		})
	} else if !g.quiet {
		fmt.Fprintf(g.stdout, "recovery point %s saved at %s\n", res.Point.ID[:8], res.Point.Time.Local().Format(time.DateTime))
		fmt.Fprintf(g.stdout, "  %s, %s, %s; read %s, added %s to the vault in %s\n",
			count(res.Stats.Files, "file"), count(res.Stats.Dirs, "folder"), humanBytes(res.Stats.Bytes), humanBytes(res.Stats.BytesRead),
			humanBytes(res.Stats.BytesAdded), (time.Duration(res.Stats.DurationMS) * time.Millisecond).Round(10*time.Millisecond))
		if res.Problems > 0 {
			fmt.Fprintf(g.stdout, "  %d entries skipped (listed above)\n", res.Problems)
		}
	}
	if err != nil {
		return err
	}
	if res.Problems > 0 {
		return errPartial
	}
	return nil
}

// reportManualJob reports a backup by hand that ended before it opened
// the vault, opening it for that; see reportManualJobTo.
func (g *globals) reportManualJob(ctx context.Context, started time.Time, res *archiver.Result, berr error) {
	s, err := g.openVault(context.WithoutCancel(ctx))
	if err != nil {
		if !g.quiet {
			fmt.Fprintf(g.stderr, "warning: could not report the job to the vault: %v\n", err)
		}
		return
	}
	defer s.close()
	g.reportManualJobTo(ctx, s.v, started, res, berr)
}

// reportManualJobTo reports a backup by hand to the vault v. A failure to
// report only warns.
func (g *globals) reportManualJobTo(ctx context.Context, v vaultapi.Vault, started time.Time, res *archiver.Result, berr error) {
	j := vaultapi.Job{ID: fmt.Sprintf("manual-%d", started.UnixNano()), Trigger: vaultapi.TriggerManual,
		Status: vaultapi.StatusOK, Started: started, Ended: time.Now()}
	switch {
	case berr != nil:
		j.Status, j.Message = vaultapi.StatusFailed, berr.Error()
		if len(j.Message) > vaultapi.MaxJobMessage {
			j.Message = j.Message[:vaultapi.MaxJobMessage]
		}
	case res != nil:
		j.Point, j.Files, j.Bytes, j.BytesAdded, j.Errors = res.Point.ID, res.Stats.Files, res.Stats.Bytes, res.Stats.BytesAdded, res.Problems
		if res.Problems > 0 {
			j.Status = vaultapi.StatusPartial
		}
	}
	if err := v.ReportJob(context.WithoutCancel(ctx), j); err != nil && !g.quiet {
		fmt.Fprintf(g.stderr, "warning: could not report the job to the vault: %v\n", err)
	}
}

// doBackup makes one recovery point of args (the policy's paths if none)
// under the backup lock (unless g.noLock: the caller holds it).
func doBackup(ctx context.Context, g *globals, f backupFlags, args []string) (res *archiver.Result, _ []string, _ *vaultapi.Point, err error) {
	if len(args) == 0 && !f.systemState {
		ps, excl, err := policyPaths(ctx, g)
		if err != nil {
			return nil, nil, nil, err
		}
		args = ps
		f.excludes = append(excl, f.excludes...)
	}
	home, err := g.homeDir()
	if err != nil {
		return nil, nil, nil, err
	}
	if !g.noLock {
		if err := os.MkdirAll(home, 0o700); err != nil {
			return nil, nil, nil, err
		}
		lock, err := agent.TryLock(filepath.Join(home, agent.LockName))
		if err != nil {
			return nil, nil, nil, err
		}
		defer lock.Unlock()
	}
	if cdir, err := cache.Dir(home); err == nil {
		if err := cache.CheckFree(cdir, cache.Need(f.systemState)); err != nil {
			return nil, nil, nil, err
		}
	}
	paths := make([]string, 0, len(args))
	for _, a := range args {
		p, err := filepath.Abs(a)
		if err != nil {
			return nil, nil, nil, err
		}
		if _, err := os.Lstat(p); err != nil {
			return nil, nil, nil, usageError{fmt.Errorf("backup source %s: %w", a, err)}
		}
		paths = append(paths, p)
	}
	if f.systemState {
		if runtime.GOOS != "linux" {
			return nil, nil, nil, usageError{fmt.Errorf("--system-state is for Linux machines")}
		}
		state, err := sysstate.Collect(ctx, home, sysstate.Exec)
		if err != nil {
			return nil, nil, nil, err
		}
		paths = append(paths, state...)
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	level, err := format.ParseLevel(f.compression)
	if err != nil {
		return nil, nil, nil, usageError{err}
	}
	// --exclude-file patterns first, then --exclude, as doc/exclude.md says
	// (it matters for ! patterns: the last match wins).
	var patterns []string
	for _, ef := range f.excludeFiles {
		ps, err := exclude.ReadFile(ef)
		if err != nil {
			return nil, nil, nil, usageError{err}
		}
		patterns = append(patterns, ps...)
	}
	patterns = append(patterns, f.excludes...)
	var excl archiver.Excluder
	if len(patterns) > 0 {
		m, err := exclude.Compile(patterns)
		if err != nil {
			return nil, nil, nil, usageError{err}
		}
		excl = m
	}
	host := f.host
	if host == "" {
		host, _ = os.Hostname()
	}

	r, s, err := g.openRepo(ctx, true)
	if err != nil {
		return nil, nil, nil, err
	}
	defer s.close()
	if f.ended != nil { // before the vault closes
		defer func() { f.ended(s.v, res, err) }()
	}

	var parent *vaultapi.Point
	if !f.force {
		parent, err = findParent(ctx, r, paths)
		if err != nil {
			return nil, nil, nil, err
		}
	}
	status := g.newStatusLine()
	opts := archiver.Options{
		Paths: paths, Exclude: excl, ExcludeNames: patterns, OneFileSystem: f.oneFileSystem,
		Host: host, Parent: parent, Compression: level, Rand: rand.Reader,
		Report: func(p archiver.Problem) {
			kind := "warning"
			if p.Skipped {
				kind = "skipped"
			}
			if g.json {
				status.println(mustJSON(map[string]any{"type": "problem", "kind": kind, "path": p.Path, "error": p.Err.Error()}))
				return
			}
			status.println(fmt.Sprintf("%s: %s: %v", kind, p.Path, p.Err))
		},
	}
	if status.on {
		opts.Progress = func(p archiver.Progress) { status.set(backupProgressLine(p)) }
	}
	if home, err := g.homeDir(); err == nil {
		if dir, err := cache.Dir(home); err == nil {
			opts.FolderIndex = filepath.Join(dir, "folders")
		}
	}
	out, err := archiver.Backup(ctx, r, opts)
	status.done()
	if err != nil {
		return nil, paths, parent, err
	}
	return &out, paths, parent, nil
}

func parentID(p *vaultapi.Point) string {
	if p == nil {
		return ""
	}
	return p.ID
}

func backupProgressLine(p archiver.Progress) string {
	rate := 0.0
	if s := p.Elapsed.Seconds(); s > 0 {
		rate = float64(p.BytesRead) / s
	}
	line := fmt.Sprintf("%s  %d files  %s scanned  %s read (%s/s)  %s added",
		humanDuration(p.Elapsed), p.Files, humanBytes(p.Bytes), humanBytes(p.BytesRead), humanBytes(uint64(rate)), humanBytes(p.BytesAdded))
	if p.EstimatedBytes > 0 && p.Bytes < p.EstimatedBytes && p.Bytes > 0 {
		left := time.Duration(float64(p.Elapsed) * float64(p.EstimatedBytes-p.Bytes) / float64(p.Bytes))
		line += "  ETA " + humanDuration(left)
	}
	if p.Errors > 0 {
		line += fmt.Sprintf("  %d skipped", p.Errors)
	}
	return line
}

// findParent returns the newest point of the same paths, if any.
func findParent(ctx context.Context, r *repo.Repo, paths []string) (*vaultapi.Point, error) {
	points, err := r.Vault.Points(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(points) - 1; i >= 0; i-- {
		m, err := r.Manifest(ctx, points[i])
		if err != nil {
			continue // an unreadable point is no parent; verify reports it
		}
		if len(m.Paths) != len(paths) {
			continue
		}
		same := true
		for j := range paths {
			if string(m.Paths[j]) != paths[j] {
				same = false
				break
			}
		}
		if same {
			return &points[i], nil
		}
	}
	return nil, nil
}
