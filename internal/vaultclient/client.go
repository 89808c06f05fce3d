package vaultclient

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultwire"
	"github.com/zeebo/blake3"
)

// Client is a machine's vault over HTTPS.
//
// While a backup session it opened is open, the client holds a Bloom
// filter of the machine's blob index, fetched when the session began, and
// the 8-byte prefixes of the blobs of every pack it stored since; it
// answers HasBlobs from them for blobs that are surely not held: the
// common case of new data costs no round trip. Only possible holds are
// asked of the vault. A blob stored
// meanwhile by another client of the same machine may be reported as not
// held; storing it again is harmless.
type Client struct {
	c   *conn
	has *hasBatcher

	fmu      sync.RWMutex
	filter   *vaultwire.Filter
	stored   map[uint64]struct{} // ID prefixes of blobs stored since the filter came
	sessions map[string]bool     // sessions this client opened and did not end
}

func prefix(id *vaultapi.ID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

// mayHave reports whether the vault may hold id; c.fmu is held.
func (c *Client) mayHave(id *vaultapi.ID) bool {
	if c.filter.MayHave(*id) {
		return true
	}
	_, ok := c.stored[prefix(id)]
	return ok
}

var _ vaultapi.Vault = (*Client)(nil)

// New returns the client of the machine whose token cfg holds.
func New(cfg Config) (*Client, error) {
	c, err := newConn(cfg)
	if err != nil {
		return nil, err
	}
	cl := &Client{c: c, sessions: make(map[string]bool)}
	cl.has = &hasBatcher{send: cl.hasBlobs, max: 2}
	return cl, nil
}

// Close releases idle connections.
func (c *Client) Close() error { c.c.hc.CloseIdleConnections(); return nil }

func (c *Client) Info(ctx context.Context) (vaultapi.Info, error) {
	var info vaultapi.Info
	return info, c.c.getJSON(ctx, "/info", &info)
}

func (c *Client) KeySlots(ctx context.Context) ([]vaultapi.KeySlot, error) {
	var s []vaultapi.KeySlot
	return s, c.c.getJSON(ctx, "/keyslots", &s)
}

func (c *Client) PutKeySlot(ctx context.Context, s vaultapi.KeySlot) error {
	if !vaultapi.ValidSlotID(s.ID) {
		return fmt.Errorf("%w: key slot ID %q: 1 to 64 letters, digits, dots, dashes or underscores, not only dots", vaultapi.ErrBadRequest, s.ID)
	}
	data := s.Data
	if data == nil {
		data = []byte{}
	}
	_, _, err := c.c.do(ctx, request{method: "PUT", path: "/keyslots/" + url.PathEscape(s.ID), body: data,
		ctype: "application/octet-stream", retry: idempotent})
	return err
}

func (c *Client) BeginBackup(ctx context.Context) (vaultapi.Session, error) {
	var s vaultapi.Session
	// Retried although not idempotent: a session opened twice leaves an
	// unused lease that expires by itself.
	_, b, err := c.c.do(ctx, request{method: "POST", path: "/sessions", retry: idempotent})
	if err != nil {
		return s, err
	}
	if err := decode(b, &s); err != nil {
		return s, err
	}
	var f *vaultwire.Filter
	if !c.c.cfg.NoFilter {
		f, err = c.fetchFilter(ctx)
		if err != nil {
			c.c.cfg.Log.Warn("no blob filter; asking the vault about every blob", "err", err)
		}
	}
	c.fmu.Lock()
	c.sessions[s.ID] = true
	c.filter, c.stored = f, make(map[uint64]struct{})
	c.fmu.Unlock()
	return s, nil
}

func (c *Client) fetchFilter(ctx context.Context) (*vaultwire.Filter, error) {
	_, b, err := c.c.do(ctx, request{method: "GET", path: "/blobs/filter"})
	if err != nil {
		return nil, err
	}
	return vaultwire.DecodeFilter(b)
}

// ended forgets a session; the filter goes with the last one.
func (c *Client) ended(id string) {
	c.fmu.Lock()
	delete(c.sessions, id)
	if len(c.sessions) == 0 {
		c.filter, c.stored = nil, nil
	}
	c.fmu.Unlock()
}

func sessionPath(id string) string { return "/sessions/" + url.PathEscape(id) }

// checkSession refuses, before any request, a session ID that no vault
// hands out: empty, or one that would change the URL's path (".", "..").
func checkSession(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 128 || strings.ContainsAny(id, "/?#%") {
		return fmt.Errorf("session %q: %w", id, vaultapi.ErrNoSession)
	}
	return nil
}

func (c *Client) RenewSession(ctx context.Context, id string) (vaultapi.Session, error) {
	var s vaultapi.Session
	if err := checkSession(id); err != nil {
		return s, err
	}
	_, b, err := c.c.do(ctx, request{method: "POST", path: sessionPath(id) + "/renew", retry: idempotent})
	if err != nil {
		return s, err
	}
	return s, decode(b, &s)
}

func (c *Client) EndSession(ctx context.Context, id string) error {
	if checkSession(id) != nil {
		return nil // no such session: nothing to end
	}
	_, _, err := c.c.do(ctx, request{method: "DELETE", path: sessionPath(id), retry: idempotent})
	c.ended(id)
	return err
}

// batches calls fn for successive slices of at most MaxBatch IDs.
func batches(ids []vaultapi.ID, fn func([]vaultapi.ID) error) error {
	for len(ids) > 0 {
		n := min(len(ids), vaultwire.MaxBatch)
		if err := fn(ids[:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// HasBlobs asks which blobs the vault holds. Concurrent small calls are
// merged into shared requests; large ones are split into batches of
// vaultwire.MaxBatch IDs.
func (c *Client) HasBlobs(ctx context.Context, ids []vaultapi.ID) ([]bool, error) {
	if err := ctx.Err(); err != nil { // the filter would answer without the network
		return nil, err
	}
	c.fmu.RLock()
	f := c.filter
	if f == nil {
		c.fmu.RUnlock()
		return c.has.has(ctx, ids)
	}
	out := make([]bool, len(ids))
	var ask []vaultapi.ID
	var at []int
	for i, id := range ids {
		if c.mayHave(&id) {
			ask = append(ask, id)
			at = append(at, i)
		}
	}
	c.fmu.RUnlock()
	if len(ask) == 0 {
		return out, nil
	}
	has, err := c.has.has(ctx, ask)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		out[i] = has[j]
	}
	return out, nil
}

func (c *Client) hasBlobs(ctx context.Context, ids []vaultapi.ID) ([]bool, error) {
	out := make([]bool, 0, len(ids))
	err := batches(ids, func(b []vaultapi.ID) error {
		_, body, err := c.c.do(ctx, request{method: "POST", path: "/blobs/has", body: vaultwire.AppendIDs(nil, b),
			ctype: "application/octet-stream", retry: idempotent})
		if err != nil {
			return err
		}
		has, err := vaultwire.DecodeBits(body, len(b))
		if err != nil {
			return fmt.Errorf("vault answer: %v", err)
		}
		out = append(out, has...)
		return nil
	})
	return out, err
}

func (c *Client) Locate(ctx context.Context, ids []vaultapi.ID) ([]vaultapi.Location, error) {
	out := make([]vaultapi.Location, 0, len(ids))
	err := batches(ids, func(b []vaultapi.ID) error {
		_, body, err := c.c.do(ctx, request{method: "POST", path: "/blobs/locate", body: vaultwire.AppendIDs(nil, b),
			ctype: "application/octet-stream", retry: idempotent})
		if err != nil {
			return err
		}
		locs, err := vaultwire.DecodeLocations(body, b)
		if err != nil {
			return fmt.Errorf("vault answer: %v", err)
		}
		out = append(out, locs...)
		return nil
	})
	return out, err
}

// StorePack sends the pack's bytes; the entries travel as the BLAKE3 of
// their trailer encoding, which the vault compares with the pack's own
// trailer. Storing is idempotent, so it is retried.
func (c *Client) StorePack(ctx context.Context, sessionID string, p vaultapi.Pack) error {
	if err := checkSession(sessionID); err != nil {
		return err
	}
	if !pack.ValidName(p.Name) {
		return fmt.Errorf("%w: pack name %q", vaultapi.ErrBadRequest, p.Name)
	}
	for _, e := range p.Entries {
		if !e.Kind.Valid() {
			return fmt.Errorf("%w: pack entry of kind %d", vaultapi.ErrBadRequest, e.Kind)
		}
	}
	th := blake3.Sum256(pack.AppendTrailer(nil, p.Entries))
	data := p.Data
	if data == nil {
		data = []byte{}
	}
	_, _, err := c.c.do(ctx, request{method: "PUT", path: sessionPath(sessionID) + "/packs/" + p.Name, body: data,
		ctype: "application/octet-stream", header: map[string]string{vaultwire.HeaderTrailerHash: fmt.Sprintf("%x", th)},
		retry: idempotent})
	if err == nil {
		c.fmu.Lock()
		if c.filter != nil {
			for i := range p.Entries {
				c.stored[prefix(&p.Entries[i].ID)] = struct{}{}
			}
		}
		c.fmu.Unlock()
	}
	return err
}

// Commit is not idempotent (a commit ends its session), so it is retried
// only when the vault surely did not receive it.
func (c *Client) Commit(ctx context.Context, sessionID string, cm vaultapi.Commit) (vaultapi.Point, error) {
	var p vaultapi.Point
	if err := checkSession(sessionID); err != nil {
		return p, err
	}
	_, b, err := c.c.do(ctx, request{method: "POST", path: sessionPath(sessionID) + "/commit", body: vaultwire.EncodeCommit(cm),
		ctype: "application/octet-stream", retry: once})
	if err != nil {
		return p, err
	}
	c.ended(sessionID)
	return p, decode(b, &p)
}

func (c *Client) Points(ctx context.Context) ([]vaultapi.Point, error) {
	var ps []vaultapi.Point
	return ps, c.c.getJSON(ctx, "/points", &ps)
}

func (c *Client) Point(ctx context.Context, id string) (vaultapi.Point, error) {
	var p vaultapi.Point
	if id == "" {
		return p, fmt.Errorf("point %q: %w", id, vaultapi.ErrNotFound)
	}
	return p, c.c.getJSON(ctx, "/points/"+url.PathEscape(id), &p)
}

// ReadPack streams a range of a pack. The reader fails with
// io.ErrUnexpectedEOF if the vault sends fewer bytes than asked.
func (c *Client) ReadPack(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if !pack.ValidName(name) || off < 0 || length < 0 {
		return nil, fmt.Errorf("%w: pack %q range %d+%d", vaultapi.ErrBadRequest, name, off, length)
	}
	q := "?offset=" + strconv.FormatInt(off, 10) + "&length=" + strconv.FormatInt(length, 10)
	resp, _, err := c.c.do(ctx, request{method: "GET", path: "/packs/" + name + q, stream: true})
	if err != nil {
		return nil, err
	}
	return &exactReader{rc: resp.Body, left: length}, nil
}

type exactReader struct {
	rc   io.ReadCloser
	left int64
}

func (r *exactReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.rc.Read(p)
	r.left -= int64(n)
	switch {
	case r.left == 0:
		return n, nil // all there; the next Read says EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (r *exactReader) Close() error { return r.rc.Close() }

// SetVerifier stores the machine's replace verifier at the vault: the
// SHA-256 of the proof that a later `register --replace` sends. It can be
// set once; setting the same value again is a no-op.
func (c *Client) SetVerifier(ctx context.Context, verifier [32]byte) error {
	return c.c.sendJSON(ctx, "PUT", "/verifier", vaultwire.VerifierRequest{Verifier: verifier[:]}, nil, idempotent)
}

// DeletePoint asks the vault to delete a recovery point. Machine
// credentials are always refused (vaultapi.ErrForbidden): deletion is an
// operator action.
func (c *Client) DeletePoint(ctx context.Context, id string) error {
	_, _, err := c.c.do(ctx, request{method: "DELETE", path: "/points/" + url.PathEscape(id), retry: once})
	return err
}

func (c *Client) Policy(ctx context.Context) (vaultapi.Policy, error) {
	var p vaultapi.Policy
	return p, c.c.getJSON(ctx, "/policy", &p)
}

// ReportJob is idempotent: a report replaces the one of the same job ID.
func (c *Client) ReportJob(ctx context.Context, j vaultapi.Job) error {
	if !vaultapi.ValidSlotID(j.ID) {
		return fmt.Errorf("%w: job ID %q: 1 to 64 letters, digits, dots, dashes or underscores, not only dots", vaultapi.ErrBadRequest, j.ID)
	}
	return c.c.sendJSON(ctx, "PUT", "/jobs/"+url.PathEscape(j.ID), j, nil, idempotent)
}

func (c *Client) Jobs(ctx context.Context) ([]vaultapi.Job, error) {
	var js []vaultapi.Job
	return js, c.c.getJSON(ctx, "/jobs", &js)
}

func (c *Client) DeletedPoints(ctx context.Context) ([]vaultapi.Point, error) {
	var ps []vaultapi.Point
	return ps, c.c.getJSON(ctx, "/deleted-points", &ps)
}
