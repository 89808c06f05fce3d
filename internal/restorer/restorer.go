// Package restorer restores a recovery point, or parts of it, into a
// target directory. It plans from the point's trees, then fetches each
// needed pack range once, in pack order, with several workers; every blob
// is authenticated and checked against its ID before a byte is written.
//
// Everything the point holds comes back as it was: contents (sparse files
// with their holes), types (FIFOs and device nodes as root), modes with
// setuid bits, owners (by name, else by number), nanosecond times,
// extended attributes and POSIX ACLs, and hard links as links. Directory
// metadata is set last, deepest first, so that writing contents does not
// disturb directory times. On Linux a file the restore creates gets its
// mode, and its owner, from the creation itself where the umask and the
// directory's setgid bit and default ACL make that exact; only the rest
// is set afterwards.
//
// On Linux every file-system call is relative to an open directory and
// never follows a symlink, so paths of any depth restore and nothing is
// ever written outside the target, even if the target already holds
// symlinks. An entry already in the target with the stored size and mtime
// is taken as complete and correct; a file of the right size is compared
// chunk by chunk and only differing chunks are written, so a restore over
// an existing tree, or the re-run of an interrupted one, rewrites only
// what differs.
package restorer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Matcher selects entries by their path in the point, relative to its
// top, without a leading slash (package exclude provides one).
type Matcher interface {
	Match(rel string, isDir bool) bool
}

// IfExists says what to do with an entry already in the target that
// differs from the one restored. Entries found identical are never
// rewritten, whatever the choice.
type IfExists int

const (
	// Overwrite replaces the entry (the default). A file of the right size
	// is updated in place, chunk by chunk. A directory is never removed.
	Overwrite IfExists = iota
	// Skip keeps the entry as it is.
	Skip
	// Rename keeps the entry and restores beside it, under the name with
	// ".restored" (or ".restored.N") appended.
	Rename
)

// ParseIfExists parses "overwrite", "skip" or "rename".
func ParseIfExists(s string) (IfExists, error) {
	switch s {
	case "overwrite", "":
		return Overwrite, nil
	case "skip":
		return Skip, nil
	case "rename":
		return Rename, nil
	}
	return 0, fmt.Errorf("if-exists: %q is not overwrite, skip or rename", s)
}

