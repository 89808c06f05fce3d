package restorer

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// TestNeedsTakenThenNeededAgain: a blob whose chunks a worker has taken
// is located and fetched again for a chunk the plan finds after that,
// and a blob not yet taken is asked for once, whatever needs it.
func TestNeedsTakenThenNeededAgain(t *testing.T) {
	x, y := vaultapi.ID{1}, vaultapi.ID{2}
	rs := &restore{loc: &locator{batch: locateFirst}}
	file := func(ids ...vaultapi.ID) *fileTask {
		n := &format.Node{Type: format.TypeFile}
		for _, id := range ids {
			n.Chunks = append(n.Chunks, format.Chunk{ID: id, Size: 1})
		}
		return &fileTask{node: n, remaining: len(ids)}
	}
	a, b, c := file(x, y, x), file(y), file(x)

	rs.needChunks(a, nil)
	rs.needChunks(b, nil)
	if want := []vaultapi.ID{x, y}; !slices.Equal(rs.loc.pending, want) {
		t.Fatalf("located %v, want %v (each blob once)", rs.loc.pending, want)
	}
	got := rs.take(x, nil)
	if want := []target{{a, 0}, {a, 2}}; !slices.Equal(got, want) {
		t.Fatalf("take(x) = %v, want %v", got, want)
	}
	if again := rs.take(x, nil); len(again) != 0 {
		t.Fatalf("x taken twice: %v", again)
	}
	rs.needChunks(c, nil) // x is needed again after it was taken
	if want := []vaultapi.ID{x, y, x}; !slices.Equal(rs.loc.pending, want) {
		t.Fatalf("located %v, want %v (x again)", rs.loc.pending, want)
	}
	if got, want := rs.take(x, nil), []target{{c, 0}}; !slices.Equal(got, want) {
		t.Fatalf("second take(x) = %v, want %v", got, want)
	}
	if got, want := rs.take(y, nil), []target{{a, 1}, {b, 0}}; !slices.Equal(got, want) {
		t.Fatalf("take(y) = %v, want %v", got, want)
	}
}

// TestTakeMembers: a group's other chunks are taken only if the plan
// needs them now, and a member that is not needed is not marked, so the
// plan can still ask for it later.
func TestTakeMembers(t *testing.T) {
	x, y, z := vaultapi.ID{1}, vaultapi.ID{2}, vaultapi.ID{3}
	rs := &restore{loc: &locator{batch: locateFirst}}
	chunks := []format.Chunk{{ID: x, Size: 1}, {ID: z, Size: 1}}
	a := &fileTask{node: &format.Node{Type: format.TypeFile, Chunks: chunks}, remaining: 2}
	b := &fileTask{node: &format.Node{Type: format.TypeFile, Chunks: chunks[:1]}, remaining: 1}
	rs.needChunks(a, nil)
	rs.needChunks(b, nil)
	lx, ly := vaultapi.Location{ID: x, Offset: 8}, vaultapi.Location{ID: y, Offset: 8}
	if got := rs.stillNeeded([]vaultapi.Location{ly, lx}); len(got) != 1 || got[0] != lx {
		t.Fatalf("stillNeeded before x is written: %v, want x only", got)
	}
	// The group [x y z] was opened for z: x is written to both files, y
	// is needed by none.
	got := rs.takeMembers([]vaultapi.ID{x, y, z}, z, nil)
	want := []memberTarget{{target{a, 0}, 0}, {target{b, 0}, 0}}
	if !slices.Equal(got, want) {
		t.Fatalf("takeMembers = %v, want %v", got, want)
	}
	if _, ok := rs.needs.get(y); ok {
		t.Fatal("takeMembers marked a member no chunk needs")
	}
	if n, _ := rs.needs.get(z); !n.waiting() {
		t.Fatal("takeMembers took the member the group was opened for")
	}
	if got := rs.stillNeeded([]vaultapi.Location{lx}); len(got) != 0 {
		t.Fatalf("stillNeeded after x is written: %v, want none (no read)", got)
	}
	if got := rs.takeMembers([]vaultapi.ID{x}, z, nil); got != nil {
		t.Fatalf("x taken twice: %v", got)
	}
	if got := rs.take(x, nil); len(got) != 0 {
		t.Fatalf("take after takeMembers: %v", got)
	}
}

