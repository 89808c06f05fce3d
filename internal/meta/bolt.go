package meta

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	bolt "go.etcd.io/bbolt"
)

// Bolt is the embedded metadata store, one bbolt file.
//
// Layout: bucket "vault" holds "id"; bucket "names" maps machine name to
// ID; bucket "machines" holds one bucket per machine ID with the
// sub-buckets below, and "packnums" (see bolt_index.go for the blob index
// encoding). The embedded vault closes it with CloseCompact.
type Bolt struct {
	db      *bolt.DB
	id      string
	pending pendingSets // blob entries not yet in the index (bolt_pending.go)
	filters sync.Map    // machine ID → *machineFilter (bolt_filter.go)
}

var (
	bVault    = []byte("vault")
	bNames    = []byte("names")
	bMachines = []byte("machines")
	bInfo     = []byte("info")
	bSlots    = []byte("slots")
	bBlobs    = []byte("blobs")
	bPacks    = []byte("packs")
	bSessions = []byte("sessions")
	bPoints   = []byte("points")
	bRefs     = []byte("refs")
	bRefSets  = []byte("refsets")
)

var machineBuckets = [][]byte{bSlots, bBlobs, bPacks, bSessions, bPoints, bRefs, bRefSets}

// OpenBolt opens (creating if needed) the store in file path. newID makes
// the vault ID on first open.
func OpenBolt(path string, newID func() string) (*Bolt, error) {
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	s := &Bolt{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bVault, bNames, bMachines} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		vb := tx.Bucket(bVault)
		if id := vb.Get([]byte("id")); id != nil {
			s.id = string(id)
			return nil
		}
		s.id = newID()
		return vb.Put([]byte("id"), []byte(s.id))
	})
	if err == nil {
		err = s.loadPending()
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open vault metadata: %w", err)
	}
	return s, nil
}

func (s *Bolt) VaultID() string { return s.id }
func (s *Bolt) Close() error    { return s.db.Close() }

// view runs fn in a read transaction, unless ctx is done.
func (s *Bolt) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vault metadata: %w", err)
	}
	return s.db.View(fn)
}

// update runs fn in a write transaction, unless ctx is done.
func (s *Bolt) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vault metadata: %w", err)
	}
	return s.db.Update(fn)
}

func machineBucket(tx *bolt.Tx, id string) (*bolt.Bucket, error) {
	b := tx.Bucket(bMachines).Bucket([]byte(id))
	if b == nil {
		return nil, fmt.Errorf("machine %q: %w", id, ErrNotFound)
	}
	return b, nil
}

func (s *Bolt) CreateMachine(ctx context.Context, m Machine) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		names := tx.Bucket(bNames)
		if names.Get([]byte(m.Name)) != nil {
			return fmt.Errorf("machine name %q: %w", m.Name, ErrExists)
		}
		mb, err := tx.Bucket(bMachines).CreateBucket([]byte(m.ID))
		if err != nil {
			return fmt.Errorf("machine %q: %w", m.ID, ErrExists)
		}
		for _, b := range machineBuckets {
			if _, err := mb.CreateBucket(b); err != nil {
				return err
			}
		}
		js, _ := json.Marshal(m)
		if err := mb.Put(bInfo, js); err != nil {
			return err
		}
		return names.Put([]byte(m.Name), []byte(m.ID))
	})
}

func (s *Bolt) Machine(ctx context.Context, id string) (Machine, error) {
	var m Machine
	err := s.view(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, id)
		if err != nil {
			return err
		}
		return json.Unmarshal(mb.Get(bInfo), &m)
	})
	return m, err
}

func (s *Bolt) MachineByName(ctx context.Context, name string) (Machine, error) {
	var id string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bNames).Get([]byte(name))
		if v == nil {
			return fmt.Errorf("machine name %q: %w", name, ErrNotFound)
		}
		id = string(v)
		return nil
	})
	if err != nil {
		return Machine{}, err
	}
	return s.Machine(ctx, id)
}

func (s *Bolt) Machines(ctx context.Context) ([]Machine, error) {
	var out []Machine
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bMachines).ForEachBucket(func(k []byte) error {
			var m Machine
			if err := json.Unmarshal(tx.Bucket(bMachines).Bucket(k).Get(bInfo), &m); err != nil {
				return err
			}
			out = append(out, m)
			return nil
		})
	})
	return out, err
}

func (s *Bolt) KeySlots(ctx context.Context, machine string) ([]vaultapi.KeySlot, error) {
	var out []vaultapi.KeySlot
	err := s.view(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		return mb.Bucket(bSlots).ForEach(func(k, v []byte) error {
			out = append(out, vaultapi.KeySlot{ID: string(k), Data: slices.Clone(v)})
			return nil
		})
	})
	return out, err
}

