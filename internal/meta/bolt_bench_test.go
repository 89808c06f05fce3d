package meta_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// benchEntries returns n entries with IDs unique to (seq, i), laid out
// back to back as in a pack of 4 KiB blobs.
func benchEntries(seq uint64, n int) []vaultapi.PackEntry {
	es := make([]vaultapi.PackEntry, n)
	for i := range es {
		binary.LittleEndian.PutUint64(es[i].ID[:], seq)
		binary.LittleEndian.PutUint64(es[i].ID[8:], uint64(i))
		binary.LittleEndian.PutUint64(es[i].ID[16:], seq*0x9e3779b97f4a7c15^uint64(i)) // spread the keys
		es[i].Kind = vaultapi.KindData
		es[i].Offset = 8 + uint64(i)*4096
		es[i].Length = 4096
	}
	return es
}

// addBenchPacks stores packs 0..n-1 of benchEntries(seq, 4000).
func addBenchPacks(b *testing.B, s *meta.Bolt, m string, n uint64) {
	b.Helper()
	for seq := range n {
		es := benchEntries(seq, 4000)
		if err := s.AddPack(context.Background(), m, meta.PackRecord{Name: benchPackName(seq), Size: 1, Blobs: len(es)}, es); err != nil {
			b.Fatal(err)
		}
	}
}

func benchPackName(seq uint64) string {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[:], seq)
	binary.LittleEndian.PutUint64(b[24:], seq*0x9e3779b97f4a7c15)
	return hex.EncodeToString(b[:])
}

func benchStore(b *testing.B) (*meta.Bolt, string) {
	b.Helper()
	s, m := benchStoreAt(b, filepath.Join(b.TempDir(), "meta.db"))
	b.Cleanup(func() { s.Close() })
	return s, m
}

// benchStoreAt opens a store at path with one machine.
func benchStoreAt(b *testing.B, path string) (*meta.Bolt, string) {
	b.Helper()
	s := openBolt(b, path)
	m := meta.Machine{ID: "m", Name: "m", Created: time.Unix(0, 0)}
	if err := s.CreateMachine(context.Background(), m); err != nil {
		b.Fatal(err)
	}
	return s, m.ID
}

