package vaultserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultwire"
)

// Prefixes of the secrets the vault issues, so that people can tell them
// apart.
const (
	prefixEnrolment = "cfe_"
	prefixMachine   = "cfm_"
	prefixOperator  = "cfo_"
)

// DefaultEnrolmentTTL is how long an enrolment secret lasts by default:
// ten days, as MARS vault credentials.
const DefaultEnrolmentTTL = 240 * time.Hour

// Authority issues and checks the vault's credentials. The store keeps
// only SHA-256 hashes of secrets.
type Authority struct {
	v     *vault.Vault
	meta  meta.Store
	creds meta.Credentials
	clock func() time.Time
	rand  io.Reader
	// gen changes whenever a credential is revoked or replaced, so that
	// caches of authentications know to forget them.
	gen atomic.Uint64
}

// Principal is who a request acts as.
type Principal struct {
	Kind    string // meta.TokenMachine or meta.TokenOperator
	Machine string // machine ID, for machine tokens
	TokenID string
	Expires time.Time // zero: never
}

// Generation changes whenever a credential is revoked or replaced.
func (a *Authority) Generation() uint64 { return a.gen.Load() }

// NewAuthority returns the authority of vault v, whose metadata store must
// also hold credentials (meta.Credentials).
func NewAuthority(v *vault.Vault, clock func() time.Time, rand io.Reader) (*Authority, error) {
	c, ok := v.Meta().(meta.Credentials)
	if !ok {
		return nil, errors.New("vault metadata store keeps no credentials")
	}
	if clock == nil {
		clock = time.Now
	}
	if rand == nil {
		return nil, errors.New("vaultserver: no random source")
	}
	return &Authority{v: v, meta: v.Meta(), creds: c, clock: clock, rand: rand}, nil
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (a *Authority) newSecret(prefix string) (secret, hash, id string, err error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(a.rand, b); err != nil {
		return "", "", "", fmt.Errorf("new secret: %w", err)
	}
	secret = prefix + base64.RawURLEncoding.EncodeToString(b)
	hash = hashSecret(secret)
	return secret, hash, hash[:16], nil
}

// Authenticate checks a bearer token.
func (a *Authority) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, fmt.Errorf("%w: no credentials: send Authorization: Bearer TOKEN", vaultapi.ErrUnauthorized)
	}
	if len(token) > 200 {
		return Principal{}, fmt.Errorf("%w: malformed token", vaultapi.ErrUnauthorized)
	}
	t, err := a.creds.TokenByHash(ctx, hashSecret(token))
	if errors.Is(err, meta.ErrNotFound) {
		return Principal{}, fmt.Errorf("%w: unknown token", vaultapi.ErrUnauthorized)
	}
	if err != nil {
		return Principal{}, err
	}
	if t.Revoked {
		return Principal{}, fmt.Errorf("%w: these credentials were revoked (token %s); register again or ask the vault operator", vaultapi.ErrUnauthorized, t.ID)
	}
	if !t.Expires.IsZero() && !a.clock().Before(t.Expires) {
		return Principal{}, fmt.Errorf("%w: these credentials expired at %s", vaultapi.ErrUnauthorized, t.Expires.UTC().Format(time.RFC3339))
	}
	return Principal{Kind: t.Kind, Machine: t.Machine, TokenID: t.ID, Expires: t.Expires}, nil
}

// CreateEnrolment issues an enrolment secret valid for ttl.
func (a *Authority) CreateEnrolment(ctx context.Context, ttl time.Duration) (vaultwire.EnrolmentResponse, error) {
	if ttl <= 0 || ttl > 366*24*time.Hour {
		return vaultwire.EnrolmentResponse{}, fmt.Errorf("%w: enrolment lifetime %s: want more than 0 and at most a year", vaultapi.ErrBadRequest, ttl)
	}
	secret, hash, id, err := a.newSecret(prefixEnrolment)
	if err != nil {
		return vaultwire.EnrolmentResponse{}, err
	}
	now := a.clock().UTC()
	e := meta.Enrolment{ID: id, Hash: hash, Created: now, Expires: now.Add(ttl)}
	if err := a.creds.PutEnrolment(ctx, e); err != nil {
		return vaultwire.EnrolmentResponse{}, err
	}
	return vaultwire.EnrolmentResponse{VaultID: a.meta.VaultID(), ID: id, Secret: secret, Expires: e.Expires}, nil
}

