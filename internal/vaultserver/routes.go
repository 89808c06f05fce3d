package vaultserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultwire"
	"github.com/zeebo/blake3"
)

func (s *Server) routes() {
	paths := map[string]bool{}
	handle := func(method, path string, h http.HandlerFunc) {
		s.mux.HandleFunc(method+" "+vaultwire.API+path, h)
		paths[path] = true
	}
	// Machine surface: the vaultapi contract.
	handle("GET", "/info", s.machine(s.info))
	handle("GET", "/keyslots", s.machine(s.keySlots))
	handle("PUT", "/keyslots/{id}", s.machine(s.putKeySlot))
	handle("POST", "/sessions", s.machine(s.beginBackup))
	handle("POST", "/sessions/{sid}/renew", s.machine(s.renewSession))
	handle("DELETE", "/sessions/{sid}", s.machine(s.endSession))
	handle("POST", "/blobs/has", s.machine(s.hasBlobs))
	handle("POST", "/blobs/locate", s.machine(s.locate))
	handle("GET", "/blobs/filter", s.machine(s.blobFilter))
	handle("PUT", "/sessions/{sid}/packs/{name}", s.machine(s.storePack))
	handle("POST", "/sessions/{sid}/commit", s.machine(s.commit))
	handle("GET", "/points", s.machine(s.points))
	handle("GET", "/points/{id}", s.machine(s.point))
	handle("DELETE", "/points/{id}", s.machine(s.deletePoint))
	handle("GET", "/packs/{name}", s.machine(s.readPack))
	handle("PUT", "/verifier", s.machine(s.setVerifier))
	handle("GET", "/policy", s.machine(s.policy))
	handle("GET", "/jobs", s.machine(s.jobs))
	handle("PUT", "/jobs/{id}", s.machine(s.reportJob))
	handle("GET", "/deleted-points", s.machine(s.deletedPoints))

	// Registration: proves an enrolment secret in the body.
	handle("POST", "/register", public(s.register))
	handle("POST", "/register/keyslots", public(s.replaceSlots))

	// Operator surface.
	handle("GET", "/admin/machines", s.operator(s.adminMachines))
	handle("GET", "/admin/points", s.operator(s.adminPoints))
	handle("POST", "/admin/enrolments", s.operator(s.adminEnrol))
	handle("DELETE", "/admin/enrolments/{id}", s.operator(s.adminRevokeEnrolment))
	handle("POST", "/admin/tokens", s.operator(s.adminToken))
	handle("DELETE", "/admin/tokens/{id}", s.operator(s.adminRevokeToken))
	handle("GET", "/admin/policy", s.operator(s.adminPolicy))
	handle("PUT", "/admin/policy", s.operator(s.adminSetPolicy))
	handle("GET", "/admin/jobs", s.operator(s.adminJobs))
	handle("GET", "/admin/deleted-points", s.operator(s.adminDeletedPoints))
	handle("POST", "/admin/points/{id}/undelete", s.operator(s.adminUndelete))
	handle("POST", "/admin/retention", s.operator(s.adminRetention))

	// JSON answers for wrong methods and unknown paths.
	for p := range paths {
		s.mux.HandleFunc(vaultwire.API+p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "see doc/PROTOCOL.md")
			writeJSON(w, http.StatusMethodNotAllowed, vaultwire.Error{Code: "bad_request",
				Message: fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)})
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fmt.Errorf("%w: no endpoint %s %s (this vault speaks %s)", vaultapi.ErrNotFound, r.Method, r.URL.Path, vaultwire.API))
	})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	info, err := v.Info(r.Context())
	return reply(w, info, err)
}

func (s *Server) keySlots(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	slots, err := v.KeySlots(r.Context())
	return replyList(w, slots, err)
}

