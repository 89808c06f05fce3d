package vaultserver

import (
	"context"
	"fmt"

	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// machineID resolves a machine name; "" stays "" (the vault-wide default).
func (a *Authority) machineID(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	m, err := a.meta.MachineByName(ctx, name)
	if err != nil {
		return "", mapMeta(err)
	}
	return m.ID, nil
}

// Policy returns the policy in force for the machine named name, or the
// vault-wide default when name is empty.
func (a *Authority) Policy(ctx context.Context, name string) (vaultapi.Policy, error) {
	id, err := a.machineID(ctx, name)
	if err != nil {
		return vaultapi.Policy{}, err
	}
	return a.v.Policy(ctx, id)
}

// SetPolicy sets the policy of the machine named name, or the vault-wide
// default when name is empty.
func (a *Authority) SetPolicy(ctx context.Context, name string, s policy.Spec) (vaultapi.Policy, error) {
	id, err := a.machineID(ctx, name)
	if err != nil {
		return vaultapi.Policy{}, err
	}
	return a.v.SetPolicy(ctx, id, s)
}

// Jobs lists the jobs of the machine named name, or of every machine,
// newest first.
func (a *Authority) Jobs(ctx context.Context, name string) ([]vaultapi.Job, error) {
	ms, err := a.machineIDs(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []vaultapi.Job
	for _, m := range ms {
		js, err := a.v.Jobs(ctx, m)
		if err != nil {
			return nil, err
		}
		out = append(out, js...)
	}
	sortJobs(out)
	return out, nil
}

func (a *Authority) machineIDs(ctx context.Context, name string) ([]string, error) {
	if name != "" {
		id, err := a.machineID(ctx, name)
		return []string{id}, err
	}
	ms, err := a.meta.Machines(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids, nil
}

// UndeletePoint restores a soft-deleted point of the machine named name
// (any machine when name is empty).
func (a *Authority) UndeletePoint(ctx context.Context, name, pointID string) error {
	ms, err := a.machineIDs(ctx, name)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if _, err := a.meta.Point(ctx, m, pointID); err != nil {
			continue
		}
		return a.v.UndeletePoint(ctx, m, pointID)
	}
	return fmt.Errorf("%w: no point %s", vaultapi.ErrNotFound, pointID)
}

// RunRetention enforces retention on every machine now.
func (a *Authority) RunRetention(ctx context.Context) ([]vault.RetentionResult, error) {
	return a.v.ApplyRetentionAll(ctx)
}
