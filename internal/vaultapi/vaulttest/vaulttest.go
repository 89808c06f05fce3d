package vaulttest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Harness makes vaults for the suite.
type Harness struct {
	// New returns a fresh, empty vault with two registered machines and
	// the contract as each of them sees it. It registers its own cleanup
	// with t. The suite calls it once per subtest, one subtest at a time.
	New func(t *testing.T) Env
}

// Env is one fresh vault as the suite sees it.
type Env struct {
	// A and B are the contract as two different machines of the same
	// vault see it: for a transport, two clients with the two machines'
	// credentials.
	A, B vaultapi.Vault
	// Now reads the vault's clock; Advance moves it forward. The vault
	// must take all its times (point stamps, session leases) from this
	// clock. Clock does both for an in-process vault core.
	Now     func() time.Time
	Advance func(d time.Duration)

	// Operator actions, as the vault's operator does them (the operator
	// surface of a server, or the vault core of an embedded vault). The
	// machine is named by its Info; a zero Info means the vault-wide
	// default. Errors wrap the sentinels of vaultapi.
	SetPolicy func(machine vaultapi.Info, s policy.Spec) error
	Undelete  func(machine vaultapi.Info, pointID string) error
}

// Clock is a settable clock, safe for concurrent use. Give Now to the
// vault core and Now and Advance to the Env.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Start is where NewClock(time.Time{}) starts: a time far from when the
// suite runs, so a vault that stamps points with the real time fails.
var Start = time.Date(2031, 5, 17, 9, 30, 0, 123456789, time.UTC)

// NewClock returns a clock at start, or at Start if start is zero.
func NewClock(start time.Time) *Clock {
	if start.IsZero() {
		start = Start
	}
	return &Clock{t: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Run runs the conformance suite; each subtest gets a fresh vault.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(f *fixture)
	}{
		{"Info", testInfo},
		{"KeySlots", testKeySlots},
		{"KeySlotsRefused", testKeySlotsRefused},
		{"Sessions", testSessions},
		{"SessionExpiry", testSessionExpiry},
		{"SessionUnknown", testSessionUnknown},
		{"HasBlobsBatch", testHasBlobsBatch},
		{"StorePack", testStorePack},
		{"StorePackGroups", testStorePackGroups},
		{"StorePackIdempotent", testStorePackIdempotent},
		{"StorePackRelease", testStorePackRelease},
		{"StorePackRefused", testStorePackRefused},
		{"StorePackConcurrent", testStorePackConcurrent},
		{"Locate", testLocate},
		{"ReadPack", testReadPack},
		{"LargePack", testLargePack},
		{"ReadPackRefused", testReadPackRefused},
		{"Commit", testCommit},
		{"CommitMissing", testCommitMissing},
		{"CommitWithoutInfo", testCommitWithoutInfo},
		{"CommitConcurrent", testCommitConcurrent},
		{"Points", testPoints},
		{"DedupAcrossBackups", testDedupAcrossBackups},
		{"Isolation", testIsolation},
		{"IsolationSessions", testIsolationSessions},
		{"IsolationSamePack", testIsolationSamePack},
		{"CancelledContext", testCancelledContext},
		{"Policy", testPolicy},
		{"PolicyRefused", testPolicyRefused},
		{"Jobs", testJobs},
		{"JobsRefused", testJobsRefused},
		{"RetentionSoftDelete", testRetentionSoftDelete},
		{"OnDemand", testOnDemand},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(newFixture(t, h.New(t)))
		})
	}
}

// fixture is one subtest's vault and random source, and the blobs it made.
type fixture struct {
	t   *testing.T
	ctx context.Context
	Env
	r *rand.Rand
}

func newFixture(t *testing.T, env Env) *fixture {
	t.Helper()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	return &fixture{t: t, ctx: context.Background(), Env: env, r: rand.New(rand.NewPCG(seed, seed>>1|1))}
}

func (f *fixture) id() vaultapi.ID {
	var id vaultapi.ID
	for i := 0; i < len(id); i += 8 {
		v := f.r.Uint64()
		for j := range 8 {
			id[i+j] = byte(v >> (8 * j))
		}
	}
	return id
}

