package vaultserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultwire"
)

// Config holds a Server's parts and limits.
type Config struct {
	Vault     *vault.Vault
	Authority *Authority
	Log       *slog.Logger // default discards
	Clock     func() time.Time

	MaxPack    int64 // largest pack body; default 64 MiB
	MaxCommit  int64 // largest commit body; default 256 MiB
	MaxJSON    int64 // largest JSON body; default 1 MiB
	MaxUploads int   // packs received at once; default 8 (memory: MaxUploads×MaxPack)
}

// Server is the vault's HTTP handler.
type Server struct {
	cfg      Config
	mux      *http.ServeMux
	uploads  chan struct{}
	draining atomic.Bool

	cacheMu sync.Mutex
	cache   map[string]authEntry // by token
}

// authEntry is a cached authentication of a machine token.
type authEntry struct {
	p     Principal
	v     vaultapi.Vault
	gen   uint64
	until time.Time
}

// authCacheTTL bounds how long a token's authentication is reused without
// looking it up again. Revocations through this server's Authority take
// effect at once; through another vault instance sharing the store, within
// the TTL.
const authCacheTTL = 10 * time.Second

// New returns a server for cfg.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxPack <= 0 {
		cfg.MaxPack = 64 << 20
	}
	if cfg.MaxCommit <= 0 {
		cfg.MaxCommit = 256 << 20
	}
	if cfg.MaxJSON <= 0 {
		cfg.MaxJSON = 1 << 20
	}
	if cfg.MaxUploads <= 0 {
		cfg.MaxUploads = 8
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), uploads: make(chan struct{}, cfg.MaxUploads),
		cache: make(map[string]authEntry)}
	s.routes()
	return s
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Clock()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	if s.draining.Load() {
		writeError(rec, fmt.Errorf("%w: the vault is shutting down", vaultwire.ErrUnavailable))
	} else {
		s.mux.ServeHTTP(rec, r)
	}
	lvl := slog.LevelDebug
	switch {
	case rec.status >= 500:
		lvl = slog.LevelError
	case rec.status >= 400:
		lvl = slog.LevelWarn
	}
	if !s.cfg.Log.Enabled(r.Context(), lvl) {
		return
	}
	s.cfg.Log.Log(r.Context(), lvl, "request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
		"bytes_in", r.ContentLength, "bytes_out", rec.n, "ms", s.cfg.Clock().Sub(start).Milliseconds(),
		"remote", r.RemoteAddr, "who", rec.who, "error", rec.errMsg)
}

// recorder remembers what was answered, for the log.
type recorder struct {
	http.ResponseWriter
	status int
	n      int64
	who    string
	errMsg string
}

func (r *recorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }
func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.n += int64(n)
	return n, err
}
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// reply answers 200 with v as JSON, or passes err on to the error mapping.
func reply[T any](w http.ResponseWriter, v T, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// replyList is reply for a list: an empty list is [], never null.
func replyList[T any](w http.ResponseWriter, v []T, err error) error {
	if v == nil {
		v = []T{}
	}
	return reply(w, v, err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	status, body := vaultwire.FromError(err)
	if rec, ok := w.(*recorder); ok {
		rec.errMsg = err.Error()
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, body)
}

func writeBytes(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	_, _ = w.Write(b)
}

// readBody reads the whole body, refusing more than max bytes.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength > max {
		return nil, fmt.Errorf("%w: body of %d bytes, at most %d", vaultwire.ErrTooLarge, r.ContentLength, max)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fmt.Errorf("%w: body over %d bytes", vaultwire.ErrTooLarge, max)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %v", vaultapi.ErrBadRequest, err)
	}
	return b, nil
}

func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := readBody(w, r, s.cfg.MaxJSON)
	if err != nil {
		return err
	}
	return DecodeJSON(b, v)
}

// DecodeJSON decodes one JSON value strictly: unknown fields and trailing
// data are refused.
func DecodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: JSON body: %v", vaultapi.ErrBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: JSON body: data after the value", vaultapi.ErrBadRequest)
	}
	return nil
}

// bearer returns the token of the Authorization header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

type machineHandler func(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, p Principal) error
type operatorHandler func(w http.ResponseWriter, r *http.Request) error

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (Principal, error) {
	p, err := s.cfg.Authority.Authenticate(r.Context(), bearer(r))
	if err != nil {
		return p, err
	}
	if rec, ok := w.(*recorder); ok {
		rec.who = p.Kind + ":" + p.TokenID
	}
	return p, nil
}

// machineAuth authenticates a machine token and returns its machine's
// view of the vault, from the cache when it can.
func (s *Server) machineAuth(w http.ResponseWriter, r *http.Request) (Principal, vaultapi.Vault, error) {
	tok := bearer(r)
	now := s.cfg.Clock()
	gen := s.cfg.Authority.Generation()
	s.cacheMu.Lock()
	e, ok := s.cache[tok]
	s.cacheMu.Unlock()
	if ok && e.gen == gen && now.Before(e.until) {
		if rec, ok := w.(*recorder); ok {
			rec.who = e.p.Kind + ":" + e.p.TokenID
		}
		return e.p, e.v, nil
	}
	p, err := s.authenticate(w, r)
	if err != nil {
		return p, nil, err
	}
	if p.Kind != meta.TokenMachine {
		return p, nil, fmt.Errorf("%w: an operator token does not act as a machine", vaultapi.ErrForbidden)
	}
	v, err := s.cfg.Vault.ForMachine(r.Context(), p.Machine)
	if errors.Is(err, vaultapi.ErrNotFound) {
		return p, nil, fmt.Errorf("%w: the machine of these credentials is gone", vaultapi.ErrUnauthorized)
	}
	if err != nil {
		return p, nil, err
	}
	until := now.Add(authCacheTTL)
	if !p.Expires.IsZero() && p.Expires.Before(until) {
		until = p.Expires
	}
	s.cacheMu.Lock()
	if len(s.cache) >= 4096 {
		clear(s.cache)
	}
	s.cache[tok] = authEntry{p: p, v: v, gen: gen, until: until}
	s.cacheMu.Unlock()
	return p, v, nil
}

// machine wraps a handler that acts as the machine of the token.
func (s *Server) machine(h machineHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, v, err := s.machineAuth(w, r)
		if err == nil {
			err = h(w, r, v, p)
		}
		if err != nil {
			writeError(w, err)
		}
	}
}

// operator wraps a handler of the operator surface.
func (s *Server) operator(h operatorHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(w, r)
		if err == nil && p.Kind != meta.TokenOperator {
			err = fmt.Errorf("%w: this needs an operator token; machine credentials can only add and read their own backups", vaultapi.ErrForbidden)
		}
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			writeError(w, err)
		}
	}
}

// public wraps a handler that needs no token (registration).
func public(h operatorHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, err)
		}
	}
}

// Drain makes the server answer 503 to new requests (before a shutdown).
func (s *Server) Drain() { s.draining.Store(true) }

// acquireUpload waits for an upload slot.
func (s *Server) acquireUpload(ctx context.Context) (func(), error) {
	select {
	case s.uploads <- struct{}{}:
		return func() { <-s.uploads }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
