package vaultserver

import (
	"fmt"
	"net/http"

	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func (s *Server) policy(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	p, err := v.Policy(r.Context())
	return reply(w, p, err)
}

func (s *Server) jobs(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	js, err := v.Jobs(r.Context())
	return replyList(w, js, err)
}

func (s *Server) reportJob(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	var j vaultapi.Job
	if err := s.readJSON(w, r, &j); err != nil {
		return err
	}
	if j.ID != r.PathValue("id") {
		return fmt.Errorf("%w: job ID %q in the body, %q in the path", vaultapi.ErrBadRequest, j.ID, r.PathValue("id"))
	}
	if err := v.ReportJob(r.Context(), j); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) deletedPoints(w http.ResponseWriter, r *http.Request, v vaultapi.Vault, _ Principal) error {
	ps, err := v.DeletedPoints(r.Context())
	return replyList(w, ps, err)
}

func (s *Server) adminPolicy(w http.ResponseWriter, r *http.Request) error {
	p, err := s.cfg.Authority.Policy(r.Context(), r.URL.Query().Get("machine"))
	return reply(w, p, err)
}

func (s *Server) adminSetPolicy(w http.ResponseWriter, r *http.Request) error {
	var spec policy.Spec
	if err := s.readJSON(w, r, &spec); err != nil {
		return err
	}
	p, err := s.cfg.Authority.SetPolicy(r.Context(), r.URL.Query().Get("machine"), spec)
	return reply(w, p, err)
}

func (s *Server) adminJobs(w http.ResponseWriter, r *http.Request) error {
	js, err := s.cfg.Authority.Jobs(r.Context(), r.URL.Query().Get("machine"))
	return replyList(w, js, err)
}

func (s *Server) adminDeletedPoints(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.cfg.Authority.DeletedPoints(r.Context(), r.URL.Query().Get("machine"))
	return replyList(w, ps, err)
}

func (s *Server) adminUndelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Authority.UndeletePoint(r.Context(), r.URL.Query().Get("machine"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) adminRetention(w http.ResponseWriter, r *http.Request) error {
	res, err := s.cfg.Authority.RunRetention(r.Context())
	return replyList(w, res, err)
}
