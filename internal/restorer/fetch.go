package restorer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// need is what the restore does with one blob: the chunks of files it
// fills. Most blobs fill one chunk, held in first without an allocation
// of its own.
type need struct {
	id    vaultapi.ID
	first target   // file nil: no chunk waits for the blob
	more  []target // the chunks after the first
	// taken: a worker has taken the targets and is writing them. A chunk
	// the plan finds needing the blob after that fetches it again (a
	// duplicate chunk seen late; rare, and only that blob is read twice).
	taken bool
}

// needMap holds the needs of a restore's blobs. It is keyed by the first
// 8 bytes of a blob's ID: IDs are keyed hashes, so those are as good as
// the whole for a map, and the map hashes and compares a quarter of the
// bytes (the needs map was 0.2 of a linux restore's CPU-seconds). A blob
// whose key another holds goes to a second map keyed by the whole ID; in
// a restore of 100k blobs that happens about once in 10^10.
type needMap struct {
	m    map[uint64]need
	full map[vaultapi.ID]need
}

func needKey(id vaultapi.ID) uint64 { return binary.LittleEndian.Uint64(id[:8]) }

func (nm *needMap) get(id vaultapi.ID) (need, bool) {
	n, ok := nm.m[needKey(id)]
	if !ok || n.id == id {
		return n, ok
	}
	n, ok = nm.full[id]
	return n, ok
}

func (nm *needMap) set(id vaultapi.ID, n need) {
	if nm.m == nil {
		nm.m = make(map[uint64]need)
	}
	n.id = id
	k := needKey(id)
	if cur, ok := nm.m[k]; !ok || cur.id == id {
		nm.m[k] = n
		return
	}
	if nm.full == nil {
		nm.full = make(map[vaultapi.ID]need)
	}
	nm.full[id] = n
}

// waiting reports whether some chunk waits for the blob.
func (n *need) waiting() bool { return n.first.file != nil }

func (n *need) add(t target) {
	if n.first.file == nil {
		n.first = t
	} else {
		n.more = append(n.more, t)
	}
}

// appendTargets appends the chunks waiting for the blob to dst.
func (n *need) appendTargets(dst []target) []target {
	if n.first.file == nil {
		return dst
	}
	return append(append(dst, n.first), n.more...)
}

// needChunks publishes which chunks of ft still need writing, and sends
// the blobs not yet on their way to the locator. ft.remaining must be
// set first: a worker may write and finish ft before this returns.
func (rs *restore) needChunks(ft *fileTask, have []bool) {
	fresh := rs.freshIDs[:0]
	rs.needMu.Lock()
	for i, c := range ft.node.Chunks {
		if have != nil && have[i] {
			continue
		}
		n, seen := rs.needs.get(c.ID)
		if !seen || n.taken {
			n = need{}
			fresh = append(fresh, c.ID)
		}
		n.add(target{file: ft, chunk: i})
		rs.needs.set(c.ID, n)
	}
	rs.needMu.Unlock()
	for _, id := range fresh {
		rs.loc.add(id)
	}
	rs.freshIDs = fresh
}

// take returns the targets of blob id, appended to dst[:0], and marks
// them as being written.
func (rs *restore) take(id vaultapi.ID, dst []target) []target {
	rs.needMu.Lock()
	defer rs.needMu.Unlock()
	n, _ := rs.needs.get(id)
	rs.needs.set(id, need{taken: true})
	return n.appendTargets(dst[:0])
}

// splitUngrouped splits locs into the blobs that every chunk waiting for
// them is too large to be a group's member, so that each holds its chunk
// alone, and the others. It reuses locs's array for the others.
func (rs *restore) splitUngrouped(locs []vaultapi.Location) (alone, others []vaultapi.Location) {
	rs.needMu.Lock()
	defer rs.needMu.Unlock()
	others = locs[:0]
	for _, l := range locs {
		n, _ := rs.needs.get(l.ID)
		grouped := !n.waiting() || n.first.size() < format.GroupMember
		for _, t := range n.more {
			if t.size() < format.GroupMember {
				grouped = true
				break
			}
		}
		if grouped {
			others = append(others, l)
		} else {
			alone = append(alone, l)
		}
	}
	return alone, others
}

// stillNeeded returns the locations of locs whose blobs some chunk still
// waits for: not those a worker wrote from a group opened for another of
// its chunks, which need not be read again.
func (rs *restore) stillNeeded(locs []vaultapi.Location) []vaultapi.Location {
	rs.needMu.Lock()
	defer rs.needMu.Unlock()
	var out []vaultapi.Location
	for i, l := range locs {
		n, _ := rs.needs.get(l.ID)
		if n.waiting() {
			if out != nil {
				out = append(out, l)
			}
			continue
		}
		if out == nil {
			out = append(make([]vaultapi.Location, 0, len(locs)), locs[:i]...)
		}
	}
	if out == nil {
		return locs
	}
	return out
}

// memberTarget is a chunk to write from member i of an opened group.
type memberTarget struct {
	target
	member int
}