// Options of a restore.
type Options struct {
	Target string // directory restored into; created if missing
	// Paths, if any, are absolute paths inside the point to restore
	// (a file or a directory each); empty means everything.
	Paths []string
	// Include, if set, restores only entries it matches (with everything
	// under a matched directory); Exclude leaves out what it matches.
	Include, Exclude Matcher
	IfExists         IfExists
	Owners           bool // set owners (needs root)
	NumericOwner     bool // owners by stored number, not by name
	NoXattrs         bool // leave out extended attributes and ACLs
	// Verify hashes every chunk against its ID before writing it, as
	// coffer verify does. Without it a chunk is still authenticated,
	// which binds it to its ID (doc/FORMAT.md §5); the hash also catches
	// a writer that sealed other bytes than it hashed.
	Verify bool
	// DryRun writes nothing; List is told what would be done.
	DryRun bool
	// List, if set, is told of each entry and what is done with it.
	List    func(Action)
	Workers int // default 2×GOMAXPROCS
	// Report, if set, is told of each entry that could not be restored,
	// from several goroutines at once.
	Report func(Problem)
	// Progress, if set, is called about every ProgressEvery.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Action is what a restore does (or, with DryRun, would do) with one
// entry: create, update (changed chunks rewritten), replace, unchanged,
// skip (exists, kept), rename (restored beside under Path), link (a hard
// link to an entry restored before).
type Action struct {
	Path string
	Type format.NodeType
	Do   string
}

// Problem is an entry that could not be restored fully.
type Problem struct {
	Path string
	Err  error
}

// Progress counters.
type Progress struct {
	Files, Dirs       uint64
	Bytes, TotalBytes uint64
	FilesDone, Errors uint64
	Elapsed           time.Duration
}

// Result of a restore.
type Result struct {
	Files, Dirs, Links, Others uint64
	HardLinks                  uint64
	Unchanged, Skipped         uint64
	Bytes                      uint64
	Problems                   uint64
}

// ErrUnsafeName refuses an entry whose name would escape the target.
var ErrUnsafeName = errors.New("unsafe name in recovery point")

// CheckName refuses a stored name that is not a single, safe path element.
func CheckName(name []byte) error {
	switch {
	case len(name) == 0:
		return fmt.Errorf("%w: empty name", ErrUnsafeName)
	case string(name) == "." || string(name) == "..":
		return fmt.Errorf("%w: %q", ErrUnsafeName, name)
	case bytes.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%w: %q contains a slash or NUL", ErrUnsafeName, name)
	case runtime.GOOS == "windows" && bytes.ContainsAny(name, `\:`):
		return fmt.Errorf("%w: %q contains a backslash or colon", ErrUnsafeName, name)
	}
	return nil
}

type fileTask struct {
	dir    *rdir
	name   string
	path   string
	node   *format.Node
	layout *format.Layout
	fresh  bool // none in the target: created exclusively, so holes and zero chunks need no writing

	mu        sync.Mutex
	f         *outFile
	remaining int
	failed    bool
	created   bool // opened for writing (created, if fresh) by this restore
	sized     bool // created at its full size: zero pieces can stay holes
}

// target is one chunk of one file.
type target struct {
	file  *fileTask
	chunk int
}

func (t target) size() uint32 { return t.file.node.Chunks[t.chunk].Size }

type restore struct {
	ctx    context.Context
	r      *repo.Repo
	opts   Options
	root   *rdir
	cache  *dirCache
	owners *owners
	priv   bool
	cr     *creator

	cancel context.CancelCauseFunc // ends the restore (plan and fetch) with an error

	dirs  []*rdir
	files []*fileTask
	// needs says which chunks each blob fills; the plan adds to it while
	// the fetch workers take from it.
	needMu    sync.Mutex
	needs     needMap
	freshIDs  []vaultapi.ID // the plan's scratch
	loc       *locator      // finds the needed blobs while the plan runs (nil in a dry run)
	mk        *mkdirer      // makes the plan's folders while it runs (nil otherwise)
	leaders   map[uint64]*leader
	followers []follower

	res Result // the counts below are added by result
	// Counts that progress reports read while the plan and fetch run.
	bytesDone, filesDone, probs     atomic.Uint64
	planFiles, planDirs, totalBytes atomic.Uint64
}

// Restore restores the tree root (a point's root tree) per opts.
func Restore(ctx context.Context, r *repo.Repo, root vaultapi.ID, opts Options) (Result, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.Report == nil {
		opts.Report = func(Problem) {}
	}
	if opts.List == nil {
		opts.List = func(Action) {}
	}
	tgt, err := filepath.Abs(opts.Target)
	if err != nil {
		return Result{}, err
	}
	opts.Target = tgt
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rs := &restore{ctx: ctx, cancel: cancel, r: r, opts: opts,
		leaders: make(map[uint64]*leader), owners: newOwners(opts.NumericOwner), priv: privileged(),
		cr: newCreator()}
	rs.root = &rdir{path: tgt}
	if _, err := os.Stat(tgt); err == nil || !opts.DryRun {
		if err := os.MkdirAll(tgt, 0o700); err != nil {
			return Result{}, fmt.Errorf("restore target: %w", err)
		}
		h, err := openTarget(tgt)
		if err != nil {
			return Result{}, fmt.Errorf("restore target: %w", err)
		}
		rs.root.ready = true
		rs.cache = newDirCache(rs.root, h)
		defer rs.cache.close()
	}
	start := time.Now()
	stop := rs.progressLoop(start)
	defer stop()
	if opts.DryRun {
		err := rs.plan(root)
		return rs.result(), err
	}
	// Locating starts with the plan: blobs are located in batches as the
	// plan first needs them, and the fetcher queues each batch (see
	// fetcher for which blobs it fetches before the plan is done).
	f := rs.startFetch()
	rs.loc = newLocator(ctx, r.Vault, f.add)
	rs.mk = newMkdirer(rs)
	rs.cache.mk = rs.mk
	err = rs.plan(root)
	rs.mk.finish()
	rs.mk = nil // later folders (those of hard links) are made at once
	if lerr := rs.loc.wait(); err == nil {
		err = lerr
	}
	if err != nil {
		cancel(err)
	}
	if ferr := f.finish(); err == nil {
		err = ferr
	}
	if err != nil {
		return rs.result(), err
	}
	for _, f := range rs.files {
		if f.remaining != 0 && !f.failed {
			return rs.result(), fmt.Errorf("restore %s: %d chunk(s) were never written", f.path, f.remaining)
		}
	}
	rs.linkFollowers()
	// Directories last, deepest first, so their times stay as stored (and
	// a folder made read-only still lets its entries be set); the folders
	// of one depth at once.
	slices.SortStableFunc(rs.dirs, func(a, b *rdir) int { return b.depth - a.depth })
	for i := 0; i < len(rs.dirs); {
		j := i + 1
		for j < len(rs.dirs) && rs.dirs[j].depth == rs.dirs[i].depth {
			j++
		}
		rs.setDirsMeta(rs.dirs[i:j])
		i = j
	}
	return rs.result(), nil
}

// setDirsMeta sets the metadata of dirs, with one goroutine per core.
func (rs *restore) setDirsMeta(dirs []*rdir) {
	var next atomic.Int64
	work := func() {
		for i := next.Add(1) - 1; i < int64(len(dirs)); i = next.Add(1) - 1 {
			if d := dirs[i]; d.meta && d.ready && d.mkErr == nil {
				if err := rs.setMeta(d.parent, d.name, d.node); err != nil {
					rs.problem(d.path, err)
				}
			}
		}
	}
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(dirs)/16) - 1 { // small levels: this goroutine alone
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// result is rs.res with the counts kept in atomics.
func (rs *restore) result() Result {
	res := rs.res
	res.Files, res.Dirs = rs.planFiles.Load(), rs.planDirs.Load()
	res.Bytes, res.Problems = rs.bytesDone.Load(), rs.probs.Load()
	return res
}

func (rs *restore) problem(path string, err error) {
	rs.probs.Add(1)
	rs.opts.Report(Problem{Path: path, Err: err})
}

func (rs *restore) list(path string, t format.NodeType, do string) {
	rs.opts.List(Action{Path: path, Type: t, Do: do})
}

func (rs *restore) metaOpts(n *format.Node) metaOpts {
	m := metaOpts{owners: rs.opts.Owners, xattrs: !rs.opts.NoXattrs, privileged: rs.priv}
	if m.owners {
		m.uid, m.gid = rs.owners.ids(n)
	}
	return m
}

// setMeta sets n's metadata on the entry name of d.
func (rs *restore) setMeta(d *rdir, name string, n *format.Node) error {
	h, rel, err := rs.cache.get(d)
	if err != nil {
		return err
	}
	defer rel.release()
	return setMetaAt(h, name, n, rs.metaOpts(n))
}

func (rs *restore) progressLoop(start time.Time) func() {
	if rs.opts.Progress == nil {
		return func() {}
	}
	every := rs.opts.ProgressEvery
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	report := func() {
		rs.opts.Progress(Progress{Files: rs.planFiles.Load(), Dirs: rs.planDirs.Load(), Bytes: rs.bytesDone.Load(),
			TotalBytes: rs.totalBytes.Load(), FilesDone: rs.filesDone.Load(), Errors: rs.probs.Load(), Elapsed: time.Since(start)})
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				report()
				return
			case <-t.C:
				report()
			}
		}
	}()
	return sync.OnceFunc(func() { close(done); wg.Wait() })
}

