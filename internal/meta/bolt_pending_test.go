package meta

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	bolt "go.etcd.io/bbolt"
)

func pendingID(seq, i uint64) vaultapi.ID {
	var id vaultapi.ID
	binary.LittleEndian.PutUint64(id[:], seq*0x9e3779b97f4a7c15^i*0xbf58476d1ce4e5b9)
	binary.LittleEndian.PutUint64(id[8:], seq)
	binary.LittleEndian.PutUint64(id[16:], i)
	return id
}

func pendingPackName(seq uint64) string {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[:], seq+1)
	binary.LittleEndian.PutUint64(b[24:], (seq+1)*0x9e3779b97f4a7c15)
	return hex.EncodeToString(b[:])
}

// pendingPack returns n entries of pack seq with distinct IDs.
func pendingPack(seq uint64, n int) []vaultapi.PackEntry {
	es := make([]vaultapi.PackEntry, n)
	for i := range es {
		es[i] = vaultapi.PackEntry{ID: pendingID(seq, uint64(i)), Kind: vaultapi.KindData, Offset: 8 + uint64(i)*100, Length: 100}
	}
	return es
}

func openPendingStore(t *testing.T, path string, create bool) *Bolt {
	t.Helper()
	s, err := OpenBolt(path, func() string { return "v" })
	if err != nil {
		t.Fatal(err)
	}
	if create {
		if err := s.CreateMachine(context.Background(), Machine{ID: "m", Name: "m", Created: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func addPack(t *testing.T, s *Bolt, seq uint64, es []vaultapi.PackEntry) {
	t.Helper()
	if err := s.AddPack(context.Background(), "m", PackRecord{Name: pendingPackName(seq), Size: 1 << 20, Blobs: len(es)}, es); err != nil {
		t.Fatalf("AddPack %d: %v", seq, err)
	}
}

// indexState reports how many entries the blob index and bucket
// "pending" of machine m hold.
func indexState(t *testing.T, s *Bolt) (indexed, pendingPacks int) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		mb, err := machineBucket(tx, "m")
		if err != nil {
			return err
		}
		indexed = mb.Bucket(bBlobs).Stats().KeyN
		if pb := mb.Bucket(bPending); pb != nil {
			pendingPacks = pb.Stats().KeyN
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return indexed, pendingPacks
}

// checkLocated checks that every ID of want is found at its location,
// and that absent is not.
func checkLocated(t *testing.T, s *Bolt, want map[vaultapi.ID]vaultapi.Location, absent vaultapi.ID) {
	t.Helper()
	ctx := context.Background()
	ids := []vaultapi.ID{absent}
	for id := range want {
		ids = append(ids, id)
	}
	has, err := s.HasBlobs(ctx, "m", ids)
	if err != nil {
		t.Fatal(err)
	}
	locs, err := s.Locate(ctx, "m", ids)
	if err != nil {
		t.Fatal(err)
	}
	if has[0] || locs[0].Pack != "" {
		t.Errorf("absent blob: HasBlobs %v, Locate %+v; want not found", has[0], locs[0])
	}
	for i, id := range ids[1:] {
		if !has[i+1] {
			t.Errorf("HasBlobs(%s) = false, want true", id.Short())
		}
		if got := locs[i+1]; got != want[id] {
			t.Errorf("Locate(%s) = %+v, want %+v", id.Short(), got, want[id])
		}
	}
	var all []vaultapi.ID
	if err := s.ForEachBlob(ctx, "m", func(id vaultapi.ID) error { all = append(all, id); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(all, func(a, b vaultapi.ID) int { return bytes.Compare(a[:], b[:]) }) || len(all) != len(want) {
		t.Errorf("ForEachBlob gave %d IDs (sorted: %v), want %d in order", len(all),
			slices.IsSortedFunc(all, func(a, b vaultapi.ID) int { return bytes.Compare(a[:], b[:]) }), len(want))
	}
}

func TestPendingLifecycle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "meta.db")
	s := openPendingStore(t, path, true)
	want := map[vaultapi.ID]vaultapi.Location{}
	for seq := range uint64(3) {
		es := pendingPack(seq, 50)
		if seq == 2 {
			es = append(es, es[3])      // twice in one pack: the first wins
			es[10].ID = pendingID(0, 7) // also in pack 0, which wins
			es = append(es, vaultapi.PackEntry{ID: es[4].ID, Kind: vaultapi.KindData, Offset: 1, Length: 1})
		}
		addPack(t, s, seq, es)
		for _, e := range es {
			if _, ok := want[e.ID]; !ok {
				want[e.ID] = vaultapi.Location{ID: e.ID, Pack: pendingPackName(seq), Kind: e.Kind, Offset: e.Offset, Length: e.Length}
			}
		}
	}
	absent := pendingID(99, 0)
	if n, p := indexState(t, s); n != 0 || p != 3 {
		t.Fatalf("before the commit: %d indexed, %d packs pending; want 0 and 3", n, p)
	}
	checkLocated(t, s, want, absent)

	// Pending entries outlive the process.
	s.Close()
	s = openPendingStore(t, path, false)
	checkLocated(t, s, want, absent)

	refs := slices.Collect(func(yield func(vaultapi.ID) bool) {
		for id := range want {
			if !yield(id) {
				return
			}
		}
	})
	// A point that references pending blobs commits; they stay pending.
	if err := s.AddPoint(ctx, "m", vaultapi.Point{ID: "p1", Machine: "m", Info: refs[0]}, refs); err != nil {
		t.Fatal(err)
	}
	if n, p := indexState(t, s); n != 0 || p != 3 {
		t.Fatalf("after the commit: %d indexed, %d packs pending; want 0 and 3", n, p)
	}
	checkLocated(t, s, want, absent)
	// One it does not hold is refused, naming just that blob.
	err := s.AddPoint(ctx, "m", vaultapi.Point{ID: "p2", Machine: "m", Info: refs[0]}, append(slices.Clone(refs), absent))
	var me *vaultapi.MissingBlobsError
	if !errors.As(err, &me) || len(me.IDs) != 1 || me.IDs[0] != absent {
		t.Fatalf("a point with a blob neither indexed nor pending: %v, want it missing alone", err)
	}
	s.Close()
	s = openPendingStore(t, path, false)
	defer s.Close()
	checkLocated(t, s, want, absent)
	if got := s.pending.of("m"); len(got) != len(want) {
		t.Errorf("after the commit and a reopen, %d entries pending in memory, want %d", len(got), len(want))
	}
}

func TestPendingMergeAtMax(t *testing.T) {
	defer func(n int) { pendingMax = n }(pendingMax)
	pendingMax = 100
	s := openPendingStore(t, filepath.Join(t.TempDir(), "meta.db"), true)
	defer s.Close()
	want := map[vaultapi.ID]vaultapi.Location{}
	add := func(seq uint64, n int) {
		es := pendingPack(seq, n)
		addPack(t, s, seq, es)
		for _, e := range es {
			want[e.ID] = vaultapi.Location{ID: e.ID, Pack: pendingPackName(seq), Kind: e.Kind, Offset: e.Offset, Length: e.Length}
		}
	}
	add(0, 60)
	if n, p := indexState(t, s); n != 0 || p != 1 {
		t.Fatalf("60 entries: %d indexed, %d packs pending; want 0 and 1", n, p)
	}
	add(1, 60) // 120 >= 100: all enter the index
	if n, p := indexState(t, s); n != 120 || p != 0 {
		t.Fatalf("120 entries: %d indexed, %d packs pending; want 120 and 0", n, p)
	}
	add(2, 30)
	if n, p := indexState(t, s); n != 120 || p != 1 {
		t.Fatalf("150 entries: %d indexed, %d packs pending; want 120 and 1", n, p)
	}
	checkLocated(t, s, want, pendingID(99, 0))
}

// TestPendingConcurrentReaders: a blob whose AddPack returned is found by
// every later lookup, while other packs are added and merges run.
func TestPendingConcurrentReaders(t *testing.T) {
	defer func(n int) { pendingMax = n }(pendingMax)
	pendingMax = 64
	ctx := context.Background()
	s := openPendingStore(t, filepath.Join(t.TempDir(), "meta.db"), true)
	defer s.Close()
	var stored atomic.Uint64 // packs 0..stored-1 are stored
	var wg sync.WaitGroup
	var failed atomic.Bool
	stop := make(chan struct{})
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := uint64(r); ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				n := stored.Load()
				if n == 0 {
					continue
				}
				id := pendingID(k%n, k%20)
				locs, err := s.Locate(ctx, "m", []vaultapi.ID{id})
				has, herr := s.HasBlobs(ctx, "m", []vaultapi.ID{id})
				if err != nil || herr != nil || locs[0].Pack != pendingPackName(k%n) || !has[0] {
					t.Errorf("blob %d/%d of a stored pack: Locate %+v %v, HasBlobs %v %v", k%n, k%20, locs[0], err, has, herr)
					failed.Store(true)
					return
				}
			}
		}()
	}
	for seq := range uint64(40) {
		addPack(t, s, seq, pendingPack(seq, 20))
		stored.Store(seq + 1)
		if seq%7 == 6 {
			id := pendingID(seq, 0)
			if err := s.AddPoint(ctx, "m", vaultapi.Point{ID: "p" + string(rune('a'+seq)), Machine: "m", Info: id}, []vaultapi.ID{id}); err != nil {
				t.Fatal(err)
			}
		}
		if failed.Load() {
			break
		}
	}
	close(stop)
	wg.Wait()
}

func TestPendingDamagedRefusesOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	s := openPendingStore(t, path, true)
	addPack(t, s, 0, pendingPack(0, 5))
	err := s.db.Update(func(tx *bolt.Tx) error {
		mb, _ := machineBucket(tx, "m")
		return mb.Bucket(bPending).Put(packNumKey(1), []byte("short"))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := OpenBolt(path, func() string { return "v" }); !errors.Is(err, errIndex) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("open with a damaged pending entry: got %v, want errIndex", err)
	}
}

// FuzzDecodePending: any value either fails with errIndex or decodes to
// entries that encode back to it.
func FuzzDecodePending(f *testing.F) {
	es := []pendingEntry{{id: pendingID(1, 2), kind: vaultapi.KindData, off: 8, length: 4096},
		{id: pendingID(3, 4), kind: vaultapi.KindTree, off: 1 << 40, length: 1<<32 - 1}}
	f.Add(appendPending(nil, es))
	f.Add(appendPending(nil, es[:1])[:40])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		got, err := decodePending(nil, 5, v)
		if err != nil {
			if !errors.Is(err, errIndex) {
				t.Fatalf("decodePending(%x): error %v, want errIndex", v, err)
			}
			return
		}
		for _, e := range got {
			if e.num != 5 {
				t.Fatalf("decodePending: pack number %d, want 5", e.num)
			}
		}
		// Varints may be written longer than needed: re-encoding is at
		// most as long and decodes to the same entries.
		w := appendPending(nil, got)
		again, err := decodePending(nil, 5, w)
		if err != nil || !slices.Equal(again, got) || len(w) > len(v) {
			t.Fatalf("decodePending(%x) = %+v; re-encoded %x gives %+v, %v", v, got, w, again, err)
		}
	})
}
