package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/localkeys"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultclient"
	"github.com/coffer-backup/coffer/internal/vaultwire"
	"golang.org/x/term"
)

func init() {
	exitMappers = append(exitMappers, func(err error) (int, bool) {
		switch {
		case errors.Is(err, format.ErrWrongSecret):
			return exitPassphrase, true
		case errors.Is(err, vaultapi.ErrDamaged):
			return exitDamaged, true
		case errors.Is(err, repo.ErrShortPassphrase), errors.Is(err, repo.ErrAmbiguous):
			return exitUsage, true
		}
		return 0, false
	})
}

// homeDir is where the agent keeps its configuration, keys and cache.
func (g *globals) homeDir() (string, error) {
	if g.home != "" {
		return filepath.Abs(g.home)
	}
	if h := g.getenv("COFFER_HOME"); h != "" {
		return filepath.Abs(h)
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no home for Coffer: set COFFER_HOME (%w)", err)
	}
	return filepath.Join(d, "coffer"), nil
}

// vaultDir is the embedded vault's directory.
func (g *globals) vaultDir() (string, error) {
	if g.vault != "" {
		return filepath.Abs(g.vault)
	}
	if v := g.getenv("COFFER_VAULT"); v != "" {
		return filepath.Abs(v)
	}
	if x := g.getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "coffer", "vault"), nil
	}
	if h := g.getenv("COFFER_HOME"); h != "" || g.home != "" {
		home, err := g.homeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, "vault"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no place for the embedded vault: set COFFER_VAULT (%w)", err)
	}
	return filepath.Join(h, ".local", "share", "coffer", "vault"), nil
}

// session is an open vault for one command.
type session struct {
	v     vaultapi.Vault
	close func() error
	emb   *vault.Embedded
	// remote is set when the vault is a vault server this machine is
	// registered with; creds are its credentials, kept in credsPath.
	remote    *vaultclient.Client
	creds     *vaultwire.MachineCredentials
	credsPath string
}

