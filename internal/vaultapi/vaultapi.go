package vaultapi

import (
	"context"
	"io"
	"strings"
	"time"
)

// Vault is what an agent, acting as one machine, can ask of a vault. The
// machine is implied by the credentials the implementation was opened with;
// nothing here can delete data or reach another machine: another machine's
// points, packs and blobs are "not found" (ErrNotFound, or absent in
// HasBlobs and Locate), and its sessions are ErrNoSession. Errors wrap the
// sentinels of this package; test them with errors.Is (and errors.As for
// *MissingBlobsError). The suite in vaulttest pins these semantics.
type Vault interface {
	// Info describes the vault and the machine the caller acts as.
	Info(ctx context.Context) (Info, error)

	// KeySlots returns the machine's key slots (opaque to the vault), in no
	// particular order.
	KeySlots(ctx context.Context) ([]KeySlot, error)
	// PutKeySlot stores a key slot, replacing the slot of the same ID. Key
	// slots wrap the machine's keys; replacing one changes no data. A slot
	// whose ID fails ValidSlotID or whose data is empty or larger than
	// MaxKeySlot is refused with ErrBadRequest.
	PutKeySlot(ctx context.Context, s KeySlot) error

	// BeginBackup opens a backup session: a lease, renewed with
	// RenewSession, during which nothing the session may rely on is
	// garbage-collected. The lease runs on the vault's clock.
	BeginBackup(ctx context.Context) (Session, error)
	// RenewSession extends the session's lease. A session that is unknown,
	// ended, committed or past its lease is ErrNoSession, here and in
	// StorePack and Commit.
	RenewSession(ctx context.Context, sessionID string) (Session, error)
	// EndSession closes a session without committing (a commit ends it
	// too). Ending a session that is not open is not an error. What the
	// session stored stays stored, and later sessions can reference it.
	EndSession(ctx context.Context, sessionID string) error

	// HasBlobs reports, for each ID, whether the machine's vault holds a
	// blob of that ID. Callers batch thousands of IDs per call.
	HasBlobs(ctx context.Context, ids []ID) ([]bool, error)

	// StorePack stores a pack in an open session. The name must be the hex
	// BLAKE3-256 (lower case) of the bytes, the bytes a well-formed pack and
	// the entries exactly the pack's trailer, in order; otherwise the pack
	// is refused with ErrBadRequest and nothing of it is stored or indexed.
	// Storing a pack that is already stored is a no-op. A blob already
	// stored in another pack keeps its first location.
	StorePack(ctx context.Context, sessionID string, p Pack) error

	// Commit makes a recovery point of the session, atomically, and ends
	// the session. Info must be set (else ErrBadRequest) and every
	// referenced blob, Info included, must be stored by this machine, or
	// the commit is refused with a *MissingBlobsError naming the missing
	// ones; a refused commit creates no point and leaves the session open.
	// The vault stamps the time with its own clock.
	Commit(ctx context.Context, sessionID string, c Commit) (Point, error)

	// Points lists the machine's recovery points, oldest first.
	Points(ctx context.Context) ([]Point, error)
	// Point returns one recovery point by its full ID, or ErrNotFound.
	Point(ctx context.Context, id string) (Point, error)

	// Locate says where each blob is stored, in the order asked. A blob
	// the vault does not hold has only its ID set (an empty Pack).
	Locate(ctx context.Context, ids []ID) ([]Location, error)
	// ReadPack returns bytes [off, off+length) of one of the machine's
	// packs. Restores read each needed range of a pack in one call. An
	// unknown pack is ErrNotFound; an invalid name, a negative offset or
	// length, or a range past the pack's end is ErrBadRequest.
	ReadPack(ctx context.Context, pack string, off, length int64) (io.ReadCloser, error)

	// Policy returns the machine's backup policy: its own, else the
	// vault-wide default, else an empty policy with Source PolicyNone.
	// A machine cannot change its policy; an operator sets it.
	Policy(ctx context.Context) (Policy, error)
	// ReportJob records a backup job of the machine, replacing the report
	// of the same job ID. An invalid job (see ValidJob) is ErrBadRequest.
	// The vault keeps the newest MaxJobs jobs of each machine.
	ReportJob(ctx context.Context, j Job) error
	// Jobs lists the machine's jobs, newest (by Started) first.
	Jobs(ctx context.Context) ([]Job, error)
	// DeletedPoints lists the machine's soft-deleted recovery points,
	// oldest first, Deleted set: retention removed them from Points and an
	// operator can restore them until Deleted plus DeleteGrace.
	DeletedPoints(ctx context.Context) ([]Point, error)
}

