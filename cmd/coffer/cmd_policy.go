package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/spf13/cobra"
)

// errNoPolicy explains why --schedule and --tz are needed: the machine's
// policy held by the vault is not available to these commands yet.
var errNoPolicy = errors.New("the vault holds no schedule for this machine, so --schedule and --tz are required (for example --schedule \"daily 02:00\" --tz Europe/Berlin)")

// machinePolicy reads this machine's policy from its vault.
func (g *globals) machinePolicy(ctx context.Context) (vaultapi.Policy, error) {
	s, err := g.openVault(ctx)
	if err != nil {
		return vaultapi.Policy{}, err
	}
	defer s.close()
	return s.v.Policy(ctx)
}

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Show, set and preview backup policies",
		Long: `Show and set the backup policy the vault holds, and preview what a policy does.

  coffer policy show               the policy in force for this machine
  coffer policy set                set a machine's policy or the default (operator)
  coffer policy preview            when a schedule runs (time zones and DST included)
  coffer policy retention-preview  which recovery points a retention policy keeps

The syntax and the rules are described in doc/POLICY.md.`,
		Args: cobra.NoArgs,
	}
	// Flag mistakes in these commands are usage errors (exit code 2).
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	cmd.AddCommand(newPolicyPreviewCmd(g), newRetentionPreviewCmd(g), newPolicyShowCmd(g), newPolicySetCmd(g))
	return cmd
}

// policyNoArgs is cobra.NoArgs returning a usage error.
func policyNoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)}
	}
	return nil
}

func newPolicyPreviewCmd(g *globals) *cobra.Command {
	var spec, zone, from string
	var count int
	cmd := &cobra.Command{
		Use:   "preview --schedule S --tz ZONE --from TIME [--count N] [--json]",
		Short: "Print the next runs of a schedule at or after a time",
		Long: `Print the next N runs of a backup schedule at or after --from (an RFC 3339
instant), one a line: the local time in the zone and the UTC instant. A run
marked "(clock jump)" is a scheduled time that does not exist that day
because the clocks jump forward over it; it runs at the jump. A time that
happens twice (the clocks go back) runs once, at its first occurrence.

Schedules:
  daily HH:MM[,HH:MM...]     every day at these times
  DAYS HH:MM[,HH:MM...]      DAYS such as mon-fri, sat,sun, mon,wed-fri
  every Nh | every Nm        every N hours or minutes of absolute time,
                             counted from local midnight of 2000-01-01

With --json, prints a JSON array of RFC 3339 UTC instants.

Examples:
  coffer policy preview --schedule "daily 02:30" --tz America/New_York \
      --from 2027-03-13T00:00:00Z --count 3
  coffer policy preview --schedule "mon-fri 09:00,18:00" --tz Europe/Berlin \
      --from 2027-10-29T00:00:00Z --count 4 --json
  coffer policy preview --schedule "every 90m" --tz UTC --from 2027-01-01T00:00:00Z`,
		Args: policyNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if spec == "" || zone == "" {
				p, err := g.machinePolicy(cmd.Context())
				if err != nil || p.Schedule == "" {
					return usageError{fmt.Errorf("policy preview: %w", errNoPolicy)}
				}
				if spec == "" {
					spec = p.Schedule
				}
				if zone == "" {
					zone = p.Zone
					if zone == "" {
						zone = "UTC"
					}
				}
			}
			s, err := policy.ParseSchedule(spec)
			if err != nil {
				return usageError{err}
			}
			loc, err := policy.LoadZone(zone)
			if err != nil {
				return usageError{err}
			}
			start, err := parsePolicyInstant("--from", from)
			if err != nil {
				return err
			}
			if count < 1 || count > 100000 {
				return usageError{fmt.Errorf("--count %d: must be between 1 and 100000", count)}
			}
			s = s.In(loc)
			runs := s.Runs(start, count)
			if g.json {
				out := make([]string, len(runs))
				for i, r := range runs {
					out[i] = r.UTC().Format(time.RFC3339)
				}
				return writePolicyJSON(g.stdout, out)
			}
			var b strings.Builder
			for _, r := range runs {
				fmt.Fprintf(&b, "%s  %s", formatPolicyLocal(r, loc), r.UTC().Format(time.RFC3339))
				if !s.Matches(r) {
					b.WriteString("  (clock jump)")
				}
				b.WriteString("\n")
			}
			_, err = io.WriteString(g.stdout, b.String())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec, "schedule", "", `schedule, e.g. "daily 02:00", "mon-fri 09:00,18:00", "every 6h"`)
	f.StringVar(&zone, "tz", "", "IANA time zone of the schedule, e.g. Europe/Berlin or UTC")
	f.StringVar(&from, "from", "", "list runs at or after this RFC 3339 instant (required)")
	f.IntVar(&count, "count", 10, "number of runs to print")
	return cmd
}

