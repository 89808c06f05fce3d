package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/spf13/cobra"
)

// policyAdmin reads and sets policies as the vault's operator.
type policyAdmin interface {
	Policy(ctx context.Context, machine string) (vaultapi.Policy, error)
	SetPolicy(ctx context.Context, machine string, s policy.Spec) (vaultapi.Policy, error)
}

// embeddedAdmin is the operator of an embedded vault: the local user.
type embeddedAdmin struct{ e *vault.Embedded }

func (a embeddedAdmin) machineID(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	m, err := a.e.Meta().MachineByName(ctx, name)
	if err != nil {
		return "", fmt.Errorf("%w: machine %q", vaultapi.ErrNotFound, name)
	}
	return m.ID, nil
}

func (a embeddedAdmin) Policy(ctx context.Context, name string) (vaultapi.Policy, error) {
	id, err := a.machineID(ctx, name)
	if err != nil {
		return vaultapi.Policy{}, err
	}
	return a.e.Policy(ctx, id)
}

func (a embeddedAdmin) SetPolicy(ctx context.Context, name string, s policy.Spec) (vaultapi.Policy, error) {
	id, err := a.machineID(ctx, name)
	if err != nil {
		return vaultapi.Policy{}, err
	}
	return a.e.SetPolicy(ctx, id, s)
}

// errPolicyIsOperator refuses `policy set` on a machine of a vault server.
var errPolicyIsOperator = fmt.Errorf("%w: this machine's policy is held by its vault server and set by the vault's operator "+
	"(on the vault host: coffer policy set --dir VAULTDIR --machine NAME ...)", vaultapi.ErrForbidden)

// openPolicyAdmin opens the operator side for `policy show/set`: the vault
// named by --dir or --remote, else the embedded vault (whose operator is
// the local user). The machine name "" of an embedded vault means its one
// machine unless --default is given.
func (g *globals) openPolicyAdmin(ctx context.Context, vf *vaultFlags) (policyAdmin, func() error, bool, error) {
	if vf.dir != "" || vf.remote != "" {
		op, closeOp, err := g.openOperator(ctx, vf)
		if err != nil {
			return nil, nil, false, err
		}
		pa, ok := op.(policyAdmin)
		if !ok {
			closeOp()
			return nil, nil, false, errors.New("this operator connection cannot set policies")
		}
		return pa, closeOp, false, nil
	}
	s, err := g.openVault(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	if s.emb == nil {
		s.close()
		return nil, nil, false, errPolicyIsOperator
	}
	return embeddedAdmin{s.emb}, s.close, true, nil
}

type policySetFlags struct {
	machine, schedule, zone, paths, upload, download, workHours, workUp, workDown string
	excludes                                                                      []string
	last, daily, weekly, monthly, yearly, onDemand                                int
	isDefault, replace                                                            bool
}

func newPolicyShowCmd(g *globals) *cobra.Command {
	var vf vaultFlags
	var machine string
	var isDefault bool
	cmd := &cobra.Command{
		Use:   "show [--dir DIR | --remote URL] [--machine NAME | --default]",
		Short: "Show the backup policy the vault holds for this machine",
		Long: `Show the backup policy in force: schedule and time zone, retention, paths and
excludes, bandwidth limits. The vault holds it: the machine's own policy,
else the vault-wide default. On a machine, shows its own; with --dir or
--remote (the vault's operator), the one of --machine NAME or the default.`,
		Args: policyNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var p vaultapi.Policy
			if vf.dir != "" || vf.remote != "" || isDefault || machine != "" {
				pa, closeA, _, err := g.openPolicyAdmin(ctx, &vf)
				if err != nil {
					return err
				}
				defer closeA()
				if p, err = pa.Policy(ctx, machine); err != nil {
					return err
				}
			} else {
				s, err := g.openVault(ctx)
				if err != nil {
					return err
				}
				defer s.close()
				if p, err = s.v.Policy(ctx); err != nil {
					return err
				}
			}
			if g.json {
				return writeJSON(g.stdout, p)
			}
			return printPolicy(g.stdout, p)
		},
	}
	addVaultFlags(cmd, &vf)
	cmd.Flags().StringVar(&machine, "machine", "", "the policy of this machine (operator)")
	cmd.Flags().BoolVar(&isDefault, "default", false, "the vault-wide default (operator)")
	return cmd
}

func addVaultFlags(cmd *cobra.Command, vf *vaultFlags) {
	f := cmd.Flags()
	f.StringVar(&vf.dir, "dir", "", "vault directory (operator, on the vault host)")
	f.StringVar(&vf.remote, "remote", "", "vault server URL (operator, with COFFER_OPERATOR_TOKEN)")
	f.StringVar(&vf.fingerprint, "fingerprint", "", "TLS fingerprint of the --remote vault server")
}

