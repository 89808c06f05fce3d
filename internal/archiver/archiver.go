// Package archiver runs a backup: walk → change detection → read → chunk →
// hash → dedup → compress → encrypt → pack → store → commit. Files are read
// and sealed by a pool of workers; directories become trees as soon as all
// their entries are done; packs upload while the walk goes on; the commit
// of the recovery point is the last, atomic step, so a crash before it
// leaves only unreferenced packs for the next backup to reuse.
package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-backup/coffer/internal/chunker"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Excluder decides which entries are skipped (see package exclude).
type Excluder interface {
	Match(rel string, isDir bool) bool
}

// Options of one backup.
type Options struct {
	Paths         []string // absolute, clean source paths
	Exclude       Excluder // nil: nothing excluded
	ExcludeNames  []string // the patterns, recorded in the manifest
	OneFileSystem bool
	Host          string
	Parent        *vaultapi.Point // previous point of the same paths, for change detection
	// FolderIndex is the folder on this machine where the folder index
	// is kept (see folders.go); "" keeps none, and every folder is
	// compared with the parent point's tree.
	FolderIndex string
	Compression format.Level
	Workers     int              // file workers (read, chunk, compress); default DefaultWorkers()
	Clock       func() time.Time // default time.Now
	Rand        io.Reader        // nonce prefixes; required
	// Report is told of every entry skipped or suspicious; it may be
	// called from several goroutines at once.
	Report func(Problem)
	// Progress, if set, is called about every ProgressEvery with counters.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Problem is an entry that was skipped (Skipped) or stored with a warning.
type Problem struct {
	Path    string
	Err     error
	Skipped bool
}

// Progress counters of a running backup.
type Progress struct {
	Files, Dirs      uint64
	Bytes, BytesRead uint64
	BytesAdded       uint64
	Errors           uint64
	Elapsed          time.Duration
	EstimatedBytes   uint64 // from the parent point; 0 if unknown
}

// Result of a finished backup.
type Result struct {
	Point    vaultapi.Point
	Stats    vaultapi.Stats
	Problems uint64 // entries skipped
	Warnings uint64
}

type run struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	r      *repo.Repo
	opts   Options
	table  *chunker.Table
	sealer *format.Sealer
	names  *idNames
	sess   string

	jobs    chan *fileJob
	walkers chan struct{}  // slots for directories listed concurrently
	listers sync.WaitGroup // directories being listed in their own goroutines
	packer  *packer

	// ids holds every blob ID the run met, flagged idClaimed once a
	// storeBlob call has claimed it and idRef once the point references
	// it: one map rather than a set and a list, whose doubling near the
	// end of a large backup raised the peak heap by megabytes.
	idsMu sync.Mutex
	ids   map[vaultapi.ID]uint8

	links linkTable

	folders *folders // nil: no folder index

	files, dirs, bytes, bytesRead, errs, warns atomic.Uint64
}

// DefaultWorkers is how many file workers a backup runs unless told: one
// per core the Go runtime may use (GOMAXPROCS), since each worker
// compresses what it reads and compression is most of a backup's work, but
// at least two, so that one reads while the other compresses. (More
// workers than cores made a first backup 7 % slower on two cores.)
func DefaultWorkers() int { return max(2, runtime.GOMAXPROCS(0)) }

// prefetchTrees bounds how many trees of the parent point are loaded
// ahead of the walk.
const prefetchTrees = 1 << 16