func newRetentionPreviewCmd(g *globals) *cobra.Command {
	var r policy.Retention
	var timesFile, zone, nowFlag string
	cmd := &cobra.Command{
		Use:   "retention-preview --times FILE [--keep-last N] [--keep-daily N] [--keep-weekly N] [--keep-monthly N] [--keep-yearly N] [--tz ZONE] [--now TIME] [--json]",
		Short: "Show which recovery points a retention policy keeps",
		Long: `Read recovery-point times and print, newest first, which a retention
policy keeps and by which rules ("last", "daily", "weekly", "monthly",
"yearly", "on-demand"); points no rule keeps would be deleted.

FILE holds one RFC 3339 instant a line ("-" reads standard input). Blank
lines and text after "#" are ignored. A line may end with the word
"on-demand" to mark a point taken by hand.

Rules: keep-last N keeps the N newest points; keep-daily N keeps the newest
point of each of the newest N days that have points, in --tz; keep-weekly
uses ISO weeks, keep-monthly and keep-yearly calendar months and years;
--keep-on-demand-days D also keeps on-demand points younger than D days. A
point kept by any rule is kept. Days are counted in --tz (default UTC).

--now is the instant the policy is applied at; it only matters for
on-demand points and defaults to the newest time in FILE, so the output
depends on the inputs alone.

With --json, prints a JSON array of {"time", "keep", "reasons"} objects.

Examples:
  coffer policy retention-preview --times points.txt --keep-daily 7 --keep-weekly 4 \
      --keep-monthly 12 --tz Europe/Berlin
  printf '2027-03-13T07:30:00Z\n2027-03-14T07:00:00Z\n' |
      coffer policy retention-preview --times - --keep-last 1 --json`,
		Args: policyNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if timesFile == "" {
				return usageError{errors.New("policy retention-preview: --times FILE is required (\"-\" for standard input)")}
			}
			loc, err := policy.LoadZone(zone)
			if err != nil {
				return usageError{err}
			}
			r.Location = loc
			if err := r.Validate(); err != nil {
				return usageError{err}
			}
			points, err := readPolicyPoints(g, timesFile)
			if err != nil {
				return err
			}
			var now time.Time
			if nowFlag != "" {
				if now, err = parsePolicyInstant("--now", nowFlag); err != nil {
					return err
				}
			} else {
				for _, p := range points {
					if p.Time.After(now) {
						now = p.Time
					}
				}
			}
			return printPolicyDecisions(g, policy.Apply(r, points, now), now, loc)
		},
	}
	f := cmd.Flags()
	f.StringVar(&timesFile, "times", "", `file of recovery-point times, one RFC 3339 instant a line ("-": standard input)`)
	f.IntVar(&r.KeepLast, "keep-last", 0, "keep the N newest points")
	f.IntVar(&r.Daily, "keep-daily", 0, "keep the newest point of each of the newest N days with points (up to 9999)")
	f.IntVar(&r.Weekly, "keep-weekly", 0, "keep the newest point of each of the newest N ISO weeks with points (up to 5163)")
	f.IntVar(&r.Monthly, "keep-monthly", 0, "keep the newest point of each of the newest N months with points (up to 1188)")
	f.IntVar(&r.Yearly, "keep-yearly", 0, "keep the newest point of each of the newest N years with points (up to 99)")
	f.IntVar(&r.OnDemandDays, "keep-on-demand-days", 0, "keep on-demand points younger than D days")
	f.StringVar(&zone, "tz", "UTC", "IANA time zone in which days, weeks, months and years are counted")
	f.StringVar(&nowFlag, "now", "", "apply the policy at this RFC 3339 instant (default: the newest time in FILE)")
	return cmd
}

