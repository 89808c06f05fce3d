package main

import (
	"context"
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/spf13/cobra"
)

// retentionEvery is how often a vault server enforces retention besides
// after each commit (points also age into deletion and purge).
const retentionEvery = time.Hour

// retentionLoop enforces retention on every machine at start and every
// retentionEvery until ctx is done.
func retentionLoop(ctx context.Context, v *vault.Vault, log *slog.Logger) {
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		if _, err := v.ApplyRetentionAll(ctx); err != nil && ctx.Err() == nil {
			log.Warn("retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func withVaultPointsUndelete(g *globals, vf *vaultFlags, points *cobra.Command) *cobra.Command {
	var machine string
	cmd := &cobra.Command{
		Use:   "undelete ID [--machine NAME]",
		Short: "Restore a recovery point that retention soft-deleted (within 14 days)",
		Long: `Restore a soft-deleted recovery point (see coffer vault points --deleted): it
is listed again and can be restored from. Within 14 days of its deletion
only; then the vault purges it. Unless the policy changes to keep it, the
next retention run deletes it again, so change the policy first (or
restore from it at once).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, closeOp, err := g.openOperator(cmd.Context(), vf)
			if err != nil {
				return err
			}
			defer closeOp()
			if err := op.UndeletePoint(cmd.Context(), machine, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "point %s restored\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&machine, "machine", "", "the machine of the point (by name)")
	points.AddCommand(cmd)
	return points
}

func newVaultJobsCmd(g *globals, vf *vaultFlags) *cobra.Command {
	var machine string
	var n int
	cmd := &cobra.Command{
		Use:   "jobs [--machine NAME] [-n N]",
		Short: "List the backup jobs the machines reported, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			op, closeOp, err := g.openOperator(cmd.Context(), vf)
			if err != nil {
				return err
			}
			defer closeOp()
			js, err := op.Jobs(cmd.Context(), machine)
			if err != nil {
				return err
			}
			names := map[string]string{}
			if ms, err := op.Machines(cmd.Context()); err == nil {
				for _, m := range ms {
					names[m.ID] = m.Name
				}
			}
			return printJobs(g, js, n, true, names)
		},
	}
	cmd.Flags().StringVar(&machine, "machine", "", "only this machine (by name)")
	cmd.Flags().IntVarP(&n, "count", "n", 100, "at most N jobs (0: all)")
	return cmd
}

func newVaultRetentionCmd(g *globals, vf *vaultFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "retention",
		Short: "Enforce retention on every machine now",
		Long: `Enforce every machine's retention now, on the vault's clock: points no rule
keeps are soft-deleted; points deleted more than 14 days ago are purged.
The vault does this after each commit and every hour anyway.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			op, closeOp, err := g.openOperator(cmd.Context(), vf)
			if err != nil {
				return err
			}
			defer closeOp()
			res, err := op.RunRetention(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return writeJSONList(g.stdout, res)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MACHINE\tDELETED\tPURGED")
			for _, r := range res {
				fmt.Fprintf(tw, "%s\t%d\t%d\n", r.Machine, len(r.Deleted), len(r.Purged))
			}
			return tw.Flush()
		},
	}
}
