package meta_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	bolt "go.etcd.io/bbolt"
)

// randomPack returns a pack record and n entries with random IDs, tiled as
// in a pack.
func randomPack(r *rand.Rand, n int) (meta.PackRecord, []vaultapi.PackEntry) {
	es := make([]vaultapi.PackEntry, n)
	off := uint64(8)
	for i := range es {
		for j := 0; j < 32; j += 8 {
			binary.LittleEndian.PutUint64(es[i].ID[j:], r.Uint64())
		}
		es[i].Kind = vaultapi.KindData
		es[i].Offset = off
		es[i].Length = 100 + uint32(r.IntN(5000))
		off += uint64(es[i].Length)
	}
	var name [32]byte
	for j := 0; j < 32; j += 8 {
		binary.LittleEndian.PutUint64(name[j:], r.Uint64())
	}
	return meta.PackRecord{Name: hex.EncodeToString(name[:]), Size: int64(off) + 45*int64(n) + 8, Blobs: n}, es
}

// vaultState is what a machine's metadata reads back as.
type vaultState struct {
	packs map[string]meta.PackRecord
	locs  []vaultapi.Location
	refs  []vaultapi.ID
}

func readState(t *testing.T, s *meta.Bolt, machine string, packs []meta.PackRecord, ids []vaultapi.ID) vaultState {
	t.Helper()
	ctx := context.Background()
	st := vaultState{packs: map[string]meta.PackRecord{}}
	for _, p := range packs {
		got, err := s.Pack(ctx, machine, p.Name)
		if err != nil {
			t.Fatalf("Pack(%s): %v", p.Name[:8], err)
		}
		st.packs[p.Name] = got
	}
	var err error
	if st.locs, err = s.Locate(ctx, machine, ids); err != nil {
		t.Fatalf("Locate: %v", err)
	}
	if st.refs, err = s.PointRefs(ctx, machine, "p1"); err != nil {
		t.Fatalf("PointRefs: %v", err)
	}
	return st
}

func checkState(t *testing.T, what string, got, want vaultState) {
	t.Helper()
	if len(got.packs) != len(want.packs) || len(got.locs) != len(want.locs) || len(got.refs) != len(want.refs) {
		t.Fatalf("%s: got %d packs, %d locations, %d refs; want %d, %d, %d", what,
			len(got.packs), len(got.locs), len(got.refs), len(want.packs), len(want.locs), len(want.refs))
	}
	for k, v := range want.packs {
		if got.packs[k] != v {
			t.Fatalf("%s: pack %s: got %+v, want %+v", what, k[:8], got.packs[k], v)
		}
	}
	for i := range want.locs {
		if got.locs[i] != want.locs[i] {
			t.Fatalf("%s: location %d: got %+v, want %+v", what, i, got.locs[i], want.locs[i])
		}
	}
	for i := range want.refs {
		if got.refs[i] != want.refs[i] {
			t.Fatalf("%s: ref %d: got %s, want %s", what, i, got.refs[i], want.refs[i])
		}
	}
}

// fillStore indexes packs of random blobs, as a large first backup does,
// and commits a point referencing them all.
func fillStore(t *testing.T, s *meta.Bolt, r *rand.Rand, packs, perPack int) ([]meta.PackRecord, []vaultapi.ID, []vaultapi.PackEntry) {
	t.Helper()
	recs, ids, all := addPacks(t, s, r, packs, perPack)
	p := vaultapi.Point{ID: "p1", Machine: "m", Time: time.Unix(100, 0).UTC(), Info: ids[0]}
	if err := s.AddPoint(context.Background(), "m", p, ids); err != nil {
		t.Fatal(err)
	}
	return recs, ids, all
}