// TestFetchWaitsForThePlan: located blobs that may be groups are not
// fetched while the plan runs, unless fetchAhead bytes of them are
// located (each blob once, however many members it holds); then they are
// queued in pack order, batches merged, and later batches queued as they
// come.
func TestFetchWaitsForThePlan(t *testing.T) {
	ctx := t.Context()
	rs := &restore{ctx: ctx}
	f := &fetcher{rs: rs}
	f.cnd = sync.NewCond(&f.mu)
	at := func(pack string, off uint64, n uint32) vaultapi.Location {
		return vaultapi.Location{ID: vaultapi.ID{byte(off), byte(off >> 8), byte(off >> 16), byte(off >> 24), byte(n)}, Kind: vaultapi.KindData, Pack: pack, Offset: off, Length: n}
	}
	f.add([]vaultapi.Location{at("b", 100, 10), at("a", 50, 10)})
	f.add([]vaultapi.Location{at("a", 8, 10), at("b", 8, 10)})
	if f.started || len(f.queue) != 0 {
		t.Fatalf("fetch started before the plan ended: %d pieces", len(f.queue))
	}
	f.close()
	var got []packPiece
	for {
		pc, ok := f.next()
		if !ok {
			break
		}
		got = append(got, pc)
	}
	if len(got) != 2 || got[0].pack != "a" || got[1].pack != "b" ||
		got[0].locs[0].Offset != 8 || got[0].locs[1].Offset != 50 || got[1].locs[0].Offset != 8 {
		t.Fatalf("pieces %+v, want pack a (8, 50) then b (8, 100)", got)
	}

	big := &fetcher{rs: rs}
	big.cnd = sync.NewCond(&big.mu)
	big.add([]vaultapi.Location{at("c", 8, 1<<29)})
	if big.started {
		t.Fatal("started before fetchAhead bytes were located")
	}
	// Members of one group share its region: located again and again,
	// it still counts once.
	member := at("c", 8, 1<<29)
	for i := range 4 {
		member.ID[31] = byte(i + 1)
		big.add([]vaultapi.Location{member})
	}
	if big.started {
		t.Fatal("a group's members counted once each towards fetchAhead")
	}
	big.add([]vaultapi.Location{at("c", 8+1<<29, 1<<29)})
	if !big.started || len(big.queue) == 0 {
		t.Fatal("fetchAhead bytes located and the fetch not started")
	}
	big.add([]vaultapi.Location{at("d", 8, 10)})
	if last := big.queue[len(big.queue)-1]; last.pack != "d" {
		t.Fatalf("a batch after the start is not queued: last piece %+v", last)
	}
}