func rateText(bps int64) string {
	if bps == 0 {
		return "unlimited"
	}
	return policy.FormatRate(bps)
}

func printPolicy(w io.Writer, p vaultapi.Policy) error {
	var b strings.Builder
	src := map[string]string{vaultapi.PolicyMachine: "this machine's own", vaultapi.PolicyDefault: "the vault-wide default",
		vaultapi.PolicyNone: "none set (no schedule, every point kept)"}[p.Source]
	fmt.Fprintf(&b, "policy:      %s", src)
	if !p.Updated.IsZero() {
		fmt.Fprintf(&b, ", set %s", p.Updated.Local().Format(time.DateTime))
	}
	b.WriteString("\n")
	zone := p.Zone
	if zone == "" {
		zone = "UTC"
	}
	sched := p.Schedule
	if sched == "" {
		sched = "none (backups only by hand)"
	}
	fmt.Fprintf(&b, "schedule:    %s (%s)\n", sched, zone)
	r := p.Retention
	if r.IsZero() {
		b.WriteString("retention:   off (every point kept)\n")
	} else {
		fmt.Fprintf(&b, "retention:   keep-last %d, daily %d, weekly %d, monthly %d, yearly %d, on-demand %d days\n",
			r.KeepLast, r.Daily, r.Weekly, r.Monthly, r.Yearly, r.OnDemandDays)
	}
	paths := strings.Join(p.Paths, ", ")
	if paths == "" {
		paths = "none (coffer backup needs PATHs)"
	}
	fmt.Fprintf(&b, "paths:       %s\n", paths)
	if len(p.Excludes) > 0 {
		fmt.Fprintf(&b, "excludes:    %s\n", strings.Join(p.Excludes, ", "))
	}
	fmt.Fprintf(&b, "upload:      %s", rateText(p.UploadLimit))
	if p.WorkHours != "" {
		fmt.Fprintf(&b, ", %s during work hours", rateText(p.WorkHoursUpload))
	}
	fmt.Fprintf(&b, "\ndownload:    %s", rateText(p.DownloadLimit))
	if p.WorkHours != "" {
		fmt.Fprintf(&b, ", %s during work hours", rateText(p.WorkHoursDownload))
	}
	b.WriteString("\n")
	if p.WorkHours != "" {
		fmt.Fprintf(&b, "work hours:  %s (%s)\n", p.WorkHours, zone)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func newPolicySetCmd(g *globals) *cobra.Command {
	var vf vaultFlags
	var f policySetFlags
	cmd := &cobra.Command{
		Use:   "set [--dir DIR | --remote URL] [--machine NAME | --default] [flags]",
		Short: "Set a backup policy at the vault (operator)",
		Long: `Set the backup policy of a machine, or the vault-wide default, at the vault.
Setting policies is the vault operator's action: on the vault host give
--dir DIR (or --remote URL --fingerprint FP with COFFER_OPERATOR_TOKEN); on
an embedded vault the local user is the operator. A machine of a vault
server cannot change its policy (exit code 6).

Only the flags given change; the rest stays as it was (--replace starts
from an empty policy). Every mistake is reported at once and nothing is
changed. Agents pick the change up within a minute, without a restart.

Examples:
  coffer policy set --dir /srv/coffer --default --schedule 'mon-fri 02:00' --tz Europe/Berlin \
      --keep-daily 14 --keep-weekly 8 --keep-monthly 12 --keep-yearly 5 --keep-last 3
  coffer policy set --dir /srv/coffer --machine web1 --paths /home,/etc --exclude '*.tmp' \
      --limit-upload 4MiB/s --work-hours 'mon-fri 09:00-18:00' --work-hours-upload 1MiB/s
  coffer policy set --schedule 'daily 02:00,14:00' --tz UTC --paths ~/Documents   (embedded vault)`,
		Args: policyNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if f.isDefault && f.machine != "" {
				return usageError{errors.New("give --machine NAME or --default, not both")}
			}
			pa, closeA, embedded, err := g.openPolicyAdmin(ctx, &vf)
			if err != nil {
				return err
			}
			defer closeA()
			name := f.machine
			if embedded && name == "" && !f.isDefault {
				name = vault.EmbeddedMachine
			}
			if !embedded && name == "" && !f.isDefault {
				return usageError{errors.New("name the machine (--machine NAME) or the vault-wide default (--default)")}
			}
			var spec policy.Spec
			if !f.replace {
				cur, err := pa.Policy(ctx, name)
				if err != nil {
					return err
				}
				if cur.Source == vaultapi.PolicyMachine || name == "" && cur.Source == vaultapi.PolicyDefault {
					spec = cur.Spec
				}
			}
			if err := applyPolicyFlags(cmd, &f, &spec); err != nil {
				return err
			}
			p, err := pa.SetPolicy(ctx, name, spec)
			if errors.Is(err, vaultapi.ErrBadRequest) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(g.stdout, p)
			}
			return printPolicy(g.stdout, p)
		},
	}
	addVaultFlags(cmd, &vf)
	fl := cmd.Flags()
	fl.StringVar(&f.machine, "machine", "", "the machine whose policy to set")
	fl.BoolVar(&f.isDefault, "default", false, "set the vault-wide default (for machines without a policy of their own)")
	fl.BoolVar(&f.replace, "replace", false, "start from an empty policy instead of the current one")
	fl.StringVar(&f.schedule, "schedule", "", `schedule: "daily HH:MM[,...]", "mon-fri HH:MM", "every 6h"; "" for none`)
	fl.StringVar(&f.zone, "tz", "", "IANA time zone of the schedule, work hours and retention (default UTC)")
	fl.IntVar(&f.last, "keep-last", 0, "keep the N newest points")
	fl.IntVar(&f.daily, "keep-daily", 0, "keep the newest point of each of the newest N days (up to 9999)")
	fl.IntVar(&f.weekly, "keep-weekly", 0, "the same with ISO weeks (up to 5163)")
	fl.IntVar(&f.monthly, "keep-monthly", 0, "the same with months (up to 1188)")
	fl.IntVar(&f.yearly, "keep-yearly", 0, "the same with years (up to 99)")
	fl.IntVar(&f.onDemand, "keep-on-demand-days", 0, "also keep points made by hand for D days")
	fl.StringVar(&f.paths, "paths", "", "comma-separated absolute paths that backups cover")
	fl.StringArrayVar(&f.excludes, "exclude", nil, "exclude pattern (repeatable; replaces the list)")
	fl.StringVar(&f.upload, "limit-upload", "", "upload limit outside work hours, e.g. 8MiB/s or unlimited")
	fl.StringVar(&f.download, "limit-download", "", "download limit outside work hours")
	fl.StringVar(&f.workHours, "work-hours", "", `weekly window, e.g. "mon-fri 09:00-18:00"; "" for none`)
	fl.StringVar(&f.workUp, "work-hours-upload", "", "upload limit during work hours")
	fl.StringVar(&f.workDown, "work-hours-download", "", "download limit during work hours")
	return cmd
}

