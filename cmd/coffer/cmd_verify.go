package main

import (
	"fmt"
	"strings"

	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/verify"
	"github.com/spf13/cobra"
)

func newVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify [POINT...]",
		Short: "Read and authenticate everything the recovery points reference",
		Long: `Read every tree and every chunk that this machine's recovery points (or
the given ones) reference, authenticate and decrypt it, and check it against
its ID. Damaged or missing data is reported with the files it affects.

Exit code 0 when everything is intact, 5 when something is damaged.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, s, err := g.openRepo(ctx, false)
			if err != nil {
				return err
			}
			defer s.close()
			var points []vaultapi.Point
			if len(args) == 0 {
				points, err = r.Vault.Points(ctx)
				if err != nil {
					return err
				}
			}
			for _, a := range args {
				p, err := repo.ResolvePoint(ctx, r.Vault, a)
				if err != nil {
					return err
				}
				points = append(points, p)
			}
			status := g.newStatusLine()
			var damages []map[string]any
			res, err := verify.Verify(ctx, r, points, verify.Options{
				Report: func(d verify.Damage) {
					if g.json {
						damages = append(damages, map[string]any{"point": d.Point, "paths": d.Paths, "error": d.Err.Error()})
						return
					}
					status.println(fmt.Sprintf("damaged: %s (point %.8s): %v", strings.Join(d.Paths, ", "), d.Point, d.Err))
				},
				Progress: func(done, total uint64) {
					if done%256 == 0 || done == total {
						status.set(fmt.Sprintf("verified %d of %d chunks", done, total))
					}
				},
			})
			status.done()
			if err != nil {
				return err
			}
			if g.json {
				if damages == nil {
					damages = []map[string]any{}
				}
				if err := writeJSON(g.stdout, map[string]any{"points": res.Points, "trees": res.Trees, "chunks": res.Blobs,
					"bytes": res.Bytes, "damaged": res.Damaged, "damages": damages}); err != nil {
					return err
				}
			} else if !g.quiet {
				fmt.Fprintf(g.stdout, "checked %d points, %d folders, %d chunks (%s)\n", res.Points, res.Trees, res.Blobs, humanBytes(res.Bytes))
			}
			if res.Damaged > 0 {
				return fmt.Errorf("%w: %d damaged or missing pieces (listed above)", vaultapi.ErrDamaged, res.Damaged)
			}
			if !g.json && !g.quiet {
				fmt.Fprintln(g.stdout, "no damage found")
			}
			return nil
		},
	}
}