// takeMembers is take for the members of an opened group (ids, in the
// group's order) other than skip, the one it was opened for: under one
// lock, it appends to dst the chunks that wait for each member now, and
// marks those members taken. A member no chunk waits for (not needed, or
// taken already) is left as it is, so the plan can still ask for it.
func (rs *restore) takeMembers(ids []vaultapi.ID, skip vaultapi.ID, dst []memberTarget) []memberTarget {
	rs.needMu.Lock()
	defer rs.needMu.Unlock()
	for i, id := range ids {
		if id == skip {
			continue
		}
		n, ok := rs.needs.get(id)
		if !ok || !n.waiting() {
			continue
		}
		rs.needs.set(id, need{taken: true})
		dst = append(dst, memberTarget{n.first, i})
		for _, t := range n.more {
			dst = append(dst, memberTarget{t, i})
		}
	}
	return dst
}

// fetcher fetches the located blobs. The locator resolves them in
// batches while the plan runs. A blob of a chunk too large for any group
// (doc/FORMAT.md §6.5) is queued at once: it holds that chunk alone, so
// reading it early costs nothing later, and the workers decode it on the
// core the plan leaves free. The other blobs wait until the plan is done
// (or fetchAhead bytes of them are located); then everything located so
// far is grouped by pack and split into pieces, and later batches are
// queued the same way as they come. Workers take pieces in order, so each
// byte of a pack is read once.
type fetcher struct {
	rs      *restore
	workers sync.WaitGroup
	stop    func() bool // stops waking the workers on cancellation
	mu      sync.Mutex
	cnd     *sync.Cond
	// located holds the locations of possible groups found while the
	// fetch has not started; queue the pieces not yet taken; closed
	// means no more come.
	located []vaultapi.Location
	regions map[region]bool // the blobs of located, each once
	bytes   uint64          // the sealed bytes of regions
	started bool
	queue   []packPiece
	closed  bool
	// busy counts the workers writing a piece. While the plan runs, at
	// most planBusy of them do: one core fewer than the process may use,
	// so that the plan, which the rest of the restore waits for, keeps a
	// core of its own.
	busy, planBusy int
}

// region is where a blob is stored; all members of a group share one.
type region struct {
	pack   string
	offset uint64
}

// fetchAhead is how much located data of possible groups (sealed bytes,
// each blob once) starts their fetch before the plan has finished. Until
// then they wait: a group (doc/FORMAT.md §6.5) may hold files far apart
// in the plan's walk (a folder's last files go on gathering with the
// folder above it; points made before groups followed folders mixed all
// the folders being read at once). Once the plan is complete, the
// first worker to open a group writes every chunk of it the restore
// needs, and each group is read and decompressed once (a linux restore
// opened 1,930 groups for 1,576 when fetching each located batch at once,
// and used 12 % more CPU). A plan too large to wait for still starts the
// fetch.
const fetchAhead = 1 << 30

// startFetch starts rs.opts.Workers workers; end them with finish.
func (rs *restore) startFetch() *fetcher {
	f := &fetcher{rs: rs, planBusy: runtime.GOMAXPROCS(0) - 1}
	f.cnd = sync.NewCond(&f.mu)
	f.stop = context.AfterFunc(rs.ctx, func() {
		f.mu.Lock()
		f.cnd.Broadcast()
		f.mu.Unlock()
	})
	for range rs.opts.Workers {
		f.workers.Add(1)
		go func() {
			defer f.workers.Done()
			var buf []byte
			chunks := rs.r.NewChunkOpener()
			chunks.Check = rs.opts.Verify
			for {
				pc, ok := f.next()
				if !ok {
					return
				}
				var err error
				buf, err = rs.fetchPack(pc.pack, pc.locs, buf, chunks)
				if err != nil {
					rs.cancel(err)
				}
				f.done()
			}
		}()
	}
	return f
}

// next waits for a piece; false means there are no more, or the restore
// was cancelled.
func (f *fetcher) next() (packPiece, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for (len(f.queue) == 0 || !f.started && f.busy >= max(1, f.planBusy)) && !f.closed && f.rs.ctx.Err() == nil {
		f.cnd.Wait()
	}
	if f.rs.ctx.Err() != nil || len(f.queue) == 0 {
		return packPiece{}, false
	}
	f.busy++
	pc := f.queue[0]
	f.queue[0] = packPiece{}
	f.queue = f.queue[1:]
	return pc, true
}

// done says a worker has written its piece.
func (f *fetcher) done() {
	f.mu.Lock()
	f.busy--
	f.cnd.Signal()
	f.mu.Unlock()
}

