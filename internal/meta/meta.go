// Package meta is the vault's metadata store: machines, key slots, the
// blob index of each machine, packs, backup sessions and recovery points.
// Bolt is the embedded, pure-Go store; a PostgreSQL store can replace it
// behind the same interface. The store never sees a key or plaintext.
package meta

import (
	"context"
	"errors"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// ErrNotFound is returned (wrapped) for a missing machine, point or session.
var ErrNotFound = errors.New("meta: not found")

// ErrExists is returned when creating something whose name is taken.
var ErrExists = errors.New("meta: already exists")

// Machine is a machine registered with the vault.
type Machine struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// PackRecord describes a stored pack.
type PackRecord struct {
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	Blobs int    `json:"blobs"`
}

// Store is the metadata store. All methods are safe for concurrent use;
// each is atomic.
type Store interface {
	// VaultID is the vault's random, permanent identity.
	VaultID() string

	CreateMachine(ctx context.Context, m Machine) error // ErrExists if the name is taken
	Machine(ctx context.Context, id string) (Machine, error)
	MachineByName(ctx context.Context, name string) (Machine, error)
	Machines(ctx context.Context) ([]Machine, error)

	KeySlots(ctx context.Context, machine string) ([]vaultapi.KeySlot, error)
	PutKeySlot(ctx context.Context, machine string, s vaultapi.KeySlot) error

	// AddPack records a stored pack and indexes its blobs. A blob already
	// indexed keeps its first location.
	AddPack(ctx context.Context, machine string, p PackRecord, entries []vaultapi.PackEntry) error
	HasPack(ctx context.Context, machine, name string) (bool, error)
	// Pack returns the record of a stored pack, or ErrNotFound.
	Pack(ctx context.Context, machine, name string) (PackRecord, error)
	HasBlobs(ctx context.Context, machine string, ids []vaultapi.ID) ([]bool, error)
	Locate(ctx context.Context, machine string, ids []vaultapi.ID) ([]vaultapi.Location, error)

	PutSession(ctx context.Context, machine string, s vaultapi.Session) error
	Session(ctx context.Context, machine, id string) (vaultapi.Session, error)
	DeleteSession(ctx context.Context, machine, id string) error

	// AddPoint records a recovery point and the blobs it references, after
	// checking that every one of them is indexed; if some are not, it
	// records nothing and returns a *vaultapi.MissingBlobsError.
	AddPoint(ctx context.Context, machine string, p vaultapi.Point, refs []vaultapi.ID) error
	Points(ctx context.Context, machine string) ([]vaultapi.Point, error)
	Point(ctx context.Context, machine, id string) (vaultapi.Point, error)
	PointRefs(ctx context.Context, machine, id string) ([]vaultapi.ID, error)
	// SetPointDeleted marks a point soft-deleted at t (Points still lists
	// it, with Deleted set), or restores it when t is zero.
	SetPointDeleted(ctx context.Context, machine, id string, t time.Time) error
	// PurgePoint removes a point and its reference set for good. Points
	// whose reference set is stored relative to it are rewritten first, so
	// that every other point reads back exactly as before.
	PurgePoint(ctx context.Context, machine, id string) error

	// Policy returns the policy stored for the machine (machine "" is the
	// vault-wide default), or ErrNotFound if none is set.
	Policy(ctx context.Context, machine string) (vaultapi.Policy, error)
	// PutPolicy stores the machine's policy (machine "": the default).
	PutPolicy(ctx context.Context, machine string, p vaultapi.Policy) error
	// PutJob records a job of the machine, replacing the one of the same
	// ID, and drops the oldest jobs beyond vaultapi.MaxJobs.
	PutJob(ctx context.Context, machine string, j vaultapi.Job) error
	// Jobs lists the machine's jobs, newest (by Started) first.
	Jobs(ctx context.Context, machine string) ([]vaultapi.Job, error)

	Close() error
}

// Enrolment is an enrolment secret issued by an operator: whoever proves
// it may register machines until it expires or is revoked. The store keeps
// only a hash of the secret.
type Enrolment struct {
	ID      string    `json:"id"`   // public name, for listing and revocation
	Hash    string    `json:"hash"` // hex SHA-256 of the secret
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Revoked bool      `json:"revoked,omitempty"`
}

// Token kinds.
const (
	TokenMachine  = "machine"  // acts as one machine: append-only
	TokenOperator = "operator" // administers the vault
)

// Token is a bearer credential. The store keeps only a hash of the secret.
type Token struct {
	ID      string    `json:"id"`   // public name, for listing and revocation
	Hash    string    `json:"hash"` // hex SHA-256 of the secret
	Kind    string    `json:"kind"` // TokenMachine or TokenOperator
	Machine string    `json:"machine,omitempty"`
	Name    string    `json:"name,omitempty"` // operator's label
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"` // zero: never
	Revoked bool      `json:"revoked,omitempty"`
}

// Credentials is the part of the store that holds credentials. Stores
// implement it beside Store; secrets are never stored, only their hashes.
type Credentials interface {
	PutEnrolment(ctx context.Context, e Enrolment) error
	EnrolmentByHash(ctx context.Context, hash string) (Enrolment, error)
	Enrolments(ctx context.Context) ([]Enrolment, error)
	// RevokeEnrolment marks the enrolment of that ID revoked.
	RevokeEnrolment(ctx context.Context, id string) error

	PutToken(ctx context.Context, t Token) error
	TokenByHash(ctx context.Context, hash string) (Token, error)
	Tokens(ctx context.Context) ([]Token, error)
	// RevokeToken marks the token of that ID revoked.
	RevokeToken(ctx context.Context, id string) error
	// ReplaceMachineTokens revokes every token of the machine and stores t
	// (a new token of that machine), atomically.
	ReplaceMachineTokens(ctx context.Context, machine string, t Token) error

	// Verifier returns the machine's replace verifier (nil if none is set).
	Verifier(ctx context.Context, machine string) ([]byte, error)
	// SetVerifier sets the machine's replace verifier once: setting the same
	// value again is a no-op, a different value is ErrExists.
	SetVerifier(ctx context.Context, machine string, v []byte) error
}
