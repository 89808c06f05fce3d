package vaultapi

import (
	"context"
	"io"
	"time"
)

// Vault is what an agent, acting as one machine, can ask of a vault. The
// machine is implied by the credentials the implementation was opened with;
// nothing here can delete data or reach another machine.
type Vault interface {
	// Info describes the vault and the machine the caller acts as.
	Info(ctx context.Context) (Info, error)

	// KeySlots returns the machine's key slots (opaque to the vault).
	KeySlots(ctx context.Context) ([]KeySlot, error)
	// PutKeySlot stores a key slot, replacing the slot of the same ID. Key
	// slots wrap the machine's keys; replacing one changes no data.
	PutKeySlot(ctx context.Context, s KeySlot) error

	// BeginBackup opens a backup session: a lease, renewed with
	// RenewSession, during which nothing the session may rely on is
	// garbage-collected.
	BeginBackup(ctx context.Context) (Session, error)
	// RenewSession extends the session's lease.
	RenewSession(ctx context.Context, sessionID string) (Session, error)
	// EndSession closes a session without committing (a commit ends it too).
	EndSession(ctx context.Context, sessionID string) error

	// HasBlobs reports, for each ID, whether the machine's vault holds a
	// blob of that ID. Callers batch thousands of IDs per call.
	HasBlobs(ctx context.Context, ids []ID) ([]bool, error)

	// StorePack stores a pack. The name must be the hex BLAKE3-256 of the
	// bytes and the entries must match the pack's trailer; the vault checks
	// both. Storing a pack that is already stored is a no-op.
	StorePack(ctx context.Context, sessionID string, p Pack) error

	// Commit makes a recovery point of the session, atomically. Every
	// referenced blob must be stored, or the commit is refused with a
	// *MissingBlobsError. The vault stamps the time with its own clock.
	Commit(ctx context.Context, sessionID string, c Commit) (Point, error)

	// Points lists the machine's recovery points, oldest first.
	Points(ctx context.Context) ([]Point, error)
	// Point returns one recovery point by its full ID.
	Point(ctx context.Context, id string) (Point, error)

	// Locate says where each blob is stored. A blob the vault does not hold
	// has an empty Pack in its Location.
	Locate(ctx context.Context, ids []ID) ([]Location, error)
	// ReadPack returns bytes [off, off+length) of one of the machine's
	// packs. Restores read each needed range of a pack in one call.
	ReadPack(ctx context.Context, pack string, off, length int64) (io.ReadCloser, error)
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
	ID   string `json:"id"`   // e.g. "passphrase", "recovery-1"
	Data []byte `json:"data"` // encoded by the agent; the vault never reads it
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
	Info  ID    // the point's manifest blob (KindInfo)
	Stats Stats // figures the vault may show without keys
	Refs  []ID  // every blob the point references, Info included
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
	Time    time.Time `json:"time"` // the vault's clock
	Info    ID        `json:"info"`
	Stats   Stats     `json:"stats"`
}