// add queues the pieces of one located batch; blobs the vault does not
// have fail the files that need them.
func (f *fetcher) add(locs []vaultapi.Location) {
	rs := f.rs
	held := locs[:0]
	for _, l := range locs {
		if l.Pack == "" || l.Kind != vaultapi.KindData {
			for _, t := range rs.take(l.ID, nil) {
				rs.failFile(t.file, fmt.Errorf("%w: chunk %s is missing from the vault", vaultapi.ErrDamaged, l.ID.Short()))
			}
			continue
		}
		held = append(held, l)
	}
	// Blobs that no group can hold go now, the others wait for the plan.
	now, wait := rs.splitUngrouped(held)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		f.queue = append(f.queue, pieces(repo.GroupByPack(append(now, wait...)))...)
		f.cnd.Broadcast()
		return
	}
	if len(now) > 0 {
		f.queue = append(f.queue, pieces(repo.GroupByPack(now))...)
		f.cnd.Broadcast()
	}
	if f.regions == nil {
		f.regions = make(map[region]bool)
	}
	f.located = append(f.located, wait...)
	for _, l := range wait {
		r := region{l.Pack, l.Offset}
		if !f.regions[r] {
			f.regions[r] = true
			f.bytes += uint64(l.Length)
		}
	}
	if f.bytes >= fetchAhead {
		f.start()
		f.cnd.Broadcast()
	}
}

// start queues the possible groups located before the fetch started, in
// pack order; f.mu is held.
func (f *fetcher) start() {
	if f.started {
		return
	}
	f.started = true
	f.queue = append(f.queue, pieces(repo.GroupByPack(f.located))...)
	f.located, f.regions, f.bytes = nil, nil, 0
}

// close says no more blobs come: the plan is done, so what waits is
// queued.
func (f *fetcher) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.start()
	f.cnd.Broadcast()
}

// finish waits until every queued piece is written (or the restore is
// cancelled) and returns the error that ended it, if any.
func (f *fetcher) finish() error {
	f.close()
	f.workers.Wait()
	f.stop()
	for _, ft := range f.rs.files {
		if ft.f != nil {
			ft.f.Close()
			ft.f = nil
		}
	}
	return context.Cause(f.rs.ctx)
}

// pieceBytes is the most a piece of work spans in a pack. A pack is
// about 16 MiB; a whole tree's restore has only a few dozen of them, so
// handing out whole packs left one core idle while the last ones were
// written. Each byte is still read once: pieces split a pack's sorted
// blobs, and a piece's blobs are read with as few range reads as before.
const pieceBytes = 4 << 20

type packPiece struct {
	pack string
	locs []vaultapi.Location
}

// pieces splits each pack's blobs (sorted by offset) into runs spanning
// at most pieceBytes (a single larger blob is a piece of its own).
func pieces(packs []string, byPack map[string][]vaultapi.Location) []packPiece {
	var out []packPiece
	for _, p := range packs {
		locs := byPack[p]
		for i := 0; i < len(locs); {
			j := i + 1
			for j < len(locs) && locs[j].Offset+uint64(locs[j].Length)-locs[i].Offset <= pieceBytes {
				j++
			}
			out = append(out, packPiece{pack: p, locs: locs[i:j]})
			i = j
		}
	}
	return out
}

// fetchPack reads the blobs locs of pack p, authenticates each and writes
// it to every chunk that needs it.
//
// A pack that is missing, or shorter than the index says, is damage: the
// files that needed its unread blobs fail, each named, and the restore
// goes on with the others. Any other error (the vault unreachable, a read
// failing) ends the restore.
func (rs *restore) fetchPack(p string, locs []vaultapi.Location, buf []byte, chunks *repo.ChunkOpener) ([]byte, error) {
	locs = rs.stillNeeded(locs)
	done := 0
	var ts []target
	var mts []memberTarget
	var openedIDs []vaultapi.ID // the members of the group opened last, sorted
	var openedAt uint64         // and where it is
	buf, err := rs.r.ReadBlobs(rs.ctx, p, locs, buf, func(l vaultapi.Location, sealed []byte) error {
		done++
		if openedIDs != nil && l.Offset == openedAt {
			if _, ok := slices.BinarySearchFunc(openedIDs, l.ID, vaultapi.ID.Compare); ok {
				// A member of the group opened for an earlier blob: what
				// waited for it then was written then, and what the plan
				// adds later is located (and read) anew.
				return nil
			}
		}
		ts = rs.take(l.ID, ts)
		if len(ts) == 0 {
			return nil
		}
		plain, err := chunks.Open(l, sealed)
		if err != nil {
			for _, t := range ts {
				rs.failFile(t.file, err)
			}
			return nil
		}
		for _, t := range ts {
			rs.write(t, plain)
		}
		// A group just opened: its other chunks that the plan already
		// needs are written now. The plan may have asked for them in
		// other batches (the group's files lie in several folders),
		// which would read and open the group again.
		if ids, members := chunks.Opened(); ids != nil {
			openedIDs, openedAt = ids, l.Offset
			mts = rs.takeMembers(ids, l.ID, mts[:0])
			for _, mt := range mts {
				rs.write(mt.target, members[mt.member])
			}
		}
		return nil
	})
	if err != nil && (errors.Is(err, vaultapi.ErrNotFound) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
		for _, l := range locs[done:] {
			for _, t := range rs.take(l.ID, nil) {
				rs.failFile(t.file, fmt.Errorf("%w: chunk %s: %v", vaultapi.ErrDamaged, l.ID.Short(), err))
			}
		}
		return buf, nil
	}
	return buf, err
}