func (s *Bolt) PutKeySlot(ctx context.Context, machine string, ks vaultapi.KeySlot) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		return mb.Bucket(bSlots).Put([]byte(ks.ID), ks.Data)
	})
}

func packKey(name string) ([]byte, error) {
	k, err := hex.DecodeString(name)
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("pack name %q is not 64 hex digits", name)
	}
	return k, nil
}

// AddPack records a pack and its blobs. The blobs not yet known wait as
// pending entries (bolt_pending.go) until they enter the index.
func (s *Bolt) AddPack(ctx context.Context, machine string, p PackRecord, entries []vaultapi.PackEntry) error {
	pk, err := packKey(p.Name)
	if err != nil {
		return err
	}
	s.pending.mu.Lock()
	defer s.pending.mu.Unlock()
	cur := s.pending.of(machine)
	var next pendingSet
	err = s.update(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		num, err := packNumber(mb, pk)
		if err != nil {
			return err
		}
		// In ID order; the sort is stable, so of two entries with one ID
		// the first wins, as does a blob already known. One cursor for all
		// the lookups spares an allocation each.
		known := mb.Bucket(bBlobs).Cursor()
		add := make([]pendingEntry, 0, len(entries))
		for _, i := range byID(entries, func(e *vaultapi.PackEntry) *vaultapi.ID { return &e.ID }) {
			e := &entries[i]
			if n := len(add); n > 0 && add[n-1].id == e.ID {
				continue
			}
			if _, ok := cur.find(e.ID); ok {
				continue
			}
			if k, _ := known.Seek(e.ID[:]); bytes.Equal(k, e.ID[:]) {
				continue
			}
			add = append(add, pendingEntry{id: e.ID, num: num, kind: e.Kind, off: e.Offset, length: e.Length})
		}
		s.filterAdd(machine, add) // before the commit: see bolt_filter.go
		next = cur.with(add)
		if len(next) >= pendingMax {
			if err := mergePending(mb, next); err != nil {
				return err
			}
			next = nil
		} else if len(add) > 0 {
			pb, err := mb.CreateBucketIfNotExists(bPending)
			if err != nil {
				return err
			}
			pb.FillPercent = 1 // pack numbers only ever grow
			if err := pb.Put(packNumKey(num), appendPending(nil, add)); err != nil {
				return err
			}
		}
		js, _ := json.Marshal(packRec{PackRecord: p, Num: num})
		return mb.Bucket(bPacks).Put(pk, js)
	})
	if err == nil {
		s.pending.publish(machine, next)
	}
	return err
}

// byID returns the indices of xs in the order of their IDs; of equal IDs,
// the earlier comes first.
func byID[T any](xs []T, id func(*T) *vaultapi.ID) []int {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if c := bytes.Compare(id(&xs[a])[:], id(&xs[b])[:]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return idx
}

func (s *Bolt) HasPack(ctx context.Context, machine, name string) (bool, error) {
	pk, err := packKey(name)
	if err != nil {
		return false, nil
	}
	var ok bool
	err = s.view(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		ok = mb.Bucket(bPacks).Get(pk) != nil
		return nil
	})
	return ok, err
}

func (s *Bolt) Pack(ctx context.Context, machine, name string) (PackRecord, error) {
	var p PackRecord
	pk, err := packKey(name)
	if err != nil {
		return p, fmt.Errorf("pack %q: %w", name, ErrNotFound)
	}
	err = s.view(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		v := mb.Bucket(bPacks).Get(pk)
		if v == nil {
			return fmt.Errorf("pack %s: %w", name, ErrNotFound)
		}
		return json.Unmarshal(v, &p)
	})
	return p, err
}

func (s *Bolt) HasBlobs(ctx context.Context, machine string, ids []vaultapi.ID) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vault metadata: %w", err)
	}
	out := make([]bool, len(ids))
	ask := ids // the IDs the filter cannot rule out, or all
	var at []int
	if f := s.filterFor(machine); f != nil {
		ask, at = nil, nil
		for i := range ids {
			if f.mayHave(&ids[i]) {
				ask, at = append(ask, ids[i]), append(at, i)
			}
		}
		if len(ask) == 0 {
			return out, nil
		}
	}
	pend := s.pending.of(machine) // before the transaction: see bolt_pending.go
	err := s.view(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		c := mb.Bucket(bBlobs).Cursor()
		for _, j := range byID(ask, func(id *vaultapi.ID) *vaultapi.ID { return id }) {
			i := j
			if at != nil {
				i = at[j]
			}
			k, _ := c.Seek(ids[i][:])
			out[i] = bytes.Equal(k, ids[i][:])
			if !out[i] {
				_, out[i] = pend.find(ids[i])
			}
		}
		return nil
	})
	return out, err
}

