package main

import (
	"io"

	"github.com/spf13/cobra"
)

// globals holds what every command shares: flags of the root command,
// standard streams and the environment (injected so tests can run commands
// in-process).
type globals struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	json           bool   // --json: machine-readable output on stdout
	vault          string // --vault DIR, or COFFER_VAULT
	vaultStorage   string // --vault-storage URL, or COFFER_VAULT_STORAGE
	home           string // --home DIR, or COFFER_HOME
	passphraseFile string // --passphrase-file FILE
	quiet          bool   // --quiet: no progress

	limitUpload, limitDownload string // --limit-upload, --limit-download RATE
	onDemand                   bool   // commits are backups by hand
	noLock                     bool   // the caller holds the backup lock (the daemon)
}

func newGlobals(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *globals {
	return &globals{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "coffer",
		Short: "Encrypted, deduplicated backup and restore of files and folders to a vault",
		Long: `Coffer backs up the files and folders of a machine to a vault, and restores them.

Data is chunked, deduplicated, compressed and encrypted on this machine; the
vault never sees a key, a file name or a byte of plaintext. With no vault
named, Coffer keeps an embedded vault in your data directory.

Quick start:
  export COFFER_PASSPHRASE='a passphrase of 16 or more characters'
  coffer backup ~/Documents
  coffer points
  coffer restore latest --target /tmp/restored

Once the passphrase has opened this machine's keys, the machine keeps them
in its home (COFFER_HOME/keys, mode 0600), so later commands and scheduled
backups need no passphrase; coffer key forget removes them.

Exit codes: 0 success, 1 error, 2 bad usage, 3 partial (some files were
skipped, see the report), 4 wrong passphrase or key, 5 vault data damaged,
6 refused by the vault (not authorised, wrong TLS fingerprint, or an
operator action such as deleting a recovery point or setting a policy),
7 not enough free space in the cache folder, 8 another backup is running.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(g.stdin)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	pf := root.PersistentFlags()
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON on stdout")
	pf.StringVar(&g.vault, "vault", "", "embedded vault directory (default $COFFER_VAULT, else the user data directory)")
	pf.StringVar(&g.vaultStorage, "vault-storage", "", "where the embedded vault keeps its data: a directory, azblob://CONTAINER[/PREFIX] or s3://BUCKET[/PREFIX] (default $COFFER_VAULT_STORAGE, else what the vault recorded at its first use, else DIR/data)")
	pf.StringVar(&g.home, "home", "", "agent home: configuration, keys and cache folder (default $COFFER_HOME, else the user config directory)")
	pf.StringVar(&g.passphraseFile, "passphrase-file", "", "read the passphrase from FILE (default $COFFER_PASSPHRASE, else the keys this machine kept after the passphrase opened them once, else a prompt; see coffer key forget)")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "no progress output")
	addProfileFlags(root)

	root.AddCommand(
		newInitCmd(g),
		newBackupCmd(g),
		withPointsDelete(g, newPointsCmd(g)),
		newLsCmd(g),
		newRestoreCmd(g),
		newCatCmd(g),
		newDumpCmd(g),
		newFindCmd(g),
		newDiffCmd(g),
		newMountCmd(g),
		newVerifyCmd(g),
		newPassphraseCmd(g),
		newKeyCmd(g),
		newBenchmarkCmd(g),
		newVersionCmd(g),
		newPolicyCmd(g),
		newRegisterCmd(g),
		newVaultCmd(g),
		newJobsCmd(g),
		newAgentCmd(g),
		newStatusCmd(g),
		newCacheCmd(g),
	)
	return root
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Coffer's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := io.WriteString(g.stdout, "coffer "+version+"\n")
			return err
		},
	}
}

var version = "0.1.0-dev"
