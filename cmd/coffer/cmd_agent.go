package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/coffer-backup/coffer/internal/agent"
	"github.com/coffer-backup/coffer/internal/cache"
	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/spf13/cobra"
)

// agentPassphraseFile is the passphrase kept for the daemon in the
// agent's home (mode 0600), written by `agent install --store-passphrase`.
const agentPassphraseFile = "agent-passphrase"

func newAgentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run backups on the policy's schedule (the daemon)",
		Long: `The agent runs backups on the schedule of the machine's policy, held by the
vault, and reports every job to the vault.

  coffer agent run       run the daemon in the foreground (systemd runs this)
  coffer agent install   write (and enable) a systemd unit that runs it

See doc/AGENT.md.`,
	}
	cmd.AddCommand(newAgentRunCmd(g), newAgentInstallCmd(g))
	return cmd
}

// daemonPassphrase makes the daemon's passphrase source explicit: the
// global --passphrase-file or COFFER_PASSPHRASE, else the file kept in
// the home by `agent install --store-passphrase`, which must be 0600,
// else the keys the machine keeps (doc/CLI.md), checked when the daemon
// starts.
func (g *globals) daemonPassphrase(home string) error {
	if g.secretGiven() {
		return nil
	}
	p := filepath.Join(home, agentPassphraseFile)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		if d := g.keptKeysDir(); d != "" && d.Any() {
			return nil
		}
		return usageError{errors.New("the agent needs the passphrase without a prompt: run one command with the passphrase so that the machine keeps its keys, give --passphrase-file FILE, set COFFER_PASSPHRASE, or run coffer agent install --store-passphrase (see doc/AGENT.md)")}
	}
	if err != nil {
		return err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return usageError{fmt.Errorf("%s is readable by others (mode %o); make it 0600: chmod 600 %s", p, fi.Mode().Perm(), p)}
	}
	g.passphraseFile = p
	return nil
}

// cliRunner runs the daemon's backups as `coffer backup` with no PATH
// does, under the lock the daemon holds.
type cliRunner struct {
	g   *globals
	log *slog.Logger
}

func (r cliRunner) Run(ctx context.Context, pol vaultapi.Policy, job vaultapi.Job) vaultapi.Job {
	// The run's own context ends the goroutines that switch its
	// bandwidth limits at the work-hours edges.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := *r.g
	g.noLock, g.onDemand, g.quiet, g.json = true, false, true, false
	res, _, _, err := doBackup(ctx, &g, backupFlags{compression: "auto"}, nil)
	job.Ended = time.Now()
	if err != nil {
		job.Status, job.Message = vaultapi.StatusFailed, err.Error()
		return job
	}
	job.Status, job.Point = vaultapi.StatusOK, res.Point.ID
	job.Files, job.Bytes, job.BytesAdded, job.Errors = res.Stats.Files, res.Stats.Bytes, res.Stats.BytesAdded, res.Problems
	if res.Problems > 0 {
		job.Status, job.Message = vaultapi.StatusPartial, fmt.Sprintf("%d entries skipped; run coffer backup by hand to see them", res.Problems)
	}
	return job
}

func newAgentRunCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [--limit-upload RATE] [--limit-download RATE]",
		Short: "Run the backup daemon in the foreground",
		Long: `Run backups on the schedule of the machine's policy until stopped (SIGTERM or
Ctrl-C). The policy is read from the vault every minute and before each
run, so changes apply without a restart. Runs missed while the machine was
off run once at start-up. Every job is reported to the vault (coffer jobs).
The passphrase comes from --passphrase-file, COFFER_PASSPHRASE, or the file
agent install --store-passphrase keeps in the home. Logs go to stderr as
JSON lines.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			home, err := g.homeDir()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(home, 0o700); err != nil {
				return err
			}
			if err := g.daemonPassphrase(home); err != nil {
				return err
			}
			// Fail at once on a wrong passphrase or an unreachable vault.
			r, s, err := g.openRepo(ctx, true)
			if err != nil {
				return err
			}
			_ = r
			s.close()
			log := slog.New(slog.NewJSONHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			sv, err := g.openVault(ctx)
			if err != nil {
				return err
			}
			defer sv.close()
			if sv.emb != nil {
				// The embedded vault's store is one process's at a time:
				// the daemon opens it only while it needs it.
				sv.close()
				sv = &session{v: &lazyVault{g: g}, close: func() error { return nil }}
			}
			return agent.Run(ctx, agent.Config{Vault: sv.v, Runner: cliRunner{g: g, log: log},
				StatePath: filepath.Join(home, agent.StateName), LockPath: filepath.Join(home, agent.LockName), Log: log})
		},
	}
	addLimitFlags(cmd, g)
	return cmd
}

// lazyVault opens the embedded vault for each call, so that the daemon
// does not keep its store from `coffer` commands between runs.
type lazyVault struct {
	vaultapi.Vault // not used: only the methods below are called
	g              *globals
}

func (l *lazyVault) with(ctx context.Context, fn func(v vaultapi.Vault) error) error {
	s, err := l.g.openVault(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	return fn(s.v)
}

func (l *lazyVault) Policy(ctx context.Context) (p vaultapi.Policy, err error) {
	err = l.with(ctx, func(v vaultapi.Vault) error { p, err = v.Policy(ctx); return err })
	return p, err
}

func (l *lazyVault) ReportJob(ctx context.Context, j vaultapi.Job) error {
	return l.with(ctx, func(v vaultapi.Vault) error { return v.ReportJob(ctx, j) })
}

func newJobsCmd(g *globals) *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:   "jobs [--json] [-n N]",
		Short: "List this machine's backup jobs, as reported to the vault",
		Long: `List this machine's backup jobs, newest first: when each started and ended,
