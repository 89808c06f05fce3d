package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"strings"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/spf13/cobra"
)

func newPassphraseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "passphrase", Short: "Manage the passphrase that unlocks this machine's keys"}
	var newFile string
	change := &cobra.Command{
		Use:   "change",
		Short: "Change the passphrase (re-wraps the keys; no data is touched)",
		Long: `Change the passphrase. The keys are wrapped anew under the new passphrase;
no data is re-encrypted. The current passphrase (or a recovery key) comes from
COFFER_PASSPHRASE, --passphrase-file or a prompt; the new one from
--new-passphrase-file, COFFER_NEW_PASSPHRASE or a prompt.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, s, err := g.openRepoSecret(ctx)
			if err != nil {
				return err
			}
			defer s.close()
			var np []byte
			switch {
			case newFile != "":
				b, err := os.ReadFile(newFile)
				if err != nil {
					return usageError{fmt.Errorf("new passphrase file: %w", err)}
				}
				np = []byte(strings.TrimRight(string(b), "\r\n"))
			case g.getenv("COFFER_NEW_PASSPHRASE") != "":
				np = []byte(g.getenv("COFFER_NEW_PASSPHRASE"))
			default:
				saved := *g
				saved.passphraseFile = ""
				saved.getenv = func(string) string { return "" }
				np, err = saved.passphrase("New passphrase (16 or more characters): ", true)
				if err != nil {
					return err
				}
			}
			ns, err := r.ChangePassphrase(ctx, np, rand.Reader)
			if err != nil {
				return err
			}
			// The old slot is gone: keep the keys under the new one instead.
			if d := g.keptKeysDir(); d != "" {
				if r.Slot.ID == ns.ID {
					_, _ = d.Forget([]vaultapi.KeySlot{r.Slot})
				}
				g.keepKeys(ns.Data, r.Keys)
			}
			if !g.quiet {
				fmt.Fprintln(g.stdout, "passphrase changed")
			}
			return nil
		},
	}
	change.Flags().StringVar(&newFile, "new-passphrase-file", "", "read the new passphrase from FILE")
	cmd.AddCommand(change)
	return cmd
}

func newKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Manage this machine's key slots"}
	cmd.AddCommand(&cobra.Command{
		Use:   "add-recovery",
		Short: "Create a recovery key that opens the backups on its own",
		Long: `Create a recovery key: a second secret that opens this machine's backups
without the passphrase. Print it, store it somewhere safe and offline. Use it
in place of the passphrase (COFFER_PASSPHRASE or --passphrase-file), then set
a new passphrase with: coffer passphrase change`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, s, err := g.openRepoSecret(ctx)
			if err != nil {
				return err
			}
			defer s.close()
			key, id, err := r.AddRecoveryKey(ctx, rand.Reader)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(g.stdout, map[string]string{"slot": id, "recovery_key": key})
			}
			fmt.Fprintf(g.stdout, "Recovery key (slot %s):\n\n  %s\n\nStore it offline. Anyone holding it can read this machine's backups.\n", id, key)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "forget",
		Short: "Remove the unlocked keys this machine keeps; commands ask for the passphrase again",
		Long: `Remove the unlocked keys kept in the agent's home (COFFER_HOME/keys).

After the passphrase (or a recovery key) has opened a machine's keys once,
Coffer keeps them there (mode 0600) so that later commands and scheduled
backups run without the passphrase and without the key derivation. Forget
them when the machine changes hands, or to make every command ask again.
COFFER_KEEP_KEYS=no stops Coffer from keeping keys at all. Nothing at the
vault changes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := g.keysDir()
			if err != nil {
				return err
			}
			n, err := d.Forget(nil)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(g.stdout, map[string]int{"forgotten": n})
			}
			if !g.quiet {
				fmt.Fprintf(g.stdout, "forgot %d kept key file(s)\n", n)
			}
			return nil
		},
	})
	return cmd
}