func findNode(t *format.Tree, name string) *format.Node {
	i, ok := slices.BinarySearchFunc(t.Nodes, name, func(n format.Node, s string) int {
		return strings.Compare(string(n.Name), s)
	})
	if !ok {
		return nil
	}
	return &t.Nodes[i]
}

// write puts one chunk's bytes into its file and finishes the file after
// its last chunk.
func (rs *restore) write(t target, data []byte) {
	ft := t.file
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.failed {
		return
	}
	if ft.f == nil {
		if err := rs.openTask(ft); err != nil {
			rs.fail(ft, err)
			return
		}
	}
	if len(data) != int(ft.node.Chunks[t.chunk].Size) {
		rs.fail(ft, fmt.Errorf("%w: chunk %d has %d bytes, the tree says %d", vaultapi.ErrDamaged, t.chunk, len(data), ft.node.Chunks[t.chunk].Size))
		return
	}
	var ps [2]format.Piece
	for _, p := range ft.layout.AppendChunkPieces(ps[:0], t.chunk) {
		b := data[p.ChunkOff : p.ChunkOff+p.Len]
		if ft.sized && allZero(b) {
			continue // a hole already
		}
		if _, err := ft.f.WriteAt(b, int64(p.FileOff)); err != nil {
			rs.fail(ft, err)
			return
		}
	}
	rs.bytesDone.Add(uint64(len(data)))
	ft.remaining--
	if ft.remaining > 0 {
		return
	}
	err := ft.f.finish(ft.node)
	ft.f = nil
	if err != nil {
		rs.problem(ft.path, err)
	}
	rs.filesDone.Add(1)
}