// checkEnrolment proves an enrolment secret.
func (a *Authority) checkEnrolment(ctx context.Context, secret string) error {
	if secret == "" || len(secret) > 200 {
		return fmt.Errorf("%w: no valid enrolment secret", vaultapi.ErrUnauthorized)
	}
	e, err := a.creds.EnrolmentByHash(ctx, hashSecret(secret))
	if errors.Is(err, meta.ErrNotFound) {
		return fmt.Errorf("%w: these vault credentials are not known to this vault", vaultapi.ErrUnauthorized)
	}
	if err != nil {
		return err
	}
	if e.Revoked {
		return fmt.Errorf("%w: these vault credentials were revoked by the vault operator; ask for a new credentials file", vaultapi.ErrUnauthorized)
	}
	if !a.clock().Before(e.Expires) {
		return fmt.Errorf("%w: these vault credentials expired at %s; ask the vault operator for a new file (coffer vault credentials)",
			vaultapi.ErrUnauthorized, e.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// CheckName validates a machine name: 1 to 64 bytes of printable UTF-8,
// without slashes or surrounding spaces.
func CheckName(name string) error {
	if name == "" || len(name) > 64 || !utf8.ValidString(name) || strings.TrimSpace(name) != name || strings.ContainsAny(name, "/\\") {
		return fmt.Errorf("%w: machine name %q: want 1 to 64 bytes of printable text, no slashes, no surrounding spaces", vaultapi.ErrBadRequest, name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: machine name %q has unprintable characters", vaultapi.ErrBadRequest, name)
		}
	}
	return nil
}

func (a *Authority) newMachineToken(machine string) (meta.Token, string, error) {
	secret, hash, id, err := a.newSecret(prefixMachine)
	if err != nil {
		return meta.Token{}, "", err
	}
	return meta.Token{ID: id, Hash: hash, Kind: meta.TokenMachine, Machine: machine, Created: a.clock().UTC()}, secret, nil
}

// Register registers a machine, or with req.Replace takes over the machine
// of that name when req.Proof matches its replace verifier.
func (a *Authority) Register(ctx context.Context, req vaultwire.RegisterRequest) (vaultwire.RegisterResponse, error) {
	if err := a.checkEnrolment(ctx, req.Secret); err != nil {
		return vaultwire.RegisterResponse{}, err
	}
	if err := CheckName(req.Name); err != nil {
		return vaultwire.RegisterResponse{}, err
	}
	if req.Replace {
		return a.replace(ctx, req)
	}
	m, err := a.v.CreateMachine(ctx, req.Name)
	if errors.Is(err, vaultapi.ErrForbidden) {
		return vaultwire.RegisterResponse{}, fmt.Errorf("%w: a machine named %q is already registered with this vault; "+
			"choose another name, or, to continue that machine's backups here, register with --replace and its passphrase",
			vaultapi.ErrForbidden, req.Name)
	}
	if err != nil {
		return vaultwire.RegisterResponse{}, err
	}
	t, secret, err := a.newMachineToken(m.ID)
	if err != nil {
		return vaultwire.RegisterResponse{}, err
	}
	if err := a.creds.PutToken(ctx, t); err != nil {
		return vaultwire.RegisterResponse{}, err
	}
	return vaultwire.RegisterResponse{VaultID: a.meta.VaultID(), MachineID: m.ID, MachineName: m.Name, Token: secret}, nil
}

func (a *Authority) replace(ctx context.Context, req vaultwire.RegisterRequest) (vaultwire.RegisterResponse, error) {
	m, err := a.meta.MachineByName(ctx, req.Name)
	if errors.Is(err, meta.ErrNotFound) {
		return vaultwire.RegisterResponse{}, fmt.Errorf("%w: no machine named %q to replace", vaultapi.ErrNotFound, req.Name)
	}
	if err != nil {
		return vaultwire.RegisterResponse{}, err
	}
	ver, err := a.creds.Verifier(ctx, m.ID)
	if err != nil {
		return vaultwire.RegisterResponse{}, err
	}
	if ver == nil {
		slots, err := a.meta.KeySlots(ctx, m.ID)
		if err != nil {
			return vaultwire.RegisterResponse{}, err
		}
		if len(slots) > 0 {
			return vaultwire.RegisterResponse{}, fmt.Errorf("%w: machine %q has keys but never stored a replace verifier, "+
				"so the vault cannot check the passphrase; ask the vault operator", vaultapi.ErrForbidden, req.Name)
		}
		// No keys, no data: nothing to protect.
	} else {
		sum := sha256.Sum256(req.Proof)
		if len(req.Proof) != 32 || subtle.ConstantTimeCompare(sum[:], ver) != 1 {
			return vaultwire.RegisterResponse{}, fmt.Errorf("%w: the proof does not match machine %q's keys: wrong passphrase", vaultapi.ErrForbidden, req.Name)
		}
	}
	t, secret, err := a.newMachineToken(m.ID)
	if err != nil {
		return vaultwire.RegisterResponse{}, err
	}
	defer a.gen.Add(1)
	if err := a.creds.ReplaceMachineTokens(ctx, m.ID, t); err != nil {
		return vaultwire.RegisterResponse{}, err
	}
	return vaultwire.RegisterResponse{VaultID: a.meta.VaultID(), MachineID: m.ID, MachineName: m.Name, Token: secret, Replaced: true}, nil
}

// ReplaceSlots returns the key slots of the machine named in req, to a
// caller proving an enrolment secret, so that it can unwrap them with the
// machine's passphrase and compute the replace proof.
func (a *Authority) ReplaceSlots(ctx context.Context, req vaultwire.SlotsRequest) (vaultwire.SlotsResponse, error) {
	if err := a.checkEnrolment(ctx, req.Secret); err != nil {
		return vaultwire.SlotsResponse{}, err
	}
	m, err := a.meta.MachineByName(ctx, req.Name)
	if errors.Is(err, meta.ErrNotFound) {
		return vaultwire.SlotsResponse{}, fmt.Errorf("%w: no machine named %q to replace", vaultapi.ErrNotFound, req.Name)
	}
	if err != nil {
		return vaultwire.SlotsResponse{}, err
	}
	slots, err := a.meta.KeySlots(ctx, m.ID)
	if err != nil {
		return vaultwire.SlotsResponse{}, err
	}
	return vaultwire.SlotsResponse{MachineID: m.ID, Slots: slots}, nil
}

// SetVerifier stores a machine's replace verifier (once).
func (a *Authority) SetVerifier(ctx context.Context, machine string, v []byte) error {
	if len(v) != 32 {
		return fmt.Errorf("%w: a verifier is 32 bytes", vaultapi.ErrBadRequest)
	}
	err := a.creds.SetVerifier(ctx, machine, v)
	if errors.Is(err, meta.ErrExists) {
		return fmt.Errorf("%w: this machine's replace verifier is already set to another value", vaultapi.ErrForbidden)
	}
	return err
}

// CreateOperatorToken issues an operator token.
func (a *Authority) CreateOperatorToken(ctx context.Context, name string) (vaultwire.TokenResponse, error) {
	if len(name) > 64 || !utf8.ValidString(name) {
		return vaultwire.TokenResponse{}, fmt.Errorf("%w: token name: at most 64 bytes of text", vaultapi.ErrBadRequest)
	}
	secret, hash, id, err := a.newSecret(prefixOperator)
	if err != nil {
		return vaultwire.TokenResponse{}, err
	}
	t := meta.Token{ID: id, Hash: hash, Kind: meta.TokenOperator, Name: name, Created: a.clock().UTC()}
	if err := a.creds.PutToken(ctx, t); err != nil {
		return vaultwire.TokenResponse{}, err
	}
	return vaultwire.TokenResponse{ID: id, Token: secret}, nil
}

// RevokeEnrolment revokes an enrolment secret by ID.
func (a *Authority) RevokeEnrolment(ctx context.Context, id string) error {
	return mapMeta(a.creds.RevokeEnrolment(ctx, id))
}

// RevokeToken revokes a token by ID.
func (a *Authority) RevokeToken(ctx context.Context, id string) error {
	defer a.gen.Add(1)
	return mapMeta(a.creds.RevokeToken(ctx, id))
}

// Machines lists the registered machines.
func (a *Authority) Machines(ctx context.Context) ([]vaultwire.MachineInfo, error) {
	ms, err := a.meta.Machines(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]vaultwire.MachineInfo, 0, len(ms))
	for _, m := range ms {
		mi := vaultwire.MachineInfo{ID: m.ID, Name: m.Name, Created: m.Created}
		ps, err := a.meta.Points(ctx, m.ID)
		if err != nil {
			return nil, err
		}
		ps = slices.DeleteFunc(ps, func(p vaultapi.Point) bool { return !p.Deleted.IsZero() })
		mi.Points = len(ps)
		if len(ps) > 0 {
			mi.LastPoint = ps[len(ps)-1].Time
		}
		v, err := a.creds.Verifier(ctx, m.ID)
		if err != nil {
			return nil, err
		}
		mi.HasVerifier = v != nil
		out = append(out, mi)
	}
	return out, nil
}

// MachinePoints lists the recovery points of the machine named name, or
// of every machine when name is empty.
func (a *Authority) MachinePoints(ctx context.Context, name string) ([]vaultapi.Point, error) {
	return a.machinePoints(ctx, name, false)
}

// DeletedPoints lists the soft-deleted points of the machine named name,
// or of every machine when name is empty.
func (a *Authority) DeletedPoints(ctx context.Context, name string) ([]vaultapi.Point, error) {
	return a.machinePoints(ctx, name, true)
}

func (a *Authority) machinePoints(ctx context.Context, name string, deleted bool) ([]vaultapi.Point, error) {
	var ms []meta.Machine
	if name != "" {
		m, err := a.meta.MachineByName(ctx, name)
		if err != nil {
			return nil, mapMeta(err)
		}
		ms = []meta.Machine{m}
	} else {
		var err error
		if ms, err = a.meta.Machines(ctx); err != nil {
			return nil, err
		}
	}
	var out []vaultapi.Point
	for _, m := range ms {
		ps, err := a.meta.Points(ctx, m.ID)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			if p.Deleted.IsZero() == deleted {
				continue
			}
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b vaultapi.Point) int { return a.Time.Compare(b.Time) })
	return out, nil
}

func mapMeta(err error) error {
	if errors.Is(err, meta.ErrNotFound) {
		return fmt.Errorf("%w: %v", vaultapi.ErrNotFound, err)
	}
	return err
}
