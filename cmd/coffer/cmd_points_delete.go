package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// withPointsDelete adds `points delete` to the points command.
func withPointsDelete(g *globals, points *cobra.Command) *cobra.Command {
	points.AddCommand(&cobra.Command{
		Use:   "delete POINT",
		Short: "Delete a recovery point (an operator action at the vault)",
		Long: `Deleting recovery points is an operator action: a machine's credentials can
add and read its backups but never delete them, so that a compromised
machine cannot destroy its history. With machine credentials the vault
refuses, and coffer exits with code 6.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := g.openVault(ctx)
			if err != nil {
				return err
			}
			defer s.close()
			if s.remote == nil {
				return errors.New("points delete: deleting recovery points is an operator action; the embedded vault has no operator commands yet")
			}
			if err := s.remote.DeletePoint(ctx, args[0]); err != nil {
				return fmt.Errorf("points delete: %w", err)
			}
			return nil
		},
	})
	return points
}