what started it (schedule, catch-up, manual), its status (running, ok,
partial, failed), the point it made, files, bytes and errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openVault(cmd.Context())
			if err != nil {
				return err
			}
			defer s.close()
			js, err := s.v.Jobs(cmd.Context())
			if err != nil {
				return err
			}
			return printJobs(g, js, n, false)
		},
	}
	cmd.Flags().IntVarP(&n, "count", "n", 50, "at most N jobs (0: all)")
	return cmd
}

func printJobs(g *globals, js []vaultapi.Job, n int, machines bool, names ...map[string]string) error {
	if n > 0 && len(js) > n {
		js = js[:n]
	}
	if g.json {
		return writeJSONList(g.stdout, js)
	}
	if len(js) == 0 {
		fmt.Fprintln(g.stdout, "no jobs reported yet")
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	head := "STARTED\tTOOK\tTRIGGER\tSTATUS\tPOINT\tFILES\tSIZE\tADDED\tERRORS\tMESSAGE"
	if machines {
		head = "MACHINE\t" + head
	}
	fmt.Fprintln(tw, head)
	for _, j := range js {
		took := "-"
		if !j.Ended.IsZero() {
			took = humanDuration(j.Ended.Sub(j.Started))
		}
		pt := j.Point
		if len(pt) > 8 {
			pt = pt[:8]
		}
		if machines {
			name := j.Machine
			if len(names) > 0 && names[0][j.Machine] != "" {
				name = names[0][j.Machine]
			}
			fmt.Fprintf(tw, "%s\t", name)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", j.Started.Local().Format(time.DateTime), took, j.Trigger, j.Status,
			pt, j.Files, humanBytes(j.Bytes), humanBytes(j.BytesAdded), j.Errors, strings.ReplaceAll(j.Message, "\n", " "))
	}
	return tw.Flush()
}

// statusReport is what `coffer status` shows.
type statusReport struct {
	Vault      string          `json:"vault"`
	Machine    string          `json:"machine"`
	Policy     vaultapi.Policy `json:"policy"`
	LastPoint  *vaultapi.Point `json:"last_point,omitempty"`
	LastJob    *vaultapi.Job   `json:"last_job,omitempty"`
	NextBackup time.Time       `json:"next_backup,omitzero"`
	Agent      agent.State     `json:"agent"`
	Cache      cache.Status    `json:"cache"`
	Problems   []string        `json:"problems"`
}

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status [--json]",
		Short: "Show the last and next backup and any problem",
		Long: `Show this machine's backup status: the vault, the policy's schedule, the
last recovery point and job, when the next backup runs, the agent's state
and the cache folder, and every problem found (a failed last job, no
backup for longer than the schedule allows, the agent's trouble, the cache
folder on a network or removable file system or short of space). Exits 0
when there is no problem and 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			home, err := g.homeDir()
			if err != nil {
				return err
			}
			var rep statusReport
			rep.Problems = []string{}
			if rep.Agent, err = agent.LoadState(filepath.Join(home, agent.StateName)); err != nil {
				rep.Problems = append(rep.Problems, err.Error())
			}
			if rep.Cache, err = cache.Stat(home); err != nil {
				rep.Problems = append(rep.Problems, err.Error())
			} else if rep.Cache.Warning != "" {
				rep.Problems = append(rep.Problems, "cache folder: "+rep.Cache.Warning)
			}
			now := time.Now()
			if s, err := g.openVault(ctx); err != nil {
				rep.Problems = append(rep.Problems, "vault: "+err.Error())
			} else {
				defer s.close()
				statusFromVault(ctx, s.v, &rep, now)
			}
			if rep.Agent.Problem != "" {
				rep.Problems = append(rep.Problems, "agent: "+rep.Agent.Problem)
			}
			if g.json {
				if err := writeJSON(g.stdout, rep); err != nil {
					return err
				}
			} else {
				printStatus(g, rep)
			}
			if len(rep.Problems) > 0 {
				return errStatusProblems
			}
			return nil
		},
	}
}

var errStatusProblems = errors.New("problems found (listed above)")

func statusFromVault(ctx context.Context, v vaultapi.Vault, rep *statusReport, now time.Time) {
	info, err := v.Info(ctx)
	if err != nil {
		rep.Problems = append(rep.Problems, "vault: "+err.Error())
		return
	}
	rep.Vault, rep.Machine = info.VaultID, info.MachineName
	if rep.Policy, err = v.Policy(ctx); err != nil {
		rep.Problems = append(rep.Problems, "policy: "+err.Error())
	}
	if ps, err := v.Points(ctx); err == nil && len(ps) > 0 {
		rep.LastPoint = &ps[len(ps)-1]
	}
	if js, err := v.Jobs(ctx); err == nil && len(js) > 0 {
		rep.LastJob = &js[0]
		if js[0].Status == vaultapi.StatusFailed {
			rep.Problems = append(rep.Problems, fmt.Sprintf("the last backup (%s) failed: %s", js[0].Started.Local().Format(time.DateTime), js[0].Message))
		}
	}
	c, err := rep.Policy.Spec.Compile()
	if err != nil || c.Schedule.IsZero() {
		return
	}
	rep.NextBackup = policy.NextRun(c.Schedule, rep.Agent.LastRun, now)
	// A scheduled slot more than a day old without a point is a problem.
	var last time.Time
	if rep.LastPoint != nil {
		last = rep.LastPoint.Time
	}
	if slot := c.Schedule.Next(last); !last.IsZero() && now.Sub(slot) > 24*time.Hour {
		rep.Problems = append(rep.Problems, fmt.Sprintf("no backup since %s although the schedule wanted one at %s; is the agent running? (coffer agent install)",
			last.Local().Format(time.DateTime), slot.Local().Format(time.DateTime)))
	}
}

func printStatus(g *globals, rep statusReport) {
	w := g.stdout
	fmt.Fprintf(w, "machine:      %s (vault %s)\n", rep.Machine, rep.Vault)
	sched := rep.Policy.Schedule
	if sched == "" {
		sched = "none (backups only by hand)"
	} else {
		z := rep.Policy.Zone
		if z == "" {
			z = "UTC"
		}
		sched += " (" + z + ")"
	}
	fmt.Fprintf(w, "schedule:     %s\n", sched)
	if rep.LastPoint != nil {
		fmt.Fprintf(w, "last backup:  %s, point %s, %d files, %s\n", rep.LastPoint.Time.Local().Format(time.DateTime),
			rep.LastPoint.ID[:8], rep.LastPoint.Stats.Files, humanBytes(rep.LastPoint.Stats.Bytes))
	} else {
		fmt.Fprintln(w, "last backup:  none yet")
	}
	if rep.LastJob != nil {
		fmt.Fprintf(w, "last job:     %s %s (%s)\n", rep.LastJob.Started.Local().Format(time.DateTime), rep.LastJob.Status, rep.LastJob.Trigger)
	}
	if !rep.NextBackup.IsZero() {
		fmt.Fprintf(w, "next backup:  %s\n", rep.NextBackup.Local().Format(time.DateTime))
	}
	agentLine := "not running"
	if rep.Agent.PID != 0 {
		agentLine = fmt.Sprintf("running (pid %d, state of %s)", rep.Agent.PID, rep.Agent.Updated.Local().Format(time.DateTime))
	}
	fmt.Fprintf(w, "agent:        %s\n", agentLine)
	free := "unknown"
	if rep.Cache.Free >= 0 {
		free = humanBytes(uint64(rep.Cache.Free))
	}
	fmt.Fprintf(w, "cache folder: %s (%s used, %s free)\n", rep.Cache.Dir, humanBytes(uint64(rep.Cache.Size)), free)
	if len(rep.Problems) == 0 {
		fmt.Fprintln(w, "problems:     none")
		return
	}
	fmt.Fprintln(w, "problems:")
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}
