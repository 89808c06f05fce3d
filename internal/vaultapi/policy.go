package vaultapi

import (
	"time"

	"github.com/coffer-backup/coffer/internal/policy"
)

// Policy is a machine's backup policy as the vault holds it: the machine's
// own, else the vault-wide default, else none (every field empty: no
// schedule, retention off, no limits). Machines read it; only an operator
// sets it.
type Policy struct {
	policy.Spec
	// Source says where the policy comes from: PolicyMachine,
	// PolicyDefault or PolicyNone. Set by the vault when read.
	Source  string    `json:"source,omitempty"`
	Updated time.Time `json:"updated,omitzero"` // the vault's clock, when it was set
}

// Sources of a Policy.
const (
	PolicyMachine = "machine"
	PolicyDefault = "default"
	PolicyNone    = "none"
)

// Job is one backup run as the agent reports it. The agent reports a job
// when it starts (StatusRunning) and again when it ends; a report replaces
// the earlier report of the same ID.
type Job struct {
	ID         string    `json:"id"`      // chosen by the agent; ValidSlotID syntax
	Trigger    string    `json:"trigger"` // TriggerSchedule, TriggerCatchUp or TriggerManual
	Status     string    `json:"status"`  // StatusRunning, StatusOK, StatusPartial or StatusFailed
	Started    time.Time `json:"started"` // the agent's clock
	Ended      time.Time `json:"ended,omitzero"`
	Point      string    `json:"point,omitempty"` // the recovery point made, if any
	Files      uint64    `json:"files"`
	Bytes      uint64    `json:"bytes"`
	BytesAdded uint64    `json:"bytes_added"`
	Errors     uint64    `json:"errors"`
	Message    string    `json:"message,omitempty"` // at most MaxJobMessage bytes
	// Set by the vault: the machine and when the last report came (the
	// vault's clock).
	Machine  string    `json:"machine,omitempty"`
	Reported time.Time `json:"reported,omitzero"`
}

// Job triggers and statuses.
const (
	TriggerSchedule = "schedule"
	TriggerCatchUp  = "catch-up"
	TriggerManual   = "manual"

	StatusRunning = "running"
	StatusOK      = "ok"
	StatusPartial = "partial"
	StatusFailed  = "failed"
)

// MaxJobMessage bounds a job's message; MaxJobs is how many jobs the vault
// keeps per machine (the oldest go first).
const (
	MaxJobMessage = 4 << 10
	MaxJobs       = 1000
)

// ValidJob reports whether j can be reported.
func ValidJob(j Job) bool {
	switch j.Trigger {
	case TriggerSchedule, TriggerCatchUp, TriggerManual:
	default:
		return false
	}
	switch j.Status {
	case StatusRunning, StatusOK, StatusPartial, StatusFailed:
	default:
		return false
	}
	return ValidSlotID(j.ID) && !j.Started.IsZero() && len(j.Message) <= MaxJobMessage
}

// DeleteGrace is how long a soft-deleted recovery point can be restored
// (undeleted by an operator) before the vault purges it.
const DeleteGrace = 14 * 24 * time.Hour