// readPolicyPoints reads the --times file; the points are named by line number.
func readPolicyPoints(g *globals, name string) ([]policy.Point, error) {
	in, label := g.stdin, "standard input"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("policy retention-preview: %w", err)
		}
		defer f.Close()
		in, label = f, name
	}
	var points []policy.Point
	sc := bufio.NewScanner(in)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		bad := func(why string) error {
			return usageError{fmt.Errorf("--times %s line %d: %q: %s", label, line, strings.TrimSpace(text), why)}
		}
		t, err := time.Parse(time.RFC3339Nano, fields[0])
		if err != nil {
			return nil, bad("not an RFC 3339 instant such as 2027-03-14T02:00:00Z")
		}
		p := policy.Point{ID: fmt.Sprintf("line %d", line), Time: t}
		switch {
		case len(fields) == 2 && fields[1] == "on-demand":
			p.OnDemand = true
		case len(fields) > 1:
			return nil, bad(`expected an instant, optionally followed by "on-demand"`)
		}
		points = append(points, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("policy retention-preview: reading %s: %w", label, err)
	}
	return points, nil
}

type policyDecisionJSON struct {
	Time     string   `json:"time"`
	Keep     bool     `json:"keep"`
	Reasons  []string `json:"reasons"`
	OnDemand bool     `json:"on_demand,omitempty"`
}

func printPolicyDecisions(g *globals, ds []policy.Decision, now time.Time, loc *time.Location) error {
	if g.json {
		out := make([]policyDecisionJSON, len(ds))
		for i, d := range ds {
			out[i] = policyDecisionJSON{Time: d.Time.UTC().Format(time.RFC3339Nano), Keep: d.Keep, Reasons: d.Reasons, OnDemand: d.OnDemand}
			if out[i].Reasons == nil {
				out[i].Reasons = []string{}
			}
		}
		return writePolicyJSON(g.stdout, out)
	}
	if len(ds) == 0 {
		_, err := io.WriteString(g.stdout, "no recovery points\n")
		return err
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	kept := 0
	for _, d := range ds {
		verdict, reasons := "delete", "-"
		if d.Keep {
			verdict, reasons = "keep", strings.Join(d.Reasons, ",")
			kept++
		}
		if d.OnDemand {
			reasons += " (on-demand point)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", verdict, d.Time.UTC().Format(time.RFC3339Nano), formatPolicyLocal(d.Time, loc), reasons)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(g.stdout, "%d points: %d kept, %d deleted (days in %s, now %s)\n",
		len(ds), kept, len(ds)-kept, loc, now.UTC().Format(time.RFC3339))
	return err
}

// parsePolicyInstant parses an RFC 3339 flag value; a missing or bad value is a
// usage error.
func parsePolicyInstant(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, usageError{fmt.Errorf("%s is required: an RFC 3339 instant such as 2027-03-14T00:00:00Z", flag)}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, usageError{fmt.Errorf("%s %q: not an RFC 3339 instant such as 2027-03-14T00:00:00Z", flag, v)}
	}
	return t, nil
}

// formatPolicyLocal prints an instant's wall-clock time in loc with the weekday
// and the zone's abbreviation and offset.
func formatPolicyLocal(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("Mon 2006-01-02 15:04 MST -07:00")
}

func writePolicyJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