// Backup runs one backup of opts.Paths into r's vault and commits a
// recovery point. Entries that cannot be read are reported and skipped; the
// point still commits and Result.Problems counts them.
func Backup(ctx context.Context, r *repo.Repo, opts Options) (Result, error) {
	start := time.Now()
	if opts.Clock != nil {
		start = opts.Clock()
	}
	if len(opts.Paths) == 0 {
		return Result{}, errors.New("backup: no paths given")
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers()
	}
	if opts.Report == nil {
		opts.Report = func(Problem) {}
	}
	sealer, err := format.NewSealer(r.Keys, opts.Rand, opts.Compression)
	if err != nil {
		return Result{}, err
	}
	sess, err := r.Vault.BeginBackup(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("begin backup: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ru := &run{
		ctx: ctx, cancel: cancel, r: r, opts: opts, sealer: sealer, sess: sess.ID,
		table: chunker.NewTable(r.Keys.Chunker), names: newIDNames(),
		jobs: make(chan *fileJob, 64), walkers: make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
	}
	hint := 0
	if opts.Parent != nil { // about as many blobs again: no regrowing
		hint = int(min(opts.Parent.Stats.Blobs+opts.Parent.Stats.Blobs/8, 1<<26))
	}
	ru.ids = make(map[vaultapi.ID]uint8, hint)
	uploaders := 2 // overlap network latency
	if info, err := r.Vault.Info(ctx); err == nil && info.Embedded {
		uploaders = 1 // a local disk keeps up; fewer packs in memory
	}
	ru.packer = newPacker(ctx, r.Vault, sess.ID, sealer, r.KeepTree, runtime.GOMAXPROCS(0), uploaders)
	ru.openFolders()

	stopRenew := ru.renewSessions(sess)
	stopProgress := ru.progressLoop(start)

	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() { defer wg.Done(); ru.worker() }()
	}
	root, walkErr := ru.walkRoots()
	ru.listers.Wait() // every file is queued
	close(ru.jobs)
	wg.Wait()
	var rootID vaultapi.ID
	if walkErr == nil {
		rootID, walkErr = root.wait()
	}

	var res Result
	if walkErr == nil {
		res, walkErr = ru.commit(rootID, start)
	}
	stopProgress()
	stopRenew()
	if ru.folders != nil {
		if walkErr == nil || ru.folders.bad.Load() {
			// A cache: failing to keep it costs the next backup time only.
			if err := ru.folders.save(res.Point); err != nil {
				opts.Report(Problem{Path: ru.folders.file, Err: fmt.Errorf("folder index not kept: %w", err)})
			}
		}
		ru.folders.next.Discard()
	}
	if walkErr != nil {
		ru.packer.abort()
		_ = r.Vault.EndSession(context.WithoutCancel(ctx), sess.ID)
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return res, cause
		}
		return res, walkErr
	}
	return res, nil
}

func (ru *run) fail(err error) { ru.cancel(err) }

func (ru *run) renewSessions(s vaultapi.Session) func() {
	done := make(chan struct{})
	go func() {
		lease := time.Until(s.Expires)
		if lease < 3*time.Second {
			lease = 3 * time.Second
		}
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if _, err := ru.r.Vault.RenewSession(ru.ctx, s.ID); err != nil && ru.ctx.Err() == nil {
					ru.fail(fmt.Errorf("renew backup session: %w", err))
					return
				}
			}
		}
	}()
	return sync.OnceFunc(func() { close(done) })
}

func (ru *run) progressLoop(start time.Time) func() {
	if ru.opts.Progress == nil {
		return func() {}
	}
	every := ru.opts.ProgressEvery
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				ru.opts.Progress(ru.progress(start))
				return
			case <-t.C:
				ru.opts.Progress(ru.progress(start))
			}
		}
	}()
	return sync.OnceFunc(func() { close(done); wg.Wait() })
}

func (ru *run) progress(start time.Time) Progress {
	p := Progress{
		Files: ru.files.Load(), Dirs: ru.dirs.Load(), Bytes: ru.bytes.Load(),
		BytesRead: ru.bytesRead.Load(), BytesAdded: ru.packer.added.Load(), Errors: ru.errs.Load(),
		Elapsed: time.Since(start),
	}
	if ru.opts.Parent != nil {
		p.EstimatedBytes = ru.opts.Parent.Stats.Bytes
	}
	return p
}

func (ru *run) problem(path string, err error, skipped bool) {
	if skipped {
		ru.errs.Add(1)
	} else {
		ru.warns.Add(1)
	}
	ru.opts.Report(Problem{Path: path, Err: err, Skipped: skipped})
}

