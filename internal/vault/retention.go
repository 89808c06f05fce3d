package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Policy returns the policy in force for the machine: its own, else the
// vault-wide default, else an empty one (Source PolicyNone). Machine ""
// returns the default itself.
func (v *Vault) Policy(ctx context.Context, machineID string) (vaultapi.Policy, error) {
	if machineID != "" {
		if _, err := v.meta.Machine(ctx, machineID); err != nil {
			return vaultapi.Policy{}, mapErr(err)
		}
		p, err := v.meta.Policy(ctx, machineID)
		if err == nil {
			p.Source = vaultapi.PolicyMachine
			return p, nil
		}
		if !errors.Is(err, meta.ErrNotFound) {
			return p, mapErr(err)
		}
	}
	p, err := v.meta.Policy(ctx, "")
	if errors.Is(err, meta.ErrNotFound) {
		return vaultapi.Policy{Source: vaultapi.PolicyNone}, nil
	}
	p.Source = vaultapi.PolicyDefault
	return p, mapErr(err)
}

// SetPolicy sets the machine's policy (machine "": the vault-wide default)
// after checking it; a bad policy is ErrBadRequest naming every mistake.
// It is an operator action: no machine can reach it.
func (v *Vault) SetPolicy(ctx context.Context, machineID string, s policy.Spec) (vaultapi.Policy, error) {
	if _, err := s.Compile(); err != nil {
		return vaultapi.Policy{}, fmt.Errorf("%w: %v", vaultapi.ErrBadRequest, err)
	}
	p := vaultapi.Policy{Spec: s, Updated: v.now()}
	if err := v.meta.PutPolicy(ctx, machineID, p); err != nil {
		return vaultapi.Policy{}, mapErr(err)
	}
	v.log.Info("policy set", "machine", machineID, "schedule", s.Schedule, "zone", s.Zone)
	p.Source = vaultapi.PolicyMachine
	if machineID == "" {
		p.Source = vaultapi.PolicyDefault
	}
	return p, nil
}

// points lists the machine's points: the live ones, or the soft-deleted.
func (v *Vault) points(ctx context.Context, machineID string, deleted bool) ([]vaultapi.Point, error) {
	ps, err := v.meta.Points(ctx, machineID)
	if err != nil {
		return nil, mapErr(err)
	}
	return slices.DeleteFunc(ps, func(p vaultapi.Point) bool { return p.Deleted.IsZero() == deleted }), nil
}

// DeletedPoints lists the machine's soft-deleted points, oldest first.
func (v *Vault) DeletedPoints(ctx context.Context, machineID string) ([]vaultapi.Point, error) {
	return v.points(ctx, machineID, true)
}

// RetentionResult is what one retention run did to a machine.
type RetentionResult struct {
	Machine string   `json:"machine"`
	Deleted []string `json:"deleted"` // points soft-deleted now
	Purged  []string `json:"purged"`  // soft-deleted points removed for good
}

// ApplyRetention enforces the machine's retention on the vault's clock:
// every live point that no rule of the policy keeps (policy.Apply at the
// vault's now) is soft-deleted, stamped with the vault's time; then the
// points soft-deleted more than DeleteGrace ago are purged. A policy
// without retention rules keeps every point.
func (v *Vault) ApplyRetention(ctx context.Context, machineID string) (RetentionResult, error) {
	defer v.retain.lock(machineID)()
	res := RetentionResult{Machine: machineID}
	pol, err := v.Policy(ctx, machineID)
	if err != nil {
		return res, err
	}
	now := v.now()
	if !pol.Retention.IsZero() {
		c, err := pol.Spec.Compile()
		if err != nil {
			return res, fmt.Errorf("retention of machine %s: stored policy: %w", machineID, err)
		}
		live, err := v.points(ctx, machineID, false)
		if err != nil {
			return res, err
		}
		for _, d := range policy.Apply(c.Retention, retentionPoints(live), now) {
			if d.Keep {
				continue
			}
			if err := v.meta.SetPointDeleted(ctx, machineID, d.ID, now); err != nil {
				return res, mapErr(err)
			}
			res.Deleted = append(res.Deleted, d.ID)
		}
	}
	deleted, err := v.points(ctx, machineID, true)
	if err != nil {
		return res, err
	}
	for _, p := range deleted {
		if now.Sub(p.Deleted) < vaultapi.DeleteGrace {
			continue
		}
		if err := v.meta.PurgePoint(ctx, machineID, p.ID); err != nil {
			return res, mapErr(err)
		}
		res.Purged = append(res.Purged, p.ID)
	}
	if len(res.Deleted)+len(res.Purged) > 0 {
		v.log.Info("retention", "machine", machineID, "deleted", len(res.Deleted), "purged", len(res.Purged))
	}
	return res, nil
}