// openTask opens a file for writing; a fresh one is created empty and
// sized, so that what is not written stays a hole, and where possible
// with its final mode and owner (see creator).
func (rs *restore) openTask(ft *fileTask) error {
	h, rel, err := rs.cache.get(ft.dir)
	if err != nil {
		return err
	}
	defer rel.release()
	f, err := rs.cr.create(h, &ft.dir.info, ft.name, ft.fresh, ft.node, rs.metaOpts(ft.node))
	if err != nil {
		return err
	}
	ft.created = true
	// Sizing the file first keeps skipped zero pieces as holes; a dense
	// file of one chunk is written whole by its one write.
	if ft.fresh && ft.node.Size > 0 && (len(ft.node.Chunks) > 1 || ft.layout.Sparse()) {
		if err := f.Truncate(int64(ft.node.Size)); err != nil {
			f.Close()
			return err
		}
		ft.sized = true
	}
	ft.f = f
	return nil
}

// finishNow completes a file that needs no chunk written.
func (rs *restore) finishNow(ft *fileTask) {
	if ft.fresh {
		if err := rs.openTask(ft); err != nil {
			rs.fail(ft, err)
			return
		}
		err := ft.f.finish(ft.node)
		ft.f = nil
		rs.filesDone.Add(1)
		if err != nil {
			rs.problem(ft.path, err)
		}
		return
	}
	rs.filesDone.Add(1)
	if err := rs.setMeta(ft.dir, ft.name, ft.node); err != nil {
		rs.problem(ft.path, err)
	}
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (rs *restore) failFile(ft *fileTask, err error) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	rs.fail(ft, err)
}

// fail gives up on ft (its lock held) and reports why. A file this
// restore created is removed, so that no partly written file is left
// under the stored name to pass for a restored one; a file updated in
// place stays as it is, reported.
func (rs *restore) fail(ft *fileTask, err error) {
	if ft.failed {
		return
	}
	ft.failed = true
	if ft.f != nil {
		ft.f.Close()
		ft.f = nil
	}
	if ft.created && ft.fresh {
		h, rel, herr := rs.cache.get(ft.dir)
		if herr == nil {
			herr = removeAt(h, ft.name)
			rel.release()
		}
		if herr == nil {
			err = fmt.Errorf("%w (the incomplete file was removed)", err)
		} else {
			err = fmt.Errorf("%w (the incomplete file is still there: %v)", err, herr)
		}
	}
	rs.problem(ft.path, err)
}