// BenchmarkBoltHasBlobs asks for 1000 IDs, half of them stored, in an
// index of 100,000 blobs.
func BenchmarkBoltHasBlobs(b *testing.B) {
	ctx := context.Background()
	s, m := benchStore(b)
	addBenchPacks(b, s, m, 25)
	ids := make([]vaultapi.ID, 1000)
	for i := range ids {
		if i%2 == 0 {
			ids[i] = benchEntries(uint64(i%25), 4000)[i*3].ID
		} else {
			ids[i] = benchEntries(uint64(1000+i), 1)[0].ID
		}
	}
	b.SetBytes(int64(len(ids) * len(vaultapi.ID{})))
	b.ResetTimer()
	for b.Loop() {
		has, err := s.HasBlobs(ctx, m, ids)
		if err != nil || !has[0] || has[1] {
			b.Fatalf("HasBlobs: %v %v", has[:2], err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(ids)), "ns/id")
}

// BenchmarkBoltAddPack indexes packs of 4000 new blobs each (a 16 MiB
// pack of 4 KiB blobs), each in its own durable transaction.
func BenchmarkBoltAddPack(b *testing.B) {
	ctx := context.Background()
	s, m := benchStore(b)
	const n = 4000
	b.SetBytes(n * (32 + 45))
	seq := uint64(0)
	for b.Loop() {
		seq++
		es := benchEntries(seq, n)
		if err := s.AddPack(ctx, m, meta.PackRecord{Name: benchPackName(seq), Size: 1, Blobs: n}, es); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/entry")
}

// BenchmarkBoltCloseCompact compacts, on close, a store whose blob index
// of 80,000 blobs with random IDs was filled one pack of 4000 at a time,
// as a backup does.
func BenchmarkBoltCloseCompact(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	src := filepath.Join(dir, "filled.db")
	s, m := benchStoreAt(b, src)
	r := rand.New(rand.NewPCG(1, 2))
	for seq := range uint64(20) {
		es := benchEntries(seq, 4000)
		for i := range es {
			for j := 0; j < 32; j += 8 {
				binary.LittleEndian.PutUint64(es[i].ID[j:], r.Uint64())
			}
		}
		if err := s.AddPack(ctx, m, meta.PackRecord{Name: benchPackName(seq), Size: 1, Blobs: len(es)}, es); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "meta.db")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		b.StopTimer()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
		s := openBolt(b, path)
		b.StartTimer()
		if err := s.CloseCompact(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if fi, err := os.Stat(path); err != nil || fi.Size() >= int64(len(data)) {
		b.Fatalf("CloseCompact: %d bytes -> %v, %v; want smaller", len(data), fi.Size(), err)
	}
}

// BenchmarkBoltLocate locates 1000 stored blobs of 25 packs in an index of
// 100,000 blobs, as a restore does.
func BenchmarkBoltLocate(b *testing.B) {
	ctx := context.Background()
	s, m := benchStore(b)
	addBenchPacks(b, s, m, 25)
	ids := make([]vaultapi.ID, 1000)
	for i := range ids {
		ids[i] = benchEntries(uint64(i%25), 4000)[i*3].ID
	}
	b.SetBytes(int64(len(ids) * len(vaultapi.ID{})))
	b.ResetTimer()
	for b.Loop() {
		locs, err := s.Locate(ctx, m, ids)
		if err != nil || locs[1].Pack != benchPackName(1) {
			b.Fatalf("Locate: %+v %v", locs[1], err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(ids)), "ns/id")
}

// BenchmarkBoltAddPointUnchanged commits points of 100,000 refs, each the
// set of the point before but for one ID (a backup of an unchanged tree:
// only its manifest is new).
func BenchmarkBoltAddPointUnchanged(b *testing.B) {
	ctx := context.Background()
	s, m := benchStore(b)
	var refs []vaultapi.ID
	for seq := range uint64(25) {
		es := benchEntries(seq, 4000)
		if err := s.AddPack(ctx, m, meta.PackRecord{Name: benchPackName(seq), Size: 1, Blobs: len(es)}, es); err != nil {
			b.Fatal(err)
		}
		for _, e := range es {
			refs = append(refs, e.ID)
		}
	}
	manifests := benchEntries(1000, 4000)
	if err := s.AddPack(ctx, m, meta.PackRecord{Name: benchPackName(1000), Size: 1, Blobs: len(manifests)}, manifests); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(refs) * len(vaultapi.ID{})))
	n := 0
	for b.Loop() {
		n++
		refs[0] = manifests[n%len(manifests)].ID
		sorted := slices.Clone(refs)
		slices.SortFunc(sorted, vaultapi.ID.Compare)
		p := vaultapi.Point{ID: fmt.Sprintf("p%d", n), Machine: m, Time: time.Unix(int64(n), 0)}
		if err := s.AddPoint(ctx, m, p, sorted); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBoltHasBlobsOne asks for one blob at a time in an index of
// 100,000, as a backup's dedup check of each new chunk does.
func BenchmarkBoltHasBlobsOne(b *testing.B) {
	ctx := context.Background()
	s, m := benchStore(b)
	addBenchPacks(b, s, m, 25)
	ids := benchEntries(3, 4000)
	missing := benchEntries(99, 4000)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		id := ids[n%len(ids)].ID
		if n%2 == 0 {
			id = missing[n%len(missing)].ID
		}
		has, err := s.HasBlobs(ctx, m, []vaultapi.ID{id})
		if err != nil || has[0] != (n%2 != 0) {
			b.Fatalf("HasBlobs = %v, %v", has, err)
		}
	}
}

// BenchmarkBoltBackupIndex indexes what a first backup of the linux corpus
// stores: 20 packs of 4000 blobs with random IDs, each pack in its own
// durable transaction, then the recovery point that references them all.
func BenchmarkBoltBackupIndex(b *testing.B) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	packs := make([][]vaultapi.PackEntry, 20)
	var refs []vaultapi.ID
	for seq := range packs {
		es := benchEntries(uint64(seq), 4000)
		for i := range es {
			for j := 0; j < 32; j += 8 {
				binary.LittleEndian.PutUint64(es[i].ID[j:], r.Uint64())
			}
			refs = append(refs, es[i].ID)
		}
		packs[seq] = es
	}
	b.SetBytes(int64(len(refs) * (32 + 45)))
	for b.Loop() {
		b.StopTimer()
		s, m := benchStore(b)
		b.StartTimer()
		for seq, es := range packs {
			if err := s.AddPack(ctx, m, meta.PackRecord{Name: benchPackName(uint64(seq)), Size: 1, Blobs: len(es)}, es); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.AddPoint(ctx, m, vaultapi.Point{ID: "p", Machine: m, Info: refs[0]}, refs); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}
