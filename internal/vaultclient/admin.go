package vaultclient

import (
	"context"
	"net/url"
	"time"

	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultwire"
)

// Register registers a machine with the vault, proving the enrolment
// secret of req. It is not idempotent, so it is retried only when the
// vault surely did not receive it. cfg needs no token.
func Register(ctx context.Context, cfg Config, req vaultwire.RegisterRequest) (vaultwire.RegisterResponse, error) {
	var resp vaultwire.RegisterResponse
	c, err := newConn(cfg)
	if err != nil {
		return resp, err
	}
	defer c.hc.CloseIdleConnections()
	return resp, c.sendJSON(ctx, "POST", "/register", req, &resp, once)
}

// ReplaceSlots fetches the key slots of the machine to replace, proving
// the enrolment secret of req.
func ReplaceSlots(ctx context.Context, cfg Config, req vaultwire.SlotsRequest) (vaultwire.SlotsResponse, error) {
	var resp vaultwire.SlotsResponse
	c, err := newConn(cfg)
	if err != nil {
		return resp, err
	}
	defer c.hc.CloseIdleConnections()
	return resp, c.sendJSON(ctx, "POST", "/register/keyslots", req, &resp, idempotent)
}

// Admin is the operator surface of a vault, for an operator token.
type Admin struct{ c *conn }

// NewAdmin returns the operator client for cfg (whose token is an operator
// token).
func NewAdmin(cfg Config) (*Admin, error) {
	c, err := newConn(cfg)
	if err != nil {
		return nil, err
	}
	return &Admin{c: c}, nil
}

// Close releases idle connections.
func (a *Admin) Close() error { a.c.hc.CloseIdleConnections(); return nil }

// Machines lists the registered machines.
func (a *Admin) Machines(ctx context.Context) ([]vaultwire.MachineInfo, error) {
	var ms []vaultwire.MachineInfo
	return ms, a.c.getJSON(ctx, "/admin/machines", &ms)
}

// MachinePoints lists the points of the named machine (all if empty).
func (a *Admin) MachinePoints(ctx context.Context, name string) ([]vaultapi.Point, error) {
	var ps []vaultapi.Point
	path := "/admin/points"
	if name != "" {
		path += "?machine=" + url.QueryEscape(name)
	}
	return ps, a.c.getJSON(ctx, path, &ps)
}

// CreateEnrolment issues an enrolment secret valid for ttl.
func (a *Admin) CreateEnrolment(ctx context.Context, ttl time.Duration) (vaultwire.EnrolmentResponse, error) {
	var resp vaultwire.EnrolmentResponse
	return resp, a.c.sendJSON(ctx, "POST", "/admin/enrolments", vaultwire.EnrolmentRequest{ExpiresIn: ttl.String()}, &resp, once)
}

// CreateOperatorToken issues another operator token.
func (a *Admin) CreateOperatorToken(ctx context.Context, name string) (vaultwire.TokenResponse, error) {
	var resp vaultwire.TokenResponse
	return resp, a.c.sendJSON(ctx, "POST", "/admin/tokens", vaultwire.TokenRequest{Name: name}, &resp, once)
}

// RevokeEnrolment revokes an enrolment secret by ID.
func (a *Admin) RevokeEnrolment(ctx context.Context, id string) error {
	_, _, err := a.c.do(ctx, request{method: "DELETE", path: "/admin/enrolments/" + url.PathEscape(id), retry: idempotent})
	return err
}

// RevokeToken revokes a token by ID.
func (a *Admin) RevokeToken(ctx context.Context, id string) error {
	_, _, err := a.c.do(ctx, request{method: "DELETE", path: "/admin/tokens/" + url.PathEscape(id), retry: idempotent})
	return err
}

func machineQuery(path, name string) string {
	if name == "" {
		return path
	}
	return path + "?machine=" + url.QueryEscape(name)
}

// Policy returns the policy in force for the named machine (the vault-wide
// default if name is empty).
func (a *Admin) Policy(ctx context.Context, name string) (vaultapi.Policy, error) {
	var p vaultapi.Policy
	return p, a.c.getJSON(ctx, machineQuery("/admin/policy", name), &p)
}

// SetPolicy sets the named machine's policy (the default if name is empty).
func (a *Admin) SetPolicy(ctx context.Context, name string, s policy.Spec) (vaultapi.Policy, error) {
	var p vaultapi.Policy
	return p, a.c.sendJSON(ctx, "PUT", machineQuery("/admin/policy", name), s, &p, idempotent)
}

// Jobs lists the jobs of the named machine (all if empty), newest first.
func (a *Admin) Jobs(ctx context.Context, name string) ([]vaultapi.Job, error) {
	var js []vaultapi.Job
	return js, a.c.getJSON(ctx, machineQuery("/admin/jobs", name), &js)
}

// DeletedPoints lists soft-deleted points of the named machine (all if empty).
func (a *Admin) DeletedPoints(ctx context.Context, name string) ([]vaultapi.Point, error) {
	var ps []vaultapi.Point
	return ps, a.c.getJSON(ctx, machineQuery("/admin/deleted-points", name), &ps)
}

// UndeletePoint restores a soft-deleted point.
func (a *Admin) UndeletePoint(ctx context.Context, name, id string) error {
	_, _, err := a.c.do(ctx, request{method: "POST", path: machineQuery("/admin/points/"+url.PathEscape(id)+"/undelete", name), retry: idempotent})
	return err
}

// RunRetention makes the vault enforce retention on every machine now.
func (a *Admin) RunRetention(ctx context.Context) ([]vault.RetentionResult, error) {
	var res []vault.RetentionResult
	return res, a.c.sendJSON(ctx, "POST", "/admin/retention", struct{}{}, &res, idempotent)
}