// claim reports whether id is new in this session and not yet in the
// vault, marking it seen. Only the first claimant of an ID stores it.
func (ru *run) claim(id vaultapi.ID) (bool, error) {
	ru.idsMu.Lock()
	f := ru.ids[id]
	ru.ids[id] = f | idClaimed
	ru.idsMu.Unlock()
	if f&idClaimed != 0 {
		return false, nil
	}
	has, err := ru.r.Vault.HasBlobs(ru.ctx, []vaultapi.ID{id})
	if err != nil {
		return false, fmt.Errorf("ask vault for blob: %w", err)
	}
	return !has[0], nil
}

// Flags of run.ids.
const (
	idClaimed = 1 << iota
	idRef
)

func (ru *run) addRefs(ids ...vaultapi.ID) {
	ru.idsMu.Lock()
	for _, id := range ids {
		ru.ids[id] |= idRef
	}
	ru.idsMu.Unlock()
}

// refs returns the IDs the point references, sorted.
func (ru *run) refs() []vaultapi.ID {
	ru.idsMu.Lock()
	defer ru.idsMu.Unlock()
	refs := make([]vaultapi.ID, 0, len(ru.ids))
	for id, f := range ru.ids {
		if f&idRef != 0 {
			refs = append(refs, id)
		}
	}
	sortIDs(refs)
	return refs
}

// storeBlob seals plain and hands it to the packer if the vault lacks it;
// a small data chunk goes to the group s gathers.
func (ru *run) storeBlob(kind vaultapi.Kind, id vaultapi.ID, plain []byte, s *stream) error {
	isNew, err := ru.claim(id)
	if err != nil || !isNew {
		return err
	}
	return ru.packer.add(kind, id, plain, s)
}

func (ru *run) commit(root vaultapi.ID, start time.Time) (Result, error) {
	paths := make([][]byte, len(ru.opts.Paths))
	for i, p := range ru.opts.Paths {
		paths[i] = []byte(p)
	}
	now := time.Now()
	if ru.opts.Clock != nil {
		now = ru.opts.Clock()
	}
	m := &format.Manifest{Root: root, Host: ru.opts.Host, Paths: paths, AgentTime: now.UTC(), Excludes: ru.opts.ExcludeNames}
	if ru.opts.Parent != nil {
		m.Parent = ru.opts.Parent.ID
	}
	mb, err := format.EncodeManifest(m)
	if err != nil {
		return Result{}, err
	}
	infoID := ru.r.Hasher.ID(mb)
	if err := ru.storeBlob(vaultapi.KindInfo, infoID, mb, nil); err != nil {
		return Result{}, err
	}
	if err := ru.packer.finish(); err != nil {
		return Result{}, err
	}
	ru.addRefs(root, infoID)
	refs := ru.refs()
	st := vaultapi.Stats{
		Files: ru.files.Load(), Dirs: ru.dirs.Load(), Bytes: ru.bytes.Load(), BytesRead: ru.bytesRead.Load(),
		BytesAdded: ru.packer.added.Load(), Blobs: uint64(len(refs)), Errors: ru.errs.Load(),
		DurationMS: uint64(now.Sub(start).Milliseconds()),
	}
	p, err := ru.r.Vault.Commit(ru.ctx, ru.sess, vaultapi.Commit{Info: infoID, Stats: st, Refs: refs})
	if err != nil {
		return Result{}, fmt.Errorf("commit recovery point: %w", err)
	}
	return Result{Point: p, Stats: st, Problems: ru.errs.Load(), Warnings: ru.warns.Load()}, nil
}

