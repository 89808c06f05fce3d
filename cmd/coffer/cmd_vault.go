package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultclient"
	"github.com/coffer-backup/coffer/internal/vaultserver"
	"github.com/coffer-backup/coffer/internal/vaultwire"
	"github.com/spf13/cobra"
)

// Files of a served vault directory besides meta.db, data/ and the
// certificate: where the server is reached, and the local operator token
// that lets operator commands on the vault host talk to a running server.
const (
	serverInfoFile    = "server.json"
	operatorTokenFile = "operator-token"
)

type serverInfo struct {
	URL         string `json:"url"`       // for agents
	LocalURL    string `json:"local_url"` // for operator commands on this host
	Fingerprint string `json:"fingerprint"`
}

// vaultFlags are the flags shared by the operator commands.
type vaultFlags struct {
	dir         string // vault directory (on the vault host)
	remote      string // or a vault server's URL, with an operator token
	fingerprint string
}

func newVaultCmd(g *globals) *cobra.Command {
	var vf vaultFlags
	cmd := &cobra.Command{
		Use:   "vault",
		Short: "Run and administer a vault server",
		Long: `Run a vault server and administer it.

On the vault host, operator commands take --dir DIR (the vault directory);
they open the vault's store directly, or talk to the running server with the
local operator token it keeps in DIR. From elsewhere, give --remote URL
--fingerprint FP and an operator token in COFFER_OPERATOR_TOKEN.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&vf.dir, "dir", "", "vault directory")
	pf.StringVar(&vf.remote, "remote", "", "operate a vault server at URL (with COFFER_OPERATOR_TOKEN)")
	pf.StringVar(&vf.fingerprint, "fingerprint", "", "TLS fingerprint of the --remote vault server")
	cmd.AddCommand(newVaultServeCmd(g, &vf), newVaultCredentialsCmd(g, &vf), newVaultMachinesCmd(g, &vf),
		withVaultPointsUndelete(g, &vf, newVaultPointsCmd(g, &vf)), newVaultTokenCmd(g, &vf), newVaultJobsCmd(g, &vf),
		newVaultRetentionCmd(g, &vf))
	return cmd
}

// openServedVault opens the vault in dir: metadata, packs (in the store
// storageURL names, "" for the one the vault recorded; see storage.go) and
// the vault core.
func openServedVault(ctx context.Context, g *globals, dir, storageURL string, log *slog.Logger) (*vault.Vault, *meta.Bolt, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("vault directory: %w", err)
	}
	st, err := openVaultStorage(ctx, dir, storageURL, g.getenv)
	if err != nil {
		return nil, nil, err
	}
	m, err := meta.OpenBolt(filepath.Join(dir, "meta.db"), func() string {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	})
	if err != nil {
		return nil, nil, err
	}
	return vault.New(vault.Config{Meta: m, Storage: st, Log: log}), m, nil
}

func newVaultServeCmd(g *globals, vf *vaultFlags) *cobra.Command {
	var storageURL, listen, url, certFile, keyFile string
	cmd := &cobra.Command{
		Use:   "serve --dir DIR [--storage URL] [--listen ADDR] [--url URL]",
		Short: "Serve a vault over HTTPS",
		Long: `Serve the vault in DIR over HTTPS until interrupted.

TLS is always on. On first start a self-signed certificate is made in DIR and
kept; its SHA-256 fingerprint is printed, and vault credentials files pin it.
Give --cert and --key to use your own certificate instead. --url is the
address machines use to reach the vault (default https://HOSTNAME:PORT).
Logs are JSON lines on stderr.

DIR holds the metadata, the certificate and tokens; --storage names where
the packs go: a directory, azblob://CONTAINER[/PREFIX][?endpoint=URL] or
s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true], with
credentials in the environment (AZURE_STORAGE_*, AWS_*). The default is
DIR/data. The store is checked at start: a malformed URL (exit code 2),
missing or refused credentials or an unreachable service (exit code 1) stop
the server before it listens. DIR records the URL at the first start and
later starts refuse another one.

Examples:
  coffer vault serve --dir /srv/coffer
  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... coffer vault serve --dir /srv/coffer \
      --storage 's3://backups/vault?endpoint=https://minio.example:9000&path_style=true'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if vf.dir == "" {
				return usageError{errors.New("vault serve needs --dir DIR")}
			}
			if (certFile == "") != (keyFile == "") {
				return usageError{errors.New("give both --cert and --key, or neither")}
			}
			return runVaultServe(cmd.Context(), g, vf.dir, storageURL, listen, url, certFile, keyFile)
		},
	}
	cmd.Flags().StringVar(&storageURL, "storage", "", "where the packs go: a directory, azblob://… or s3://… (default: what DIR recorded, else DIR/data)")
	cmd.Flags().StringVar(&listen, "listen", ":8443", "address to listen on")
	cmd.Flags().StringVar(&url, "url", "", "URL machines use to reach this vault (default https://HOSTNAME:PORT)")
	cmd.Flags().StringVar(&certFile, "cert", "", "PEM certificate (default: a self-signed one kept in DIR)")
	cmd.Flags().StringVar(&keyFile, "key", "", "PEM private key of --cert")
	return cmd
}