// applyPolicyFlags changes spec by the flags given, collecting mistakes.
func applyPolicyFlags(cmd *cobra.Command, f *policySetFlags, spec *policy.Spec) error {
	ch := cmd.Flags().Changed
	var errs []error
	if ch("schedule") {
		spec.Schedule = strings.TrimSpace(f.schedule)
	}
	if ch("tz") {
		spec.Zone = f.zone
	}
	ints := []struct {
		flag string
		v    int
		dst  *int
	}{{"keep-last", f.last, &spec.Retention.KeepLast}, {"keep-daily", f.daily, &spec.Retention.Daily},
		{"keep-weekly", f.weekly, &spec.Retention.Weekly}, {"keep-monthly", f.monthly, &spec.Retention.Monthly},
		{"keep-yearly", f.yearly, &spec.Retention.Yearly}, {"keep-on-demand-days", f.onDemand, &spec.Retention.OnDemandDays}}
	for _, x := range ints {
		if ch(x.flag) {
			*x.dst = x.v
		}
	}
	if ch("paths") {
		spec.Paths = nil
		for _, p := range strings.Split(f.paths, ",") {
			if p = strings.TrimSpace(p); p != "" {
				spec.Paths = append(spec.Paths, p)
			}
		}
	}
	if ch("exclude") {
		spec.Excludes = f.excludes
	}
	rates := []struct {
		flag, v string
		dst     *int64
	}{{"limit-upload", f.upload, &spec.UploadLimit}, {"limit-download", f.download, &spec.DownloadLimit},
		{"work-hours-upload", f.workUp, &spec.WorkHoursUpload}, {"work-hours-download", f.workDown, &spec.WorkHoursDownload}}
	for _, x := range rates {
		if !ch(x.flag) {
			continue
		}
		r, err := policy.ParseRate(x.v)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", x.flag, err))
			continue
		}
		*x.dst = r
	}
	if ch("work-hours") {
		spec.WorkHours = strings.TrimSpace(f.workHours)
		if spec.WorkHours == "" {
			spec.WorkHoursUpload, spec.WorkHoursDownload = 0, 0
		}
	}
	if _, err := spec.Compile(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	return nil
}
