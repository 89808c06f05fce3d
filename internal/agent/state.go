package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/coffer-backup/coffer/internal/atomicfile"
	"io/fs"
	"os"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// StateName is the daemon's state file in the agent's home.
const StateName = "agent-state.json"

// State is what the daemon remembers across restarts, and what `coffer
// status` shows.
type State struct {
	// LastRun is the start of the last scheduled or catch-up run: the
	// lastRun of policy.Due.
	LastRun time.Time     `json:"last_run,omitzero"`
	LastJob *vaultapi.Job `json:"last_job,omitempty"`
	NextRun time.Time     `json:"next_run,omitzero"`
	// Problem is the daemon's current trouble (vault unreachable, policy
	// unreadable, lock held), empty when all is well.
	Problem string    `json:"problem,omitempty"`
	PID     int       `json:"pid,omitempty"`
	Updated time.Time `json:"updated,omitzero"`
}

// LoadState reads the state file; a missing file is the zero State.
func LoadState(path string) (State, error) {
	var s State
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("agent state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("agent state %s: %w", path, err)
	}
	return s, nil
}

// SaveState writes the state file atomically (a temporary file renamed
// over it).
func SaveState(path string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(b, '\n'), 0o600)
}

// WriteFileAtomic writes data to path whole or not at all (see package
// atomicfile).
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return atomicfile.Write(path, data, mode)
}