// openVault opens the vault this machine uses: the vault server it is
// registered with (machine credentials in its home), unless --vault,
// COFFER_VAULT, --vault-storage or COFFER_VAULT_STORAGE names an embedded
// vault; else the embedded vault, on its store (storage.go).
func (g *globals) openVault(ctx context.Context) (*session, error) {
	if g.vault == "" && g.getenv("COFFER_VAULT") == "" && g.vaultStorageURL() == "" {
		mc, path, err := g.loadMachineCredentials()
		if err == nil {
			c, err := vaultclient.New(vaultclient.Config{URL: mc.URL, Fingerprint: mc.Fingerprint, Token: mc.Token})
			if err != nil {
				return nil, fmt.Errorf("machine credentials %s: %w", path, err)
			}
			return &session{v: c, close: c.Close, remote: c, creds: mc, credsPath: path}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	dir, err := g.vaultDir()
	if err != nil {
		return nil, err
	}
	st, err := openVaultStorage(ctx, dir, g.vaultStorageURL(), g.getenv)
	if err != nil {
		return nil, err
	}
	e, err := vault.OpenEmbedded(ctx, dir, st, nil)
	if err != nil {
		return nil, err
	}
	return &session{v: e.Machine, close: e.Close, emb: e}, nil
}

// passphrase reads the secret from --passphrase-file, COFFER_PASSPHRASE
// or a terminal prompt (twice when confirm is set).
func (g *globals) passphrase(prompt string, confirm bool) ([]byte, error) {
	if g.passphraseFile != "" {
		b, err := os.ReadFile(g.passphraseFile)
		if err != nil {
			return nil, fmt.Errorf("passphrase file: %w", err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return nil, usageError{fmt.Errorf("passphrase file %s is empty", g.passphraseFile)}
		}
		return []byte(s), nil
	}
	if p := g.getenv("COFFER_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	f, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, usageError{errors.New("no passphrase: set COFFER_PASSPHRASE, pass --passphrase-file FILE, or run on a terminal")}
	}
	read := func(p string) ([]byte, error) {
		fmt.Fprint(g.stderr, p)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(g.stderr)
		return b, err
	}
	p, err := read(prompt)
	if err != nil {
		return nil, err
	}
	if confirm {
		p2, err := read("Repeat it: ")
		if err != nil {
			return nil, err
		}
		if string(p) != string(p2) {
			return nil, usageError{errors.New("the two passphrases differ")}
		}
	}
	return p, nil
}

// openRepo opens the vault and unlocks the machine's keys; create makes
// keys on the first backup. A passphrase given (COFFER_PASSPHRASE or
// --passphrase-file) is always checked against the vault's key slots;
// without one, the keys this machine keeps (package localkeys) are used
// when they match a slot, else the passphrase is asked for.
func (g *globals) openRepo(ctx context.Context, create bool) (*repo.Repo, *session, error) {
	return g.openRepoKeys(ctx, create, true)
}

// openRepoSecret is openRepo for the commands that manage key slots: they
// need the passphrase (or a recovery key) even when the machine keeps its
// keys, so that holding the machine alone cannot change who opens the data.
func (g *globals) openRepoSecret(ctx context.Context) (*repo.Repo, *session, error) {
	return g.openRepoKeys(ctx, false, false)
}

func (g *globals) openRepoKeys(ctx context.Context, create, kept bool) (*repo.Repo, *session, error) {
	s, err := g.openVault(ctx)
	if err != nil {
		return nil, nil, err
	}
	r, _, err := g.openRepoOn(ctx, s, create, kept)
	if err != nil {
		s.close()
		return nil, nil, err
	}
	return r, s, nil
}

// openRepoOn is openRepoKeys on the open vault s; created tells whether it
// made the machine's keys. The caller closes s.
func (g *globals) openRepoOn(ctx context.Context, s *session, create, kept bool) (r *repo.Repo, created bool, err error) {
	slots, err := s.v.KeySlots(ctx)
	if err != nil {
		return nil, false, err
	}
	if len(slots) == 0 && !create {
		return nil, false, repo.ErrNoKeys
	}
	v, err := g.wrapVault(ctx, s.v) // bandwidth limits, on-demand mark
	if err != nil {
		return nil, false, err
	}
	r, created, err = g.unlock(ctx, v, slots, create, kept)
	if err != nil {
		return nil, false, err
	}
	g.ensureVerifier(ctx, s, r.Keys)
	if s.remote != nil {
		g.useTreeCache(r, s)
	}
	if created && !g.quiet {
		fmt.Fprintln(g.stderr, "Created this machine's keys. Keep the passphrase safe: without it the backups cannot be read.\nAdd a recovery key with: coffer key add-recovery")
	}
	return r, created, nil
}

// unlock opens the keys of v, whose key slots are slots: with the keys
// this machine keeps (when kept is set and they match), else with the
// passphrase, which it then keeps; create makes keys when there are no
// slots.
func (g *globals) unlock(ctx context.Context, v vaultapi.Vault, slots []vaultapi.KeySlot, create, kept bool) (*repo.Repo, bool, error) {
	if kept {
		if r := g.keptRepo(ctx, v, slots); r != nil {
			return r, false, nil
		}
	}
	prompt := "Passphrase: "
	if len(slots) == 0 {
		prompt = "New passphrase for this machine's backups (16 or more characters; without it the backups cannot be read): "
	}
	secret, err := g.passphrase(prompt, len(slots) == 0)
	if err != nil {
		return nil, false, err
	}
	r, created, err := repo.Open(ctx, v, secret, create, rand.Reader)
	if err != nil {
		return nil, false, err
	}
	g.keepKeys(r.Slot.Data, r.Keys)
	return r, created, nil
}

// secretGiven reports whether a passphrase was given other than at a prompt.
func (g *globals) secretGiven() bool {
	return g.passphraseFile != "" || g.getenv("COFFER_PASSPHRASE") != ""
}

// keptKeysDir is where this machine keeps its unlocked keys, or "" when
// COFFER_KEEP_KEYS turns keeping off or there is no home.
func (g *globals) keptKeysDir() localkeys.Dir {
	switch strings.ToLower(g.getenv("COFFER_KEEP_KEYS")) {
	case "0", "no", "off", "false":
		return ""
	}
	d, err := g.keysDir()
	if err != nil {
		return ""
	}
	return d
}

// keysDir is COFFER_HOME/keys, whether or not keeping keys is on.
func (g *globals) keysDir() (localkeys.Dir, error) {
	home, err := g.homeDir()
	if err != nil {
		return "", err
	}
	return localkeys.Dir(filepath.Join(home, "keys")), nil
}

// keptRepo opens the vault with the keys this machine keeps, when no
// passphrase was given and kept keys match one of slots. Kept keys must
// also open the newest recovery point; keys that do not are ignored (with
// a warning), and the passphrase decides.
func (g *globals) keptRepo(ctx context.Context, v vaultapi.Vault, slots []vaultapi.KeySlot) *repo.Repo {
	d := g.keptKeysDir()
	if d == "" || len(slots) == 0 || g.secretGiven() {
		return nil
	}
	keys, slot, err := d.Load(slots)
	if err != nil {
		fmt.Fprintf(g.stderr, "warning: %v; using the passphrase instead\n", err)
		return nil
	}
	if keys == nil {
		return nil
	}
	r, err := repo.New(v, keys)
	if err != nil {
		return nil
	}
	r.Slot = slot
	points, err := v.Points(ctx)
	if err == nil && len(points) > 0 {
		_, err = r.Manifest(ctx, points[len(points)-1])
	}
	if err != nil {
		fmt.Fprintf(g.stderr, "warning: the keys kept in %s do not open this vault's newest recovery point (%v); using the passphrase instead\n", d, err)
		return nil
	}
	return r
}

// keepKeys keeps keys opened from slot for later commands; failing to
// is a warning, not an error.
func (g *globals) keepKeys(slot []byte, keys *format.Keys) {
	d := g.keptKeysDir()
	if d == "" || len(slot) == 0 {
		return
	}
	if err := d.Save(slot, keys); err != nil && !g.quiet {
		fmt.Fprintf(g.stderr, "warning: could not keep this machine's keys (commands will ask for the passphrase): %v\n", err)
	}
}

// treeCacheBytes bounds the sealed trees kept in the cache folder.
const treeCacheBytes = 512 << 20

// useTreeCache keeps the trees of a remote vault in the cache folder, so
// change detection reads the previous point locally. Without a usable
// cache folder the trees come from the vault, as with the embedded one.
func (g *globals) useTreeCache(r *repo.Repo, s *session) {
	home, err := g.homeDir()
	if err != nil {
		return
	}
	d, err := repo.OpenDiskCache(filepath.Join(home, "cache", "trees", s.creds.VaultID+"-"+s.creds.MachineID), treeCacheBytes)
	if err != nil {
		fmt.Fprintf(g.stderr, "warning: tree cache unavailable, reading trees from the vault: %v\n", err)
		return
	}
	r.Trees = d
	prev := s.close
	s.close = func() error {
		d.Close()
		return prev()
	}
}