func (s *Server) putKeySlot(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	b, err := readBody(w, r, 64<<10)
	if err != nil {
		return err
	}
	if err := v.PutKeySlot(r.Context(), vaultapi.KeySlot{ID: r.PathValue("id"), Data: b}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) beginBackup(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	sess, err := v.BeginBackup(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, sess)
	return nil
}

func (s *Server) renewSession(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	sess, err := v.RenewSession(r.Context(), r.PathValue("sid"))
	return reply(w, sess, err)
}

func (s *Server) endSession(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	if err := v.EndSession(r.Context(), r.PathValue("sid")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) readIDs(w http.ResponseWriter, r *http.Request) ([]vaultapi.ID, error) {
	b, err := readBody(w, r, vaultwire.MaxBatch*32)
	if err != nil {
		return nil, err
	}
	return vaultwire.DecodeIDs(b, vaultwire.MaxBatch)
}

func (s *Server) hasBlobs(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	ids, err := s.readIDs(w, r)
	if err != nil {
		return err
	}
	has, err := v.HasBlobs(r.Context(), ids)
	if err != nil {
		return err
	}
	writeBytes(w, vaultwire.EncodeBits(has))
	return nil
}

func (s *Server) locate(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	ids, err := s.readIDs(w, r)
	if err != nil {
		return err
	}
	locs, err := v.Locate(r.Context(), ids)
	if err != nil {
		return err
	}
	b, err := vaultwire.AppendLocations(make([]byte, 0, len(locs)*vaultwire.LocationSize), locs)
	if err != nil {
		return err
	}
	writeBytes(w, b)
	return nil
}

// blobLister is an optional extra of a metadata store.
type blobLister interface {
	ForEachBlob(ctx context.Context, machine string, fn func(vaultapi.ID) error) error
}

// blobFilter sends a Bloom filter of the machine's blob index.
func (s *Server) blobFilter(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, p Principal) error {
	bl, ok := s.cfg.Vault.Meta().(blobLister)
	if !ok {
		return fmt.Errorf("%w: this vault's store gives no blob filter", vaultapi.ErrNotFound)
	}
	n := 0
	if err := bl.ForEachBlob(r.Context(), p.Machine, func(vaultapi.ID) error { n++; return nil }); err != nil {
		return err
	}
	f := vaultwire.NewFilter(n)
	if err := bl.ForEachBlob(r.Context(), p.Machine, func(id vaultapi.ID) error { f.Add(id); return nil }); err != nil {
		return err
	}
	writeBytes(w, f.Encode())
	return nil
}

// storePack receives a pack: the body is the pack's bytes, hashed while
// they stream in; the trailer hash header stands for the entries.
func (s *Server) storePack(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	name := r.PathValue("name")
	if !pack.ValidName(name) {
		return fmt.Errorf("%w: pack name %q is not 64 lower-case hex digits", vaultapi.ErrBadRequest, name)
	}
	want := r.Header.Get(vaultwire.HeaderTrailerHash)
	if !pack.ValidName(want) {
		return fmt.Errorf("%w: header %s missing or malformed", vaultapi.ErrBadRequest, vaultwire.HeaderTrailerHash)
	}
	n := r.ContentLength
	if n < 0 {
		return fmt.Errorf("%w: a pack upload needs a Content-Length", vaultapi.ErrBadRequest)
	}
	if n > s.cfg.MaxPack {
		return fmt.Errorf("%w: pack of %d bytes, at most %d", vaultwire.ErrTooLarge, n, s.cfg.MaxPack)
	}
	if n < pack.HeaderSize+pack.TailSize {
		return fmt.Errorf("%w: pack of %d bytes is too short", vaultapi.ErrBadRequest, n)
	}
	release, err := s.acquireUpload(r.Context())
	if err != nil {
		return fmt.Errorf("%w: %v", vaultwire.ErrUnavailable, err)
	}
	defer release()
	buf := getPackBuf(n)
	defer packBufs.Put(buf)
	data := (*buf)[:n]
	if _, err := io.ReadFull(http.MaxBytesReader(w, r.Body, n), data); err != nil {
		return fmt.Errorf("%w: pack body: %v", vaultapi.ErrBadRequest, err)
	}
	// The vault checks that the bytes hash to the name (StorePack).
	entries, err := pack.Parse(data)
	if err != nil {
		return fmt.Errorf("%w: %v", vaultapi.ErrBadRequest, err)
	}
	trailer := blake3.Sum256(pack.AppendTrailer(nil, entries))
	if fmt.Sprintf("%x", trailer) != want {
		return fmt.Errorf("%w: the pack's trailer differs from the entries of the request", vaultapi.ErrBadRequest)
	}
	if err := v.StorePack(r.Context(), r.PathValue("sid"), vaultapi.Pack{Name: name, Data: data, Entries: entries}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// packBufs recycles pack upload buffers: a fresh 16 MiB allocation per
// pack is zeroed and faulted in page by page, which cost the server more
// CPU than reading the TLS stream. Nothing keeps a pack's bytes after
// StorePack returns (storage copies from a reader).
var packBufs sync.Pool

func getPackBuf(n int64) *[]byte {
	if b, ok := packBufs.Get().(*[]byte); ok && int64(cap(*b)) >= n {
		return b
	}
	b := make([]byte, 0, (n+1<<20-1)&^(1<<20-1)) // whole MiBs, so buffers fit more packs
	return &b
}

func (s *Server) commit(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	b, err := readBody(w, r, s.cfg.MaxCommit)
	if err != nil {
		return err
	}
	c, err := vaultwire.DecodeCommit(b)
	if err != nil {
		return err
	}
	p, err := v.Commit(r.Context(), r.PathValue("sid"), c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (s *Server) points(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	ps, err := v.Points(r.Context())
	return replyList(w, ps, err)
}

func (s *Server) point(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	p, err := v.Point(r.Context(), r.PathValue("id"))
	return reply(w, p, err)
}

// ErrDeleteIsOperator refuses deletion with machine credentials.
var ErrDeleteIsOperator = fmt.Errorf("%w: deleting a recovery point is an operator action: machine credentials can only add and read backups; "+
	"ask the vault operator (retention and deletion run at the vault)", vaultapi.ErrForbidden)

func (s *Server) deletePoint(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	return ErrDeleteIsOperator
}

// packSizer is an optional extra of a metadata store.
type packSizer interface {
	PackSize(ctx context.Context, machine, name string) (int64, error)
}

func (s *Server) readPack(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, p Principal) error {
	q := r.URL.Query()
	off, err1 := strconv.ParseInt(q.Get("offset"), 10, 64)
	length, err2 := strconv.ParseInt(q.Get("length"), 10, 64)
	if err1 != nil || err2 != nil || off < 0 || length < 0 || length > 1<<31 {
		return fmt.Errorf("%w: want ?offset=N&length=M, non-negative, length at most 2 GiB", vaultapi.ErrBadRequest)
	}
	name := r.PathValue("name")
	if ps, ok := s.cfg.Vault.Meta().(packSizer); ok && pack.ValidName(name) {
		size, err := ps.PackSize(r.Context(), p.Machine, name)
		if errors.Is(err, meta.ErrNotFound) {
			return fmt.Errorf("pack %s: %w", name[:12], vaultapi.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if off > size || length > size-off {
			return fmt.Errorf("%w: range %d+%d past the end of pack %s (%d bytes)", vaultapi.ErrBadRequest, off, length, name[:12], size)
		}
	}
	rc, err := v.ReadPack(r.Context(), name, off, length)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := io.CopyN(w, rc, length); err != nil {
		// Too late for an error answer: the short body tells the client.
		if rec, ok := w.(*recorder); ok {
			rec.errMsg = "read pack: " + err.Error()
		}
	}
	return nil
}

func (s *Server) setVerifier(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, p Principal) error {
	var req vaultwire.VerifierRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	if err := s.cfg.Authority.SetVerifier(r.Context(), p.Machine, req.Verifier); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	var req vaultwire.RegisterRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	resp, err := s.cfg.Authority.Register(r.Context(), req)
	if err != nil {
		return err
	}
	s.cfg.Log.Info("machine registered", "machine", resp.MachineID, "name", resp.MachineName, "replaced", resp.Replaced, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *Server) replaceSlots(w http.ResponseWriter, r *http.Request) error {
	var req vaultwire.SlotsRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	resp, err := s.cfg.Authority.ReplaceSlots(r.Context(), req)
	return reply(w, resp, err)
}

func (s *Server) adminMachines(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.cfg.Authority.Machines(r.Context())
	return replyList(w, ms, err)
}

func (s *Server) adminPoints(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.cfg.Authority.MachinePoints(r.Context(), r.URL.Query().Get("machine"))
	return replyList(w, ps, err)
}

func (s *Server) adminEnrol(w http.ResponseWriter, r *http.Request) error {
	var req vaultwire.EnrolmentRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	ttl := DefaultEnrolmentTTL
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil {
			return fmt.Errorf("%w: expires_in: %v", vaultapi.ErrBadRequest, err)
		}
		ttl = d
	}
	resp, err := s.cfg.Authority.CreateEnrolment(r.Context(), ttl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *Server) adminRevokeEnrolment(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Authority.RevokeEnrolment(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) adminToken(w http.ResponseWriter, r *http.Request) error {
	var req vaultwire.TokenRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	resp, err := s.cfg.Authority.CreateOperatorToken(r.Context(), req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *Server) adminRevokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Authority.RevokeToken(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