func (f *fixture) ids(n int) []vaultapi.ID {
	out := make([]vaultapi.ID, n)
	for i := range out {
		out[i] = f.id()
	}
	return out
}

func (f *fixture) bytes(n int) []byte {
	var seed [32]byte
	for i := 0; i < len(seed); i += 8 {
		binary.LittleEndian.PutUint64(seed[i:], f.r.Uint64())
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

// pack builds a pack of n random blobs of the kind, each 1 byte to maxLen
// bytes long. The vault never opens a blob, so blob bytes and IDs are
// arbitrary.
func (f *fixture) pack(kind vaultapi.Kind, n, maxLen int) vaultapi.Pack {
	w := pack.NewWriter(nil)
	for range n {
		w.Add(kind, f.id(), f.bytes(1+f.r.IntN(maxLen)))
	}
	return w.Finish()
}

// packOf builds a pack holding blobs of the given IDs.
func (f *fixture) packOf(kind vaultapi.Kind, ids []vaultapi.ID) vaultapi.Pack {
	w := pack.NewWriter(nil)
	for _, id := range ids {
		w.Add(kind, id, f.bytes(1+f.r.IntN(300)))
	}
	return w.Finish()
}

func packIDs(p vaultapi.Pack) []vaultapi.ID {
	ids := make([]vaultapi.ID, len(p.Entries))
	for i, e := range p.Entries {
		ids[i] = e.ID
	}
	return ids
}

func (f *fixture) begin(v vaultapi.Vault) vaultapi.Session {
	f.t.Helper()
	s, err := v.BeginBackup(f.ctx)
	if err != nil {
		f.t.Fatalf("BeginBackup: %v", err)
	}
	if s.ID == "" {
		f.t.Fatal("BeginBackup: session has no ID")
	}
	return s
}

func (f *fixture) store(v vaultapi.Vault, sess string, p vaultapi.Pack) {
	f.t.Helper()
	if err := v.StorePack(f.ctx, sess, p); err != nil {
		f.t.Fatalf("StorePack(%s, %d blobs, %d bytes): %v", p.Name[:8], len(p.Entries), len(p.Data), err)
	}
}

// commit commits a point whose manifest is info and fails on error.
func (f *fixture) commit(v vaultapi.Vault, sess string, info vaultapi.ID, refs []vaultapi.ID) vaultapi.Point {
	f.t.Helper()
	c := vaultapi.Commit{Info: info, Refs: refs, Stats: vaultapi.Stats{Files: uint64(len(refs)), Blobs: uint64(len(refs))}}
	p, err := v.Commit(f.ctx, sess, c)
	if err != nil {
		f.t.Fatalf("Commit(%d refs): %v", len(refs), err)
	}
	return p
}

// backup stores packs in a new session and commits a point referencing
// every blob in them; the first blob of the last pack is the manifest.
func (f *fixture) backup(v vaultapi.Vault, packs ...vaultapi.Pack) vaultapi.Point {
	f.t.Helper()
	s := f.begin(v)
	var refs []vaultapi.ID
	for _, p := range packs {
		f.store(v, s.ID, p)
		refs = append(refs, packIDs(p)...)
	}
	return f.commit(v, s.ID, packs[len(packs)-1].Entries[0].ID, refs)
}

func (f *fixture) wantErr(what string, err, want error) {
	f.t.Helper()
	if !errors.Is(err, want) {
		f.t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func (f *fixture) wantHas(v vaultapi.Vault, ids []vaultapi.ID, want []bool) {
	f.t.Helper()
	got, err := v.HasBlobs(f.ctx, ids)
	if err != nil {
		f.t.Fatalf("HasBlobs(%d ids): %v", len(ids), err)
	}
	if len(got) != len(want) {
		f.t.Fatalf("HasBlobs(%d ids): got %d answers, want %d", len(ids), len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			f.t.Fatalf("HasBlobs: id %d (%s): got %v, want %v", i, ids[i].Short(), got[i], want[i])
		}
	}
}

func all(n int, v bool) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// wantStored checks that every blob of p is indexed in p, where the
// trailer says, and reads back exactly its bytes.
func (f *fixture) wantStored(v vaultapi.Vault, p vaultapi.Pack) {
	f.t.Helper()
	ids := packIDs(p)
	f.wantHas(v, ids, all(len(ids), true))
	locs, err := v.Locate(f.ctx, ids)
	if err != nil {
		f.t.Fatalf("Locate(%d ids): %v", len(ids), err)
	}
	if len(locs) != len(ids) {
		f.t.Fatalf("Locate(%d ids): got %d locations", len(ids), len(locs))
	}
	for i, e := range p.Entries {
		want := vaultapi.Location{ID: e.ID, Kind: e.Kind, Pack: p.Name, Offset: e.Offset, Length: e.Length}
		if locs[i] != want {
			f.t.Fatalf("Locate: blob %d: got %+v, want %+v", i, locs[i], want)
		}
	}
	e := p.Entries[f.r.IntN(len(p.Entries))]
	f.wantRead(v, p.Name, int64(e.Offset), int64(e.Length), p.Data[e.Offset:e.Offset+uint64(e.Length)])
}

// wantAbsent checks that no blob of p is visible and p cannot be read.
func (f *fixture) wantAbsent(v vaultapi.Vault, p vaultapi.Pack) {
	f.t.Helper()
	ids := packIDs(p)
	f.wantHas(v, ids, all(len(ids), false))
	locs, err := v.Locate(f.ctx, ids)
	if err != nil {
		f.t.Fatalf("Locate(%d ids): %v", len(ids), err)
	}
	for i, l := range locs {
		if l != (vaultapi.Location{ID: ids[i]}) {
			f.t.Fatalf("Locate of an absent blob %d: got %+v, want only its ID", i, l)
		}
	}
	_, err = v.ReadPack(f.ctx, p.Name, 0, int64(pack.HeaderSize))
	f.wantErr("ReadPack of a pack not stored", err, vaultapi.ErrNotFound)
}

func (f *fixture) read(v vaultapi.Vault, name string, off, length int64) ([]byte, error) {
	rc, err := v.ReadPack(f.ctx, name, off, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var b bytes.Buffer
	if length > 0 && length <= 64<<20 {
		b.Grow(int(length))
	}
	_, err = b.ReadFrom(rc)
	return b.Bytes(), err
}

func (f *fixture) wantRead(v vaultapi.Vault, name string, off, length int64, want []byte) {
	f.t.Helper()
	got, err := f.read(v, name, off, length)
	if err != nil {
		f.t.Fatalf("ReadPack(%s, %d, %d): %v", name[:8], off, length, err)
	}
	if !slices.Equal(got, want) {
		f.t.Fatalf("ReadPack(%s, %d, %d): got %d bytes %.16x…, want %d bytes %.16x…", name[:8], off, length,
			len(got), got, len(want), want)
	}
}

func (f *fixture) points(v vaultapi.Vault) []vaultapi.Point {
	f.t.Helper()
	ps, err := v.Points(f.ctx)
	if err != nil {
		f.t.Fatalf("Points: %v", err)
	}
	return ps
}

func samePoint(a, b vaultapi.Point) bool {
	return a.ID == b.ID && a.Machine == b.Machine && a.Time.Equal(b.Time) && a.Info == b.Info && a.Stats == b.Stats
}

func (f *fixture) wantPoints(v vaultapi.Vault, want ...vaultapi.Point) {
	f.t.Helper()
	got := f.points(v)
	if len(got) != len(want) {
		f.t.Fatalf("Points: got %d, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !samePoint(got[i], want[i]) {
			f.t.Fatalf("Points[%d]: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func sortedIDs(ids []vaultapi.ID) []vaultapi.ID {
	out := slices.Clone(ids)
	slices.SortFunc(out, vaultapi.ID.Compare)
	return slices.Compact(out)
}

// wantMissing checks that err is a *MissingBlobsError naming exactly the
// IDs of want (in any order).
func (f *fixture) wantMissing(what string, err error, want []vaultapi.ID) {
	f.t.Helper()
	var mb *vaultapi.MissingBlobsError
	if !errors.As(err, &mb) {
		f.t.Fatalf("%s: got error %v, want *vaultapi.MissingBlobsError", what, err)
	}
	if g, w := sortedIDs(mb.IDs), sortedIDs(want); !slices.Equal(g, w) {
		f.t.Fatalf("%s: MissingBlobsError names %d blobs, want %d: got %v", what, len(g), len(w), mb)
	}
}