// walkRoots builds the root tree: a directory tree mirroring the absolute
// source paths, whose intermediate directories carry their own metadata.
func (ru *run) walkRoots() (*future, error) {
	type trie struct {
		kids map[string]*trie
		leaf bool
	}
	top := &trie{kids: map[string]*trie{}}
	for _, p := range ru.opts.Paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("backup: path %q is not absolute", p)
		}
		t := top
		for _, el := range strings.Split(filepath.ToSlash(filepath.Clean(p)), "/") {
			if el == "" {
				continue
			}
			if t.kids[el] == nil {
				t.kids[el] = &trie{kids: map[string]*trie{}}
			}
			t = t.kids[el]
		}
		t.leaf = true
	}
	var parentRoot *format.Tree
	if ru.opts.Parent != nil {
		if t, err := ru.parentRoot(); err == nil {
			parentRoot = t
		}
	}
	if top.leaf { // the whole file system
		d, err := openRoot("/")
		if err != nil {
			return nil, fmt.Errorf("backup source /: %w", err)
		}
		defer d.close()
		st, err := d.lstat(".")
		if err != nil {
			return nil, fmt.Errorf("backup source /: %w", err)
		}
		var prev *format.Node
		if parentRoot != nil {
			m, _ := ru.r.Manifest(ru.ctx, *ru.opts.Parent)
			prev = &format.Node{Type: format.TypeDir, Subtree: m.Root}
		}
		f := ru.walkDir(d, "", "", ru.node(".", st), prev, st, st.dev, true, nil)
		if f == nil {
			return nil, fmt.Errorf("backup source / could not be read (see above)")
		}
		return f, nil
	}
	var build func(abs string, t *trie, parent *format.Tree, node *format.Node) (*future, error)
	build = func(abs string, t *trie, parent *format.Tree, self *format.Node) (*future, error) {
		names := make([]string, 0, len(t.kids))
		for n := range t.kids {
			names = append(names, n)
		}
		slices.Sort(names)
		var kids []*future
		for _, name := range names {
			kid := t.kids[name]
			path := filepath.Join(abs, name)
			fi, err := os.Lstat(path)
			if err != nil {
				return nil, fmt.Errorf("backup source %s: %w", path, err)
			}
			pnode := findNode(parent, name)
			if kid.leaf {
				d, err := openRoot(abs)
				if err != nil {
					return nil, fmt.Errorf("backup source %s: %w", abs, err)
				}
				st, err := d.lstat(name)
				if err != nil {
					d.close()
					return nil, fmt.Errorf("backup source %s: %w", path, err)
				}
				f := ru.entry(d, path, "", name, st, pnode, st.dev, nil)
				d.close()
				if f == nil {
					return nil, fmt.Errorf("backup source %s could not be read (see above)", path)
				}
				kids = append(kids, f)
				continue
			}
			if !fi.IsDir() {
				return nil, fmt.Errorf("backup source %s: not a directory", path)
			}
			var ptree *format.Tree
			if pnode != nil && !pnode.Subtree.IsZero() {
				ptree, _ = ru.r.Tree(ru.ctx, pnode.Subtree)
			}
			d, err := openRoot(abs)
			if err != nil {
				return nil, err
			}
			st, err := d.lstat(name)
			d.close()
			if err != nil {
				return nil, err
			}
			node := ru.node(name, st)
			sub, err := build(path, kid, ptree, &node)
			if err != nil {
				return nil, err
			}
			kids = append(kids, sub)
		}
		return ru.tree(kids, self), nil
	}
	return build("/", top, parentRoot, nil)
}

func (ru *run) parentRoot() (*format.Tree, error) {
	m, err := ru.r.Manifest(ru.ctx, *ru.opts.Parent)
	if err != nil {
		return nil, err
	}
	if ru.folders == nil || ru.folders.prev == nil {
		// With the folder index, trees are loaded only for the folders
		// that changed.
		ru.r.Prefetch(ru.ctx, m.Root, prefetchTrees)
	}
	return ru.r.Tree(ru.ctx, m.Root)
}

func findNode(t *format.Tree, name string) *format.Node {
	if t == nil {
		return nil
	}
	i, ok := slices.BinarySearchFunc(t.Nodes, name, func(n format.Node, s string) int {
		return strings.Compare(string(n.Name), s)
	})
	if !ok {
		return nil
	}
	return &t.Nodes[i]
}