// TestFetchLargeChunksAtOnce: a blob whose chunks are all too large for
// any group is queued as soon as it is located, while the plan runs; a
// blob that any chunk of group size waits for waits for the plan.
func TestFetchLargeChunksAtOnce(t *testing.T) {
	rs := &restore{ctx: t.Context(), loc: &locator{batch: locateFirst}}
	large, small, both := vaultapi.ID{1}, vaultapi.ID{2}, vaultapi.ID{3}
	file := func(chunks ...format.Chunk) *fileTask {
		return &fileTask{node: &format.Node{Type: format.TypeFile, Chunks: chunks}, remaining: len(chunks)}
	}
	rs.needChunks(file(format.Chunk{ID: large, Size: format.GroupMember}, format.Chunk{ID: small, Size: format.GroupMember - 1}), nil)
	rs.needChunks(file(format.Chunk{ID: both, Size: 1 << 20}), nil)
	rs.needChunks(file(format.Chunk{ID: both, Size: 100}), nil) // the tree says otherwise: trust neither
	f := &fetcher{rs: rs}
	f.cnd = sync.NewCond(&f.mu)
	f.add([]vaultapi.Location{
		{ID: large, Kind: vaultapi.KindData, Pack: "p", Offset: 8, Length: 1000},
		{ID: small, Kind: vaultapi.KindData, Pack: "p", Offset: 1008, Length: 100},
		{ID: both, Kind: vaultapi.KindData, Pack: "p", Offset: 1108, Length: 100},
	})
	if f.started {
		t.Fatal("the fetch of possible groups started before the plan ended")
	}
	if len(f.queue) != 1 || len(f.queue[0].locs) != 1 || f.queue[0].locs[0].ID != large {
		t.Fatalf("queued during the plan: %+v, want the large chunk's blob alone", f.queue)
	}
	if len(f.located) != 2 {
		t.Fatalf("waiting: %+v, want the small chunk's and the shared one's blobs", f.located)
	}
	f.close()
	if len(f.queue) != 2 || len(f.queue[1].locs) != 2 {
		t.Fatalf("after the plan: %+v, want the large blob's piece, then the other two", f.queue)
	}
}

// TestFetchLeavesThePlanACore: while the plan runs, no more than planBusy
// workers write at once; once it is done, all do.
func TestFetchLeavesThePlanACore(t *testing.T) {
	rs := &restore{ctx: t.Context()}
	f := &fetcher{rs: rs, planBusy: 1}
	f.cnd = sync.NewCond(&f.mu)
	for i := range 3 {
		f.queue = append(f.queue, packPiece{pack: string(rune('a' + i))})
	}
	if pc, ok := f.next(); !ok || pc.pack != "a" {
		t.Fatalf("first piece: %+v, %v", pc, ok)
	}
	got := make(chan string)
	go func() {
		pc, _ := f.next()
		got <- pc.pack
	}()
	select {
	case p := <-got:
		t.Fatalf("a second worker took piece %q while the plan runs", p)
	case <-time.After(50 * time.Millisecond):
	}
	f.done()
	if p := <-got; p != "b" {
		t.Fatalf("after the first piece was done: %q, want b", p)
	}
	f.close() // the plan is done: the third piece is taken with b still busy
	if pc, ok := f.next(); !ok || pc.pack != "c" {
		t.Fatalf("after the plan: %+v, %v, want c", pc, ok)
	}
}

// TestNeedMapCollision: two blobs whose IDs share the 8 bytes the map is
// keyed by keep needs of their own, and a third with that key is absent.
func TestNeedMapCollision(t *testing.T) {
	a, b, c := vaultapi.ID{1, 2, 3, 4, 5, 6, 7, 8, 9}, vaultapi.ID{1, 2, 3, 4, 5, 6, 7, 8, 10}, vaultapi.ID{1, 2, 3, 4, 5, 6, 7, 8, 11}
	fa, fb := &fileTask{}, &fileTask{}
	var nm needMap
	nm.set(a, need{first: target{fa, 0}})
	nm.set(b, need{first: target{fb, 1}})
	if n, ok := nm.get(a); !ok || n.first.file != fa {
		t.Fatalf("a: %v, %v", n, ok)
	}
	if n, ok := nm.get(b); !ok || n.first.file != fb || n.first.chunk != 1 {
		t.Fatalf("b: %v, %v", n, ok)
	}
	if _, ok := nm.get(c); ok {
		t.Fatal("c found, never set")
	}
	nm.set(b, need{taken: true})
	if n, _ := nm.get(b); !n.taken || n.waiting() {
		t.Fatalf("b after taking: %v", n)
	}
	if n, _ := nm.get(a); n.taken || n.first.file != fa {
		t.Fatalf("a changed when b was taken: %v", n)
	}
}
