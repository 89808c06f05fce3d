// Package servertest runs a real vault server on 127.0.0.1 for tests: the
// vault core on a bbolt store in a temporary directory and in-memory
// storage, served over TLS by vaultserver, with a controllable clock, and
// helpers that register machines and make operator tokens. The vaultapi
// conformance suite and the transport tests use it.
package servertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/memory"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultclient"
	"github.com/coffer-backup/coffer/internal/vaultserver"
	"github.com/coffer-backup/coffer/internal/vaultwire"
)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// Options tune Start.
type Options struct {
	Storage      storage.Storage // default in-memory
	Server       vaultserver.Config
	Log          *slog.Logger
	SessionLease time.Duration // default the vault's (30 minutes)
}

// Env is a running vault server.
type Env struct {
	URL         string
	Fingerprint string
	Dir         string
	Clock       *Clock
	Vault       *vault.Vault
	Meta        *meta.Bolt
	Authority   *vaultserver.Authority
	Server      *vaultserver.Server

	t      testing.TB
	cancel context.CancelFunc
	done   chan error
}

// Start starts a vault server on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	dir := t.TempDir()
	clock := &Clock{now: time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)}
	m, err := meta.OpenBolt(filepath.Join(dir, "meta.db"), func() string { return "test-vault" })
	if err != nil {
		t.Fatal(err)
	}
	st := opts.Storage
	if st == nil {
		st = memory.New(clock.Now)
	}
	v := vault.New(vault.Config{Meta: m, Storage: st, Clock: clock.Now, Log: opts.Log, SessionLease: opts.SessionLease})
	auth, err := vaultserver.NewAuthority(v, clock.Now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := opts.Server
	cfg.Vault, cfg.Authority, cfg.Clock = v, auth, clock.Now
	if cfg.Log == nil {
		cfg.Log = opts.Log
	}
	srv := vaultserver.New(cfg)
	cert, err := vaultserver.LoadOrCreateCert(dir, nil, clock.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Env{URL: "https://" + ln.Addr().String(), Fingerprint: vaultserver.CertFingerprint(cert), Dir: dir,
		Clock: clock, Vault: v, Meta: m, Authority: auth, Server: srv, t: t, cancel: cancel, done: make(chan error, 1)}
	go func() { e.done <- vaultserver.Serve(ctx, ln, srv, cert, opts.Log) }()
	t.Cleanup(e.Stop)
	return e
}

// Stop shuts the server down (Start registers it as a cleanup).
func (e *Env) Stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	if err := <-e.done; err != nil {
		e.t.Errorf("vault server: %v", err)
	}
	e.Meta.Close()
}

// Config returns a client configuration for token, with fast retries.
func (e *Env) Config(token string) vaultclient.Config {
	return vaultclient.Config{URL: e.URL, Fingerprint: e.Fingerprint, Token: token,
		Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Retries: 3}
}

// Enrolment issues an enrolment secret valid for ttl.
func (e *Env) Enrolment(t testing.TB, ttl time.Duration) vaultwire.EnrolmentResponse {
	t.Helper()
	en, err := e.Authority.CreateEnrolment(context.Background(), ttl)
	if err != nil {
		t.Fatal(err)
	}
	return en
}

// Register registers a machine and returns its registration.
func (e *Env) Register(t testing.TB, name string) vaultwire.RegisterResponse {
	t.Helper()
	en := e.Enrolment(t, time.Hour)
	resp, err := vaultclient.Register(context.Background(), e.Config(""), vaultwire.RegisterRequest{Secret: en.Secret, Name: name})
	if err != nil {
		t.Fatalf("register %q: %v", name, err)
	}
	return resp
}

// Machine registers a machine and returns its client.
func (e *Env) Machine(t testing.TB, name string) *vaultclient.Client {
	t.Helper()
	return e.Client(t, e.Register(t, name).Token)
}

// Client returns a client for a token.
func (e *Env) Client(t testing.TB, token string) *vaultclient.Client {
	t.Helper()
	c, err := vaultclient.New(e.Config(token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Operator makes an operator token and returns it with its client.
func (e *Env) Operator(t testing.TB) (string, *vaultclient.Admin) {
	t.Helper()
	tok, err := e.Authority.CreateOperatorToken(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	a, err := vaultclient.NewAdmin(e.Config(tok.Token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return tok.Token, a
}

// RandomName returns a random machine name.
func RandomName() string {
	b := make([]byte, 6)
	_, _ = io.ReadFull(rand.Reader, b)
	return "m-" + hex.EncodeToString(b)
}
