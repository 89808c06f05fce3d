package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultclient"
	"github.com/coffer-backup/coffer/internal/vaultwire"
	"github.com/spf13/cobra"
)

func newRegisterCmd(g *globals) *cobra.Command {
	var credsFile, name string
	var replace bool
	cmd := &cobra.Command{
		Use:   "register --credentials FILE [--name NAME] [--replace]",
		Short: "Register this machine with a vault server",
		Long: `Register this machine with a vault server, using a vault credentials file
from the vault's operator (coffer vault credentials). The file pins the
vault's TLS certificate and holds an enrolment secret that expires (10 days
by default). This machine receives its own credentials, kept in its home
(` + machineCredentialsFile + `, mode 0600); from then on backup, points, ls,
restore and verify work against the vault server. Use --vault DIR to reach an
embedded vault instead.

The name (default: the host name) must be unique in the vault. A machine
reinstalled under its old name continues that machine's history with
--replace, which asks for the old machine's passphrase.

Examples:
  coffer register --credentials vault.json
  coffer register --credentials vault.json --name web-01 --replace`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if credsFile == "" {
				return usageError{errors.New("register needs --credentials FILE (made by the vault's operator with: coffer vault credentials)")}
			}
			return runRegister(cmd.Context(), g, credsFile, name, replace)
		},
	}
	cmd.Flags().StringVar(&credsFile, "credentials", "", "vault credentials file")
	cmd.Flags().StringVar(&name, "name", "", "machine name in the vault (default: this host's name)")
	cmd.Flags().BoolVar(&replace, "replace", false, "take over the history of the machine of that name (asks for its passphrase)")
	return cmd
}

func runRegister(ctx context.Context, g *globals, credsFile, name string, replace bool) error {
	b, err := os.ReadFile(credsFile)
	if err != nil {
		return usageError{fmt.Errorf("vault credentials: %w", err)}
	}
	var cf vaultwire.CredentialsFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return usageError{fmt.Errorf("vault credentials %s: %v", credsFile, err)}
	}
	if err := cf.Check(); err != nil {
		return usageError{err}
	}
	if name == "" {
		if name, err = os.Hostname(); err != nil {
			return usageError{fmt.Errorf("no --name given and no host name: %w", err)}
		}
	}
	path, err := g.machineCredentialsPath()
	if err != nil {
		return err
	}
	if old, _, err := g.loadMachineCredentials(); err == nil && !replace {
		return usageError{fmt.Errorf("this machine is already registered as %q with the vault at %s (%s); "+
			"delete that file to register again, or use --replace", old.MachineName, old.URL, path)}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) && !replace {
		return err
	}
	cfg := vaultclient.Config{URL: cf.URL, Fingerprint: cf.Fingerprint}
	req := vaultwire.RegisterRequest{Secret: cf.Secret, Name: name, Replace: replace}
	verifierSet := false
	if replace {
		slots, err := vaultclient.ReplaceSlots(ctx, cfg, vaultwire.SlotsRequest{Secret: cf.Secret, Name: name})
		if err != nil {
			return fmt.Errorf("register --replace: %w", err)
		}
		if len(slots.Slots) > 0 {
			secret, err := g.passphrase(fmt.Sprintf("Passphrase of machine %q: ", name), false)
			if err != nil {
				return err
			}
			r, _, err := repo.Open(ctx, staticSlots{slots: slots.Slots}, secret, false, rand.Reader)
			if err != nil {
				return fmt.Errorf("register --replace: the passphrase does not open machine %q's keys: %w", name, err)
			}
			proof := replaceProof(r.Keys)
			req.Proof = proof[:]
			verifierSet = true
		}
	}
	resp, err := vaultclient.Register(ctx, cfg, req)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	mc := &vaultwire.MachineCredentials{Kind: vaultwire.MachineCredentialsKind, Version: 1, URL: cf.URL,
		Fingerprint: cf.Fingerprint, VaultID: resp.VaultID, MachineID: resp.MachineID, MachineName: resp.MachineName,
		Token: resp.Token, VerifierSet: verifierSet}
	if err := saveMachineCredentials(path, mc); err != nil {
		return err
	}
	if g.json {
		return writeJSON(g.stdout, map[string]any{"machine_id": resp.MachineID, "name": resp.MachineName,
			"vault_id": resp.VaultID, "url": cf.URL, "replaced": resp.Replaced, "credentials": path})
	}
	verb := "registered"
	if resp.Replaced {
		verb = "took over the history of machine"
	}
	fmt.Fprintf(g.stdout, "%s %q with the vault at %s\nmachine credentials saved in %s\n", verb, resp.MachineName, cf.URL, path)
	return nil
}

// staticSlots is a vault that only answers KeySlots: repo.Open unwraps
// the slots of the machine to replace with it and calls nothing else.
type staticSlots struct {
	vaultapi.Vault // nil: any other call would be a bug
	slots          []vaultapi.KeySlot
}

func (s staticSlots) KeySlots(context.Context) ([]vaultapi.KeySlot, error) { return s.slots, nil }