// Info describes a vault as one machine sees it.
type Info struct {
	VaultID     string `json:"vault_id"`
	MachineID   string `json:"machine_id"`
	MachineName string `json:"machine_name"`
	Version     string `json:"version"`
	Embedded    bool   `json:"embedded"`
}

// KeySlot is an opaque, agent-encrypted wrapping of the machine's keys.
type KeySlot struct {
	ID   string `json:"id"`   // e.g. "passphrase", "recovery-1"; see ValidSlotID
	Data []byte `json:"data"` // encoded by the agent; the vault never reads it; 1 byte to MaxKeySlot
}

// MaxKeySlot is the largest key slot a vault stores.
const MaxKeySlot = 64 << 10

// ValidSlotID reports whether s can name a key slot: 1 to 64 ASCII
// letters, digits, '.', '_' and '-', and not only dots (so that an ID is
// safe in a URL path and a file name).
func ValidSlotID(s string) bool {
	if len(s) == 0 || len(s) > 64 || strings.Trim(s, ".") == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Session is an open backup session.
type Session struct {
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// Pack is one pack to store: its name, bytes and the blobs in it.
type Pack struct {
	Name    string      // hex BLAKE3-256 of Data
	Data    []byte      // the whole pack, trailer included
	Entries []PackEntry // the blobs, as in the trailer
	// Release, if set, is called at most once, when the vault will read
	// Data no more, and before StorePack returns; the caller may reuse
	// Data's memory from then on (else once StorePack returns). The
	// embedded vault calls it once the bytes are written to storage,
	// before it syncs and indexes them, so that a backup need not hold a
	// full pack through that wait. It crosses no wire.
	Release func() `json:"-"`
}

// PackEntry locates one blob inside a pack.
type PackEntry struct {
	ID     ID     `json:"id"`
	Kind   Kind   `json:"kind"`
	Offset uint64 `json:"offset"`
	Length uint32 `json:"length"`
}

// Location is where a blob is stored.
type Location struct {
	ID     ID     `json:"id"`
	Kind   Kind   `json:"kind"`
	Pack   string `json:"pack,omitempty"` // empty: not held
	Offset uint64 `json:"offset"`
	Length uint32 `json:"length"`
}

// Commit is what a backup session commits.
type Commit struct {
	Info     ID    // the point's manifest blob (KindInfo)
	Stats    Stats // figures the vault may show without keys
	Refs     []ID  // every blob the point references, Info included
	OnDemand bool  // started by hand, not by the schedule (for retention)
}

// Stats are a recovery point's figures.
type Stats struct {
	Files      uint64 `json:"files"`
	Dirs       uint64 `json:"dirs"`
	Bytes      uint64 `json:"bytes"`       // plaintext bytes of the files
	BytesRead  uint64 `json:"bytes_read"`  // bytes the agent read
	BytesAdded uint64 `json:"bytes_added"` // stored bytes new in this point
	Blobs      uint64 `json:"blobs"`       // blobs referenced
	Errors     uint64 `json:"errors"`      // entries skipped because of errors
	DurationMS uint64 `json:"duration_ms"`
}

// Point is a committed recovery point.
type Point struct {
	ID      string    `json:"id"`
	Machine string    `json:"machine"`
	Time    time.Time `json:"time"` // the vault's clock, UTC, to the microsecond
	Info    ID        `json:"info"`
	Stats   Stats     `json:"stats"`
	// OnDemand marks a point started by hand (retention's
	// keep-on-demand-days); Deleted, when set, is when retention
	// soft-deleted it (the vault's clock).
	OnDemand bool      `json:"on_demand,omitempty"`
	Deleted  time.Time `json:"deleted,omitzero"`
}
