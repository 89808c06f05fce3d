package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/coffer-backup/coffer/internal/agent"
	"github.com/spf13/cobra"
)

const unitName = "coffer-agent.service"

// systemdUnit returns the unit that runs the agent.
func systemdUnit(exe, home, passFile string, user bool, extra []string) string {
	args := []string{systemdQuote(exe), "--home", systemdQuote(home)}
	if passFile != "" {
		args = append(args, "--passphrase-file", systemdQuote(passFile))
	}
	args = append(args, "agent", "run")
	for _, a := range extra {
		args = append(args, systemdQuote(a))
	}
	want := "multi-user.target"
	if user {
		want = "default.target"
	}
	return `# Written by coffer agent install. See doc/AGENT.md.
[Unit]
Description=Coffer backup agent
Documentation=https://github.com/coffer-backup/coffer/blob/main/doc/AGENT.md
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=` + strings.Join(args, " ") + `
Restart=on-failure
RestartSec=30
# Backups give way to interactive work.
Nice=10
IOSchedulingClass=idle
KillSignal=SIGTERM
TimeoutStopSec=60

[Install]
WantedBy=` + want + "\n"
}

// systemdQuote quotes a word for ExecStart when it needs it.
func systemdQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\$%;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", "$$", "%", "%%")
	return `"` + r.Replace(s) + `"`
}

func newAgentInstallCmd(g *globals) *cobra.Command {
	var dryRun, user, storePass bool
	var unitDir string
	cmd := &cobra.Command{
		Use:   "install [--dry-run] [--user] [--store-passphrase] [--unit-dir DIR] [-- AGENT-RUN-FLAGS]",
		Short: "Write and enable a systemd unit that runs the agent",
		Long: `Write a systemd unit (coffer-agent.service) that runs coffer agent run with
this home, and enable and start it when systemd is running. It prints
every step. --dry-run prints the unit and does nothing. --user installs a
user unit (~/.config/systemd/user) instead of a system one
(/etc/systemd/system).

The daemon needs the passphrase without a prompt. Either the unit passes
the global --passphrase-file FILE you give here, or, with
--store-passphrase (your consent), the passphrase (from --passphrase-file,
COFFER_PASSPHRASE or a prompt) is written to HOME/agent-passphrase, mode
0600, for the daemon to read. See doc/AGENT.md for why and for the
alternatives.

Flags after -- are added to agent run (e.g. -- --limit-upload 4MiB/s).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runtime.GOOS != "linux" && !dryRun {
				return usageError{fmt.Errorf("agent install writes a systemd unit, which is for Linux; on %s run coffer agent run from the system's service manager (--dry-run shows the unit)", runtime.GOOS)}
			}
			home, err := g.homeDir()
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			if p, err := filepath.EvalSymlinks(exe); err == nil {
				exe = p
			}
			passFile := ""
			if g.passphraseFile != "" {
				if passFile, err = filepath.Abs(g.passphraseFile); err != nil {
					return err
				}
			}
			if storePass {
				passFile = ""
			} else if passFile == "" {
				if _, err := os.Stat(filepath.Join(home, agentPassphraseFile)); err != nil {
					return usageError{errors.New("the agent needs the passphrase without a prompt: give --passphrase-file FILE (the unit will use it) or --store-passphrase (it is kept in the agent's home, mode 0600)")}
				}
			}
			if unitDir == "" {
				unitDir = "/etc/systemd/system"
				if user {
					cfg, err := os.UserConfigDir()
					if err != nil {
						return err
					}
					unitDir = filepath.Join(cfg, "systemd", "user")
				}
			}
			unit := systemdUnit(exe, home, passFile, user, args)
			out := g.stdout
			if dryRun {
				fmt.Fprintf(out, "# would write %s\n%s", filepath.Join(unitDir, unitName), unit)
				return nil
			}
			if storePass {
				secret, err := g.passphrase("Passphrase to keep for the agent: ", false)
				if err != nil {
					return err
				}
				if err := os.MkdirAll(home, 0o700); err != nil {
					return err
				}
				p := filepath.Join(home, agentPassphraseFile)
				if err := agent.WriteFileAtomic(p, append(secret, '\n'), 0o600); err != nil {
					return err
				}
				fmt.Fprintf(out, "kept the passphrase for the agent in %s (mode 0600)\n", p)
			}
			if err := os.MkdirAll(unitDir, 0o755); err != nil {
				return err
			}
			path := filepath.Join(unitDir, unitName)
			if err := agent.WriteFileAtomic(path, []byte(unit), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(out, "wrote %s\n", path)
			return enableUnit(out, user)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&dryRun, "dry-run", false, "print the unit; change nothing")
	f.BoolVar(&user, "user", false, "install a user unit instead of a system one")
	f.BoolVar(&storePass, "store-passphrase", false, "keep the passphrase in the agent's home (mode 0600) for the daemon")
	f.StringVar(&unitDir, "unit-dir", "", "directory of the unit (default /etc/systemd/system, or the user unit directory)")
	return cmd
}

// enableUnit reloads systemd and enables and starts the unit, when
// systemd runs this machine.
func enableUnit(out io.Writer, user bool) error {
	systemctl, err := exec.LookPath("systemctl")
	if _, serr := os.Stat("/run/systemd/system"); err != nil || serr != nil {
		fmt.Fprintf(out, "systemd is not running here: enable it later with: systemctl%s enable --now %s\n", userFlag(user), unitName)
		return nil
	}
	for _, args := range [][]string{{"daemon-reload"}, {"enable", "--now", unitName}} {
		if user {
			args = append([]string{"--user"}, args...)
		}
		fmt.Fprintf(out, "running: systemctl %s\n", strings.Join(args, " "))
		if b, err := exec.Command(systemctl, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
		}
	}
	fmt.Fprintf(out, "the agent runs now; see it with: coffer status, or systemctl%s status %s\n", userFlag(user), unitName)
	return nil
}

func userFlag(user bool) string {
	if user {
		return " --user"
	}
	return ""
}