// retentionPoints converts points for policy.Apply.
func retentionPoints(ps []vaultapi.Point) []policy.Point {
	out := make([]policy.Point, len(ps))
	for i, p := range ps {
		out[i] = policy.Point{ID: p.ID, Time: p.Time, OnDemand: p.OnDemand}
	}
	return out
}

// ApplyRetentionAll runs ApplyRetention for every machine (the vault
// server's periodic job). It goes on past a machine's failure and returns
// the errors joined.
func (v *Vault) ApplyRetentionAll(ctx context.Context) ([]RetentionResult, error) {
	ms, err := v.meta.Machines(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	var out []RetentionResult
	var errs []error
	for _, m := range ms {
		r, err := v.ApplyRetention(ctx, m.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("machine %s: %w", m.Name, err))
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// ErrNotDeleted refuses to undelete a point that is not soft-deleted.
var ErrNotDeleted = fmt.Errorf("%w: the point is not deleted", vaultapi.ErrBadRequest)

// UndeletePoint restores a soft-deleted point (an operator action). A
// point past its grace period is purged already (ErrNotFound). The
// restored point can be soft-deleted again by the next retention run
// unless the policy now keeps it.
func (v *Vault) UndeletePoint(ctx context.Context, machineID, pointID string) error {
	defer v.retain.lock(machineID)()
	p, err := v.meta.Point(ctx, machineID, pointID)
	if err != nil {
		return mapErr(err)
	}
	if p.Deleted.IsZero() {
		return ErrNotDeleted
	}
	if v.now().Sub(p.Deleted) >= vaultapi.DeleteGrace {
		return fmt.Errorf("%w: point %s was deleted on %s, more than %v ago, and is being purged", vaultapi.ErrNotFound,
			pointID, p.Deleted.Format("2006-01-02"), vaultapi.DeleteGrace)
	}
	if err := v.meta.SetPointDeleted(ctx, machineID, pointID, timeZero); err != nil {
		return mapErr(err)
	}
	v.log.Info("point undeleted", "machine", machineID, "point", pointID)
	return nil
}

// ReportJob records a job of the machine, stamped with the vault's clock.
func (v *Vault) reportJob(ctx context.Context, machineID string, j vaultapi.Job) error {
	if !vaultapi.ValidJob(j) {
		return fmt.Errorf("%w: a job needs an ID (1-64 letters, digits, '.', '_', '-'), a trigger (schedule, catch-up, manual), "+
			"a status (running, ok, partial, failed), a start time and a message of at most %d bytes", vaultapi.ErrBadRequest, vaultapi.MaxJobMessage)
	}
	j.Machine = machineID
	j.Reported = v.now()
	j.Started = j.Started.UTC()
	if !j.Ended.IsZero() {
		j.Ended = j.Ended.UTC()
	}
	return mapErr(v.meta.PutJob(ctx, machineID, j))
}

// Jobs lists the machine's jobs, newest first.
func (v *Vault) Jobs(ctx context.Context, machineID string) ([]vaultapi.Job, error) {
	j, err := v.meta.Jobs(ctx, machineID)
	return j, mapErr(err)
}

func (m *machine) Policy(ctx context.Context) (vaultapi.Policy, error) {
	return m.v.Policy(ctx, m.m.ID)
}
func (m *machine) ReportJob(ctx context.Context, j vaultapi.Job) error {
	return m.v.reportJob(ctx, m.m.ID, j)
}
func (m *machine) Jobs(ctx context.Context) ([]vaultapi.Job, error) { return m.v.Jobs(ctx, m.m.ID) }
func (m *machine) DeletedPoints(ctx context.Context) ([]vaultapi.Point, error) {
	return m.v.DeletedPoints(ctx, m.m.ID)
}

var timeZero = time.Time{}
