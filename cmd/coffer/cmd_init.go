package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

func newInitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Set up this machine's keys in the vault, before its first backup",
		Long: `Set up this machine in its vault: create the machine's keys, wrap them
under the passphrase (16 or more characters, from COFFER_PASSPHRASE,
--passphrase-file or a prompt) in a key slot the vault keeps, and keep the
unlocked keys on this machine (COFFER_HOME/keys), so that later commands need
no passphrase (coffer key forget removes them).

The first backup does this by itself when it has not been done; init does it
ahead, the way restic init or borg init make a repository: a script finds out
about a passphrase that is too short, or a vault it cannot reach, before any
file is read, and the first backup does not wait for the key derivation
(Argon2id, about a quarter of a second on two cores).

If the machine's keys already exist, init makes none: it checks that the
passphrase (or the keys this machine keeps) opens them and says so. A wrong
passphrase fails with exit code 4.

Examples:
  COFFER_PASSPHRASE='a passphrase of 16 or more characters' coffer init
  coffer init --vault /srv/coffer-vault --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInit(cmd.Context(), g)
		},
	}
}

func runInit(ctx context.Context, g *globals) error {
	s, err := g.openVault(ctx)
	if err != nil {
		return err
	}
	_, created, err := g.openRepoOn(ctx, s, true, true)
	if cerr := s.close(); err == nil && cerr != nil {
		err = fmt.Errorf("close the vault: %w", cerr)
	}
	if err != nil {
		return err
	}
	where := "the vault server this machine is registered with"
	if s.remote == nil {
		if where, err = g.vaultDir(); err != nil {
			return err
		}
	}
	if g.json {
		return writeJSON(g.stdout, map[string]any{"type": "init", "created": created, "vault": where})
	}
	if g.quiet {
		return nil
	}
	if created {
		fmt.Fprintf(g.stdout, "this machine's keys are ready in %s; back up with: coffer backup PATH...\n", where)
	} else {
		fmt.Fprintf(g.stdout, "this machine's keys already exist in %s, and they open; nothing to do\n", where)
	}
	return nil
}
