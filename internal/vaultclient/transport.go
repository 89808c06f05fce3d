package vaultclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultwire"
)

// ErrFingerprint means the server's certificate is not the pinned one.
var ErrFingerprint = errors.New("the vault's TLS certificate does not match the pinned fingerprint")

// Config says how to reach a vault.
type Config struct {
	URL         string // https://host:port
	Fingerprint string // hex SHA-256 of the vault's certificate
	Token       string // bearer token (machine or operator); empty for registration

	Retries    int           // attempts after the first; default 6
	Backoff    time.Duration // first pause; default 250ms, doubling
	MaxBackoff time.Duration // longest pause; default 15s
	// Sleep waits between attempts; tests replace it. Default: a timer
	// that stops when ctx is done.
	Sleep func(ctx context.Context, d time.Duration) error
	Log   *slog.Logger
	// Transport, if set, replaces the pinned HTTPS transport (tests).
	Transport http.RoundTripper
	// NoFilter makes HasBlobs ask the vault about every blob, without the
	// blob filter of a session.
	NoFilter bool
}

// conn is what Client, Admin and the registration calls share.
type conn struct {
	cfg  Config
	base string
	hc   *http.Client
}

func newConn(cfg Config) (*conn, error) {
	fp, err := vaultwire.ParseFingerprint(cfg.Fingerprint)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(cfg.URL, "https://") {
		return nil, fmt.Errorf("vault URL %q: want https://host:port", cfg.URL)
	}
	if cfg.Retries == 0 {
		cfg.Retries = 6
	} else if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 15 * time.Second
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	rt := cfg.Transport
	if rt == nil {
		rt = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       PinnedTLS(fp),
			TLSHandshakeTimeout:   15 * time.Second,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 5 * time.Minute,
			ExpectContinueTimeout: time.Second,
		}
	}
	return &conn{cfg: cfg, base: strings.TrimRight(cfg.URL, "/") + vaultwire.API, hc: &http.Client{Transport: rt}}, nil
}

// PinnedTLS returns a TLS configuration that accepts exactly the
// certificate whose DER bytes hash (SHA-256) to fp, whatever its names,
// issuer or dates: the pin replaces the CA.
func PinnedTLS(fp [32]byte) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: no certificate", ErrFingerprint)
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], fp[:]) != 1 {
				return fmt.Errorf("%w: the vault presented %s, the credentials pin %s; "+
					"this is not the vault you registered with, or its certificate was replaced",
					ErrFingerprint, hex.EncodeToString(got[:]), hex.EncodeToString(fp[:]))
			}
			return nil
		},
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retry says when a call may be tried again.
type retry int

const (
	// idempotent calls are retried after any transient failure.
	idempotent retry = iota
	// once calls change state and are not idempotent: they are retried
	// only when the vault surely did not act (the connection was never
	// made, or it answered 429 or 503).
	once
)

// request is one call.
type request struct {
	method, path string
	body         []byte
	ctype        string
	header       map[string]string
	retry        retry
	stream       bool // return the body open (ReadPack)
}

// do runs a request with retries and returns the answer of a 2xx status
// (its body read, unless stream), or the error the vault sent.
func (c *conn) do(ctx context.Context, rq request) (*http.Response, []byte, error) {
	delay := c.cfg.Backoff
	for attempt := 0; ; attempt++ {
		resp, body, err := c.once(ctx, rq)
		if err == nil {
			return resp, body, nil
		}
		if attempt >= c.cfg.Retries || !retryable(err, rq.retry) || ctx.Err() != nil {
			return nil, nil, err
		}
		d := delay/2 + rand.N(delay/2+1) // jitter: between half and all of delay
		c.cfg.Log.Warn("vault call failed, retrying", "call", rq.method+" "+rq.path, "attempt", attempt+1, "in", d, "err", err)
		if err := c.cfg.Sleep(ctx, d); err != nil {
			return nil, nil, err
		}
		delay = min(delay*2, c.cfg.MaxBackoff)
	}
}

func (c *conn) once(ctx context.Context, rq request) (*http.Response, []byte, error) {
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, c.base+rq.path, body)
	if err != nil {
		return nil, nil, fmt.Errorf("vault request: %w", err)
	}
	if rq.body != nil {
		req.ContentLength = int64(len(rq.body))
		ct := rq.ctype
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	req.Header.Set("User-Agent", "coffer-agent")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, &callError{op: rq.method + " " + rq.path, err: err}
	}
	if resp.StatusCode/100 == 2 && rq.stream {
		return resp, nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 512<<20))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, nil, vaultwire.ToError(resp.StatusCode, b)
	}
	if err != nil {
		return nil, nil, &callError{op: rq.method + " " + rq.path, err: err, answered: true}
	}
	return resp, b, nil
}

// callError is a failure to reach the vault or to read its answer.
type callError struct {
	op       string
	err      error
	answered bool
}

func (e *callError) Error() string { return "vault " + e.op + ": " + e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// notSent reports whether the request surely never reached the vault.
func (e *callError) notSent() bool {
	var op *net.OpError
	return errors.As(e.err, &op) && op.Op == "dial"
}

func retryable(err error, r retry) bool {
	if errors.Is(err, ErrFingerprint) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var re *vaultwire.RemoteError
	if errors.As(err, &re) {
		if r == once {
			return re.Status == http.StatusTooManyRequests || re.Status == http.StatusServiceUnavailable
		}
		return re.Transient()
	}
	var ce *callError
	if errors.As(err, &ce) {
		if r == once {
			return ce.notSent()
		}
		var tlsErr *tls.CertificateVerificationError
		return !errors.As(err, &tlsErr)
	}
	return false
}

func (c *conn) getJSON(ctx context.Context, path string, out any) error {
	_, b, err := c.do(ctx, request{method: "GET", path: path})
	if err != nil {
		return err
	}
	return decode(b, out)
}

func (c *conn) sendJSON(ctx context.Context, method, path string, in, out any, r retry) error {
	js, err := json.Marshal(in)
	if err != nil {
		return err
	}
	_, b, err := c.do(ctx, request{method: method, path: path, body: js, retry: r})
	if err != nil || out == nil {
		return err
	}
	return decode(b, out)
}

func decode(b []byte, out any) error {
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("vault answer: %w", err)
	}
	return nil
}