func (s *Bolt) Locate(ctx context.Context, machine string, ids []vaultapi.ID) ([]vaultapi.Location, error) {
	out := make([]vaultapi.Location, len(ids))
	pend := s.pending.of(machine) // before the transaction: see bolt_pending.go
	err := s.view(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		blobs := mb.Bucket(bBlobs)
		names := newPackNames(mb)
		// One cursor for all: Get makes a new cursor, with its own
		// search stack, for each key.
		c := blobs.Cursor()
		for i, id := range ids {
			out[i].ID = id
			var e pendingEntry
			var legacy []byte // the raw pack name of an entry made before pack numbers
			if k, v := c.Seek(id[:]); v != nil && bytes.Equal(k, id[:]) {
				if e.num, legacy, e.kind, e.off, e.length, err = decodeLoc(v); err != nil {
					return fmt.Errorf("blob %s: %w", id, err)
				}
			} else if p, ok := pend.find(id); ok {
				e = *p
			} else {
				continue
			}
			if legacy != nil {
				out[i].Pack = hex.EncodeToString(legacy)
			} else if out[i].Pack, err = names.name(e.num); err != nil {
				return fmt.Errorf("blob %s: %w", id, err)
			}
			out[i].Kind, out[i].Offset, out[i].Length = e.kind, e.off, e.length
		}
		return nil
	})
	return out, err
}

func (s *Bolt) PutSession(ctx context.Context, machine string, ss vaultapi.Session) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		js, _ := json.Marshal(ss)
		return mb.Bucket(bSessions).Put([]byte(ss.ID), js)
	})
}

func (s *Bolt) Session(ctx context.Context, machine, id string) (vaultapi.Session, error) {
	var ss vaultapi.Session
	err := s.view(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		v := mb.Bucket(bSessions).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("session %q: %w", id, ErrNotFound)
		}
		return json.Unmarshal(v, &ss)
	})
	return ss, err
}

func (s *Bolt) DeleteSession(ctx context.Context, machine, id string) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		return mb.Bucket(bSessions).Delete([]byte(id))
	})
}

// AddPoint records a recovery point. Its blobs may still be pending
// (bolt_pending.go): they stay so, and enter the index when enough wait.
func (s *Bolt) AddPoint(ctx context.Context, machine string, p vaultapi.Point, refs []vaultapi.ID) error {
	// No pack is added meanwhile, so pend and the transaction's index
	// together hold every blob stored so far.
	s.pending.mu.Lock()
	defer s.pending.mu.Unlock()
	pend := s.pending.of(machine)
	return s.update(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		blobs := mb.Bucket(bBlobs)
		if !isSortedUnique(refs) {
			refs = sortedUnique(refs)
		}
		rs, err := writableRefs(mb)
		if err != nil {
			return err
		}
		enc, unknown, err := encodeRefs(mb, rs, refs)
		if err != nil {
			return err
		}
		var missing []vaultapi.ID
		c := blobs.Cursor()
		for _, id := range unknown {
			if _, ok := pend.find(id); ok {
				continue
			}
			if k, _ := c.Seek(id[:]); !bytes.Equal(k, id[:]) {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return &vaultapi.MissingBlobsError{IDs: missing}
		}
		if mb.Bucket(bPoints).Get([]byte(p.ID)) != nil {
			return fmt.Errorf("point %s: %w", p.ID, ErrExists)
		}
		js, _ := json.Marshal(p)
		if err := mb.Bucket(bPoints).Put([]byte(p.ID), js); err != nil {
			return err
		}
		if err := putRefs(rs, []byte(p.ID), enc, refs); err != nil {
			return err
		}
		return mb.Put(bLatest, []byte(p.ID))
	})
}

func (s *Bolt) Points(ctx context.Context, machine string) ([]vaultapi.Point, error) {
	var out []vaultapi.Point
	err := s.view(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		return mb.Bucket(bPoints).ForEach(func(k, v []byte) error {
			var p vaultapi.Point
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			out = append(out, p)
			return nil
		})
	})
	slices.SortStableFunc(out, func(a, b vaultapi.Point) int { return a.Time.Compare(b.Time) })
	return out, err
}

func (s *Bolt) Point(ctx context.Context, machine, id string) (vaultapi.Point, error) {
	var p vaultapi.Point
	err := s.view(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		v := mb.Bucket(bPoints).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("point %q: %w", id, ErrNotFound)
		}
		return json.Unmarshal(v, &p)
	})
	return p, err
}

func (s *Bolt) PointRefs(ctx context.Context, machine, id string) ([]vaultapi.ID, error) {
	var out []vaultapi.ID
	err := s.view(ctx, func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, machine)
		if err != nil {
			return err
		}
		out, _, err = readRefs(refsOf(mb), []byte(id))
		return err
	})
	return out, err
}

var _ Store = (*Bolt)(nil)