func runVaultServe(ctx context.Context, g *globals, dir, storageURL, listen, url, certFile, keyFile string) error {
	log := slog.New(slog.NewJSONHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	v, m, err := openServedVault(ctx, g, dir, storageURL, log)
	if err != nil {
		return err
	}
	defer m.CloseCompact() // at shutdown: give back the metadata file's free pages
	auth, err := vaultserver.NewAuthority(v, nil, rand.Reader)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" && !net.ParseIP(h).IsUnspecified() {
		host = h
	} else if hn, err := os.Hostname(); err == nil {
		host = hn
	}
	if url == "" {
		url = "https://" + net.JoinHostPort(host, port)
	}
	localHost := "127.0.0.1"
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		localHost = host
	}
	tc, err := loadServerCert(dir, certFile, keyFile, url)
	if err != nil {
		ln.Close()
		return err
	}
	fp := vaultserver.CertFingerprint(tc)
	if err := ensureOperatorToken(ctx, dir, auth); err != nil {
		ln.Close()
		return err
	}
	info := serverInfo{URL: url, LocalURL: "https://" + net.JoinHostPort(localHost, port), Fingerprint: fp}
	if err := writeJSONFile(filepath.Join(dir, serverInfoFile), info, 0o644); err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(g.stdout, "vault %s serving at %s\nTLS fingerprint: %s\nmake vault credentials with: coffer vault credentials --dir %s --out FILE\n",
		m.VaultID(), url, fp, dir)
	srv := vaultserver.New(vaultserver.Config{Vault: v, Authority: auth, Log: log})
	go retentionLoop(ctx, v, log) // retention on the vault's clock
	log.Info("vault serving", "url", url, "listen", ln.Addr().String(), "fingerprint", fp, "dir", dir)
	return vaultserver.Serve(ctx, ln, srv, tc, log)
}

func loadServerCert(dir, certFile, keyFile, url string) (tls.Certificate, error) {
	if certFile != "" {
		return vaultserver.LoadCert(certFile, keyFile)
	}
	var hosts []string
	if h := strings.TrimPrefix(url, "https://"); h != "" {
		if host, _, err := net.SplitHostPort(h); err == nil {
			hosts = append(hosts, host)
		}
	}
	if hn, err := os.Hostname(); err == nil {
		hosts = append(hosts, hn)
	}
	return vaultserver.LoadOrCreateCert(dir, hosts, time.Now(), rand.Reader)
}

// ensureOperatorToken makes the local operator token on first start.
func ensureOperatorToken(ctx context.Context, dir string, auth *vaultserver.Authority) error {
	path := filepath.Join(dir, operatorTokenFile)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	t, err := auth.CreateOperatorToken(ctx, "local")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(t.Token+"\n"), 0o600); err != nil {
		return fmt.Errorf("operator token: %w", err)
	}
	return nil
}

func writeJSONFile(path string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// operator is the operator surface, local (the store opened directly) or
// remote (a vault server, with an operator token).
type operator interface {
	Machines(ctx context.Context) ([]vaultwire.MachineInfo, error)
	MachinePoints(ctx context.Context, name string) ([]vaultapi.Point, error)
	CreateEnrolment(ctx context.Context, ttl time.Duration) (vaultwire.EnrolmentResponse, error)
	CreateOperatorToken(ctx context.Context, name string) (vaultwire.TokenResponse, error)
	RevokeEnrolment(ctx context.Context, id string) error
	RevokeToken(ctx context.Context, id string) error

	Policy(ctx context.Context, machine string) (vaultapi.Policy, error)
	SetPolicy(ctx context.Context, machine string, s policy.Spec) (vaultapi.Policy, error)
	Jobs(ctx context.Context, machine string) ([]vaultapi.Job, error)
	DeletedPoints(ctx context.Context, machine string) ([]vaultapi.Point, error)
	UndeletePoint(ctx context.Context, machine, id string) error
	RunRetention(ctx context.Context) ([]vault.RetentionResult, error)
}

var (
	_ operator = (*vaultserver.Authority)(nil)
	_ operator = (*vaultclient.Admin)(nil)
)

// openOperator reaches the vault as an operator: --remote with a token; or
// on the vault host the running server (with the local operator token),
// else the store itself.
func (g *globals) openOperator(ctx context.Context, vf *vaultFlags) (operator, func() error, error) {
	if vf.remote != "" {
		tok := g.getenv("COFFER_OPERATOR_TOKEN")
		if tok == "" || vf.fingerprint == "" {
			return nil, nil, usageError{errors.New("--remote needs --fingerprint and an operator token in COFFER_OPERATOR_TOKEN")}
		}
		a, err := vaultclient.NewAdmin(vaultclient.Config{URL: vf.remote, Fingerprint: vf.fingerprint, Token: tok})
		if err != nil {
			return nil, nil, usageError{err}
		}
		return a, a.Close, nil
	}
	if vf.dir == "" {
		return nil, nil, usageError{errors.New("give --dir DIR (the vault directory), or --remote URL --fingerprint FP")}
	}
	dir, err := filepath.Abs(vf.dir)
	if err != nil {
		return nil, nil, err
	}
	if a, err := localServer(ctx, dir); err == nil {
		return a, a.Close, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "meta.db")); err != nil {
		return nil, nil, usageError{fmt.Errorf("%s is not a vault directory (no meta.db)", dir)}
	}
	v, m, err := openServedVault(ctx, g, dir, "", nil)
	if err != nil {
		return nil, nil, err
	}
	auth, err := vaultserver.NewAuthority(v, nil, rand.Reader)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return auth, m.Close, nil
}