// addPacks makes machine "m" and stores packs of random blobs for it.
func addPacks(t *testing.T, s *meta.Bolt, r *rand.Rand, packs, perPack int) ([]meta.PackRecord, []vaultapi.ID, []vaultapi.PackEntry) {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateMachine(ctx, meta.Machine{ID: "m", Name: "m", Created: time.Unix(0, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
	var recs []meta.PackRecord
	var ids []vaultapi.ID
	var all []vaultapi.PackEntry
	for range packs {
		rec, es := randomPack(r, perPack)
		if err := s.AddPack(ctx, "m", rec, es); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
		all = append(all, es...)
		for _, e := range es {
			ids = append(ids, e.ID)
		}
	}
	return recs, ids, all
}

// closeStat closes s with CloseCompact and returns what its file at path
// was before and after.
func closeStat(t *testing.T, s *meta.Bolt, path string) (before, after os.FileInfo) {
	t.Helper()
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CloseCompact(); err != nil {
		t.Fatal(err)
	}
	if after, err = os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return before, after
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestBoltCloseCompact fills the index the way a backup does, merging the
// pending entries every thousand blobs, which leaves much of the file
// free, and has CloseCompact copy files a quarter free: it shrinks the
// file, and everything reads back the same, pack numbers keep counting,
// and new packs go in.
func TestBoltCloseCompact(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	path := filepath.Join(t.TempDir(), "meta.db")
	defer meta.SetPendingMax(1000)()
	defer meta.SetCompactFraction(4)()
	s := openBolt(t, path)
	recs, ids, _ := fillStore(t, s, r, 20, 2000)
	want := readState(t, s, "m", recs, ids)
	before := fileSize(t, path)
	if err := s.CloseCompact(); err != nil {
		t.Fatalf("CloseCompact: %v", err)
	}
	after := fileSize(t, path)
	t.Logf("file %d -> %d bytes for %d blobs", before, after, len(ids))
	if after*3 > before*2 {
		t.Fatalf("CloseCompact: file %d -> %d bytes; want it at most two thirds", before, after)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("CloseCompact left its temporary file: %v", err)
	}

	s = openBolt(t, path)
	checkState(t, "after compaction", readState(t, s, "m", recs, ids), want)
	rec, es := randomPack(r, 10)
	if err := s.AddPack(ctx, "m", rec, es); err != nil {
		t.Fatal(err)
	}
	locs, err := s.Locate(ctx, "m", []vaultapi.ID{es[3].ID, ids[5]})
	if err != nil || locs[0].Pack != rec.Name || locs[0].Offset != es[3].Offset || locs[1] != want.locs[5] {
		t.Fatalf("Locate after compaction and a new pack: got %+v, %v", locs, err)
	}
	// Too few free pages for a copy: the file is not rewritten, only the
	// room bbolt grew it by past its last page is cut off.
	fiBefore, fiAfter := closeStat(t, s, path)
	if !os.SameFile(fiBefore, fiAfter) {
		t.Fatalf("CloseCompact of a nearly compact file rewrote it")
	}
	if size, got := fiBefore.Size(), fiAfter.Size(); got > size {
		t.Fatalf("CloseCompact of a nearly compact file: size %d -> %d, want at most %d", size, got, size)
	}
	s = openBolt(t, path)
	defer s.Close()
	locs, err = s.Locate(ctx, "m", []vaultapi.ID{es[3].ID, ids[5]})
	if err != nil || locs[0].Pack != rec.Name || locs[1] != want.locs[5] {
		t.Fatalf("Locate after the file was cut to its last page: got %+v, %v", locs, err)
	}
}

// TestBoltCloseKeepsReusablePages: blobs stored the way a backup stores
// them, merged into the index every 12,000, leave between a quarter and
// half of the file free, pages the next backup reuses. CloseCompact keeps
// such a file (no copy at the end of a first backup) and cuts off only the
// room past its last page.
func TestBoltCloseKeepsReusablePages(t *testing.T) {
	defer meta.SetPendingMax(12000)()
	path := filepath.Join(t.TempDir(), "meta.db")
	s := openBolt(t, path)
	_, ids, _ := addPacks(t, s, rand.New(rand.NewPCG(1, 2)), 20, 2000)
	free, slack, used, err := s.Waste()
	if err != nil {
		t.Fatal(err)
	}
	if free*4 < used || free*2 >= used {
		t.Fatalf("the fill left %d of %d bytes free; the test needs between a quarter and a half", free, used)
	}
	before, after := closeStat(t, s, path)
	if !os.SameFile(before, after) || after.Size() != used || slack == 0 {
		t.Fatalf("close of a file %d%% free: rewritten %v, size %d -> %d (slack %d); want it kept and cut to %d",
			100*free/used, !os.SameFile(before, after), before.Size(), after.Size(), slack, used)
	}
	s = openBolt(t, path)
	defer s.Close()
	has, err := s.HasBlobs(context.Background(), "m", ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, ok := range has {
		if !ok {
			t.Fatalf("blob %d of %d lost after the close", i, len(ids))
		}
	}
}

// TestBoltOpenAfterCompaction opens the store while another handle holds
// it and compacts it on close: the waiting open must end up on the new
// file at the path, not on the replaced one.
func TestBoltOpenAfterCompaction(t *testing.T) {
	ctx := context.Background()
	defer meta.SetPendingMax(1000)()
	defer meta.SetCompactFraction(4)()
	r := rand.New(rand.NewPCG(3, 4))
	path := filepath.Join(t.TempDir(), "meta.db")
	s := openBolt(t, path)
	fillStore(t, s, r, 10, 2000)
	opened := make(chan *meta.Bolt, 1)
	go func() {
		s2, err := meta.OpenBolt(path, newID())
		if err != nil {
			t.Errorf("OpenBolt while held: %v", err)
		}
		opened <- s2
	}()
	time.Sleep(300 * time.Millisecond) // let it wait for the lock
	before := fileSize(t, path)
	if err := s.CloseCompact(); err != nil {
		t.Fatal(err)
	}
	if fileSize(t, path) >= before {
		t.Fatalf("CloseCompact did not compact (%d bytes); the test needs it to", before)
	}
	s2 := <-opened
	if s2 == nil {
		t.FailNow()
	}
	if err := s2.CreateMachine(ctx, meta.Machine{ID: "m2", Name: "m2", Created: time.Unix(0, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	s3 := openBolt(t, path)
	defer s3.Close()
	if _, err := s3.Machine(ctx, "m2"); err != nil {
		t.Fatalf("machine created by the store opened during compaction: %v (it wrote to the replaced file)", err)
	}
}

// TestBoltLegacyIndex reads a vault whose blob index and pack records
// predate pack numbers (45-byte values naming the pack), and adds to it.
func TestBoltLegacyIndex(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	path := filepath.Join(t.TempDir(), "meta.db")
	s := openBolt(t, path)
	recs, ids, all := fillStore(t, s, r, 3, 50)
	want := readState(t, s, "m", recs, ids)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	legacyIndex(t, path, "m", all, recs)

	s = openBolt(t, path)
	defer s.Close()
	checkState(t, "legacy index", readState(t, s, "m", recs, ids), want)
	// A pack added to a legacy vault gets a number; old and new both read.
	rec, es := randomPack(r, 10)
	if err := s.AddPack(ctx, "m", rec, es); err != nil {
		t.Fatal(err)
	}
	locs, err := s.Locate(ctx, "m", []vaultapi.ID{es[0].ID, ids[7]})
	if err != nil || locs[0].Pack != rec.Name || locs[0].Length != es[0].Length || locs[1] != want.locs[7] {
		t.Fatalf("Locate in a legacy vault after a new pack: got %+v, %v", locs, err)
	}
	if has, err := s.HasBlobs(ctx, "m", []vaultapi.ID{ids[0], es[9].ID}); err != nil || !has[0] || !has[1] {
		t.Fatalf("HasBlobs in a legacy vault: got %v, %v", has, err)
	}
}

// legacyIndex rewrites a store's machine as Coffer wrote it before pack
// numbers: 45-byte blob index values, pack records without a number, no
// "packnums" bucket.
func legacyIndex(t *testing.T, path, machine string, es []vaultapi.PackEntry, recs []meta.PackRecord) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		mb := tx.Bucket([]byte("machines")).Bucket([]byte(machine))
		blobs := mb.Bucket([]byte("blobs"))
		per := len(es) / len(recs)
		for i, e := range es {
			pk, _ := hex.DecodeString(recs[i/per].Name)
			v := append(pk, byte(e.Kind))
			v = binary.LittleEndian.AppendUint64(v, e.Offset)
			v = binary.LittleEndian.AppendUint32(v, e.Length)
			if err := blobs.Put(e.ID[:], v); err != nil {
				return err
			}
		}
		for _, rec := range recs {
			pk, _ := hex.DecodeString(rec.Name)
			js := []byte(`{"name":"` + rec.Name + `","size":` + strconv.FormatInt(rec.Size, 10) + `,"blobs":` + strconv.Itoa(rec.Blobs) + `}`)
			if err := mb.Bucket([]byte("packs")).Put(pk, js); err != nil {
				return err
			}
		}
		return mb.DeleteBucket([]byte("packnums"))
	})
	if err != nil {
		t.Fatal(err)
	}
}