// localServer returns the operator client of the server running on this
// vault directory, or an error wrapping fs.ErrNotExist if none runs.
func localServer(ctx context.Context, dir string) (*vaultclient.Admin, error) {
	var info serverInfo
	b, err := os.ReadFile(filepath.Join(dir, serverInfoFile))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("%s: %w", serverInfoFile, err)
	}
	tok, err := os.ReadFile(filepath.Join(dir, operatorTokenFile))
	if err != nil {
		return nil, err
	}
	a, err := vaultclient.NewAdmin(vaultclient.Config{URL: info.LocalURL, Fingerprint: info.Fingerprint,
		Token: strings.TrimSpace(string(tok)), Retries: -1})
	if err != nil {
		return nil, err
	}
	if _, err := a.Machines(ctx); err != nil {
		a.Close()
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return nil, fmt.Errorf("no server running: %w", fs.ErrNotExist)
		}
		return nil, err
	}
	return a, nil
}

func newVaultCredentialsCmd(g *globals, vf *vaultFlags) *cobra.Command {
	var out, url string
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "credentials --dir DIR --out FILE [--expires 240h]",
		Short: "Write a vault credentials file for registering machines",
		Long: `Write a vault credentials file: the vault's URL, its TLS fingerprint, and an
enrolment secret that expires (after 10 days by default). Machines register
with it: coffer register --credentials FILE. Keep it as secret as a
password until it expires.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("vault credentials needs --out FILE")}
			}
			ctx := cmd.Context()
			info, err := vaultEndpoint(vf, url)
			if err != nil {
				return err
			}
			op, closeOp, err := g.openOperator(ctx, vf)
			if err != nil {
				return err
			}
			defer closeOp()
			en, err := op.CreateEnrolment(ctx, expires)
			if err != nil {
				return err
			}
			cf := vaultwire.CredentialsFile{Kind: vaultwire.CredentialsKind, Version: 1, URL: info.URL, VaultID: en.VaultID,
				Fingerprint: info.Fingerprint, Secret: en.Secret, Expires: en.Expires}
			if err := writeJSONFile(out, cf, 0o600); err != nil {
				return err
			}
			if g.json {
				return writeJSON(g.stdout, map[string]any{"file": out, "id": en.ID, "expires": en.Expires, "url": info.URL})
			}
			fmt.Fprintf(g.stdout, "wrote vault credentials %s to %s, valid until %s\nregister a machine with: coffer register --credentials %s\n",
				en.ID, out, en.Expires.Local().Format(time.DateTime), filepath.Base(out))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write (mode 0600)")
	cmd.Flags().StringVar(&url, "url", "", "vault URL for the machines (default: the one the server announced)")
	cmd.Flags().DurationVar(&expires, "expires", vaultserver.DefaultEnrolmentTTL, "how long the file can register machines")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a vault credentials file (by the ID printed when it was made)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, closeOp, err := g.openOperator(cmd.Context(), vf)
			if err != nil {
				return err
			}
			defer closeOp()
			return op.RevokeEnrolment(cmd.Context(), args[0])
		},
	}
	cmd.AddCommand(revoke)
	return cmd
}

// vaultEndpoint returns the URL and fingerprint machines use.
func vaultEndpoint(vf *vaultFlags, url string) (serverInfo, error) {
	var info serverInfo
	if vf.remote != "" {
		info = serverInfo{URL: vf.remote, Fingerprint: vf.fingerprint}
	} else if vf.dir != "" {
		b, err := os.ReadFile(filepath.Join(vf.dir, serverInfoFile))
		if err == nil {
			err = json.Unmarshal(b, &info)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return info, err
		}
		if info.Fingerprint == "" {
			c, err := vaultserver.LoadCert(filepath.Join(vf.dir, vaultserver.CertFile), filepath.Join(vf.dir, vaultserver.KeyFile))
			if err != nil {
				return info, usageError{fmt.Errorf("no certificate in %s yet: start the server once (coffer vault serve --dir %s)", vf.dir, vf.dir)}
			}
			info.Fingerprint = vaultserver.CertFingerprint(c)
		}
	}
	if url != "" {
		info.URL = url
	}
	if info.URL == "" {
		return info, usageError{errors.New("no vault URL known: give --url https://HOST:PORT")}
	}
	return info, nil
}

func newVaultMachinesCmd(g *globals, vf *vaultFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "machines",
		Short: "List the machines registered with the vault",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			op, closeOp, err := g.openOperator(cmd.Context(), vf)
			if err != nil {
				return err
			}
			defer closeOp()
			ms, err := op.Machines(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return writeJSONList(g.stdout, ms)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tID\tREGISTERED\tPOINTS\tLAST POINT")
			for _, m := range ms {
				last := "-"
				if !m.LastPoint.IsZero() {
					last = m.LastPoint.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", m.Name, m.ID[:8], m.Created.Local().Format(time.DateTime), m.Points, last)
			}
			return tw.Flush()
		},
	}
}

func newVaultPointsCmd(g *globals, vf *vaultFlags) *cobra.Command {
	var machine string
	var deleted bool
	cmd := &cobra.Command{
		Use:   "points [--machine NAME] [--deleted]",
		Short: "List recovery points of every machine, or of one",
		Long: `List recovery points as the vault sees them, without keys: machine, ID,
vault time and figures. File names are encrypted; use coffer points on the
machine to see paths.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			op, closeOp, err := g.openOperator(cmd.Context(), vf)
			if err != nil {
				return err
			}
			defer closeOp()
			list := op.MachinePoints
			if deleted {
				list = op.DeletedPoints
			}
			ps, err := list(cmd.Context(), machine)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSONList(g.stdout, ps)
			}
			names := map[string]string{}
			if ms, err := op.Machines(cmd.Context()); err == nil {
				for _, m := range ms {
					names[m.ID] = m.Name
				}
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			if deleted {
				fmt.Fprintln(tw, "MACHINE\tID\tTIME\tDELETED\tPURGED AFTER\tFILES\tSIZE")
				for _, p := range ps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", names[p.Machine], p.ID, p.Time.Local().Format(time.DateTime),
						p.Deleted.Local().Format(time.DateTime), p.Deleted.Add(vaultapi.DeleteGrace).Local().Format(time.DateTime),
						p.Stats.Files, humanBytes(p.Stats.Bytes))
				}
				return tw.Flush()
			}
			fmt.Fprintln(tw, "MACHINE\tID\tTIME\tFILES\tSIZE\tADDED")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", names[p.Machine], p.ID[:8], p.Time.Local().Format(time.DateTime),
					p.Stats.Files, humanBytes(p.Stats.Bytes), humanBytes(p.Stats.BytesAdded))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&machine, "machine", "", "only this machine (by name)")
	cmd.Flags().BoolVar(&deleted, "deleted", false, "list the points retention soft-deleted (restorable for 14 days)")
	return cmd
}

func newVaultTokenCmd(g *globals, vf *vaultFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create and revoke operator tokens"}
	var name string
	create := &cobra.Command{
		Use:   "create [--name NAME]",
		Short: "Create an operator token (printed once)",
		Long: `Create an operator token for administering the vault over HTTPS
(COFFER_OPERATOR_TOKEN with --remote). It is printed once; the vault keeps
only its hash. Machine credentials cannot do what it does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			op, closeOp, err := g.openOperator(cmd.Context(), vf)
			if err != nil {
				return err
			}
			defer closeOp()
			t, err := op.CreateOperatorToken(cmd.Context(), name)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(g.stdout, t)
			}
			fmt.Fprintf(g.stdout, "%s\n", t.Token)
			fmt.Fprintf(g.stderr, "operator token %s created; it is shown only now\n", t.ID)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "label of the token")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token (operator or machine) by its ID",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, closeOp, err := g.openOperator(cmd.Context(), vf)
			if err != nil {
				return err
			}
			defer closeOp()
			return op.RevokeToken(cmd.Context(), args[0])
		},
	}
	cmd.AddCommand(create, revoke)
	return cmd
}
