// Package restorer restores a recovery point, or parts of it, into a
// target directory. It plans from the point's trees, then fetches each
// needed pack range once, in pack order, with several workers; every blob
// is authenticated and checked against its ID before a byte is written.
// Directory metadata is set last, deepest first, so that writing contents
// does not disturb directory times.
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

// Options of a restore.
type Options struct {
	Target string // directory restored into; created if missing
	// Paths, if any, are absolute paths inside the point to restore
	// (a file or a directory each); empty means everything.
	Paths   []string
	Owners  bool // set owners (needs root)
	Workers int  // default 2×GOMAXPROCS
	Report  func(Problem)
	// Progress, if set, is called about every ProgressEvery.
	Progress      func(Progress)
	ProgressEvery time.Duration
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
	path string
	node *format.Node

	mu        sync.Mutex
	f         *os.File
	remaining int
	failed    bool
}

type target struct {
	file *fileTask
	off  int64
}

type dirTask struct {
	path  string
	node  *format.Node
	depth int
}

type restore struct {
	ctx   context.Context
	r     *repo.Repo
	opts  Options
	dirs  []dirTask
	files []*fileTask
	needs map[vaultapi.ID][]target

	res                         Result
	bytesDone, filesDone, probs atomic.Uint64
	totalBytes                  uint64
}

// Restore restores the tree root (a point's root tree) per opts.
func Restore(ctx context.Context, r *repo.Repo, root vaultapi.ID, opts Options) (Result, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.Report == nil {
		opts.Report = func(Problem) {}
	}
	tgt, err := filepath.Abs(opts.Target)
	if err != nil {
		return Result{}, err
	}
	opts.Target = tgt
	if err := os.MkdirAll(tgt, 0o700); err != nil {
		return Result{}, fmt.Errorf("restore target: %w", err)
	}
	rs := &restore{ctx: ctx, r: r, opts: opts, needs: make(map[vaultapi.ID][]target)}
	start := time.Now()
	stop := rs.progressLoop(start)
	defer stop()
	if err := rs.plan(root); err != nil {
		return rs.res, err
	}
	if err := rs.fetch(); err != nil {
		return rs.res, err
	}
	for _, f := range rs.files {
		if f.remaining != 0 && !f.failed {
			return rs.res, fmt.Errorf("restore %s: %d chunk(s) were never written", f.path, f.remaining)
		}
	}
	// Directories last, deepest first, so their times stay as stored.
	slices.SortStableFunc(rs.dirs, func(a, b dirTask) int { return b.depth - a.depth })
	for _, d := range rs.dirs {
		if err := setMeta(d.path, d.node, opts.Owners); err != nil {
			rs.problem(d.path, err)
		}
	}
	rs.res.Bytes = rs.bytesDone.Load()
	rs.res.Problems = rs.probs.Load()
	return rs.res, nil
}

func (rs *restore) problem(path string, err error) {
	rs.probs.Add(1)
	rs.opts.Report(Problem{Path: path, Err: err})
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
		rs.opts.Progress(Progress{Files: rs.res.Files, Dirs: rs.res.Dirs, Bytes: rs.bytesDone.Load(),
			TotalBytes: rs.totalBytes, FilesDone: rs.filesDone.Load(), Errors: rs.probs.Load(), Elapsed: time.Since(start)})
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

// plan walks the trees, creates directories, links and empty files, and
// lists which chunks go where.
func (rs *restore) plan(root vaultapi.ID) error {
	top := &format.Node{Type: format.TypeDir, Subtree: root}
	if len(rs.opts.Paths) == 0 {
		return rs.planDir(rs.opts.Target, top, 0, true)
	}
	for _, p := range rs.opts.Paths {
		if err := rs.planPath(top, p); err != nil {
			return err
		}
	}
	return nil
}

// planPath restores one absolute path of the point, with its parents.
func (rs *restore) planPath(top *format.Node, p string) error {
	clean := filepath.ToSlash(filepath.Clean("/" + p))
	els := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	if clean == "/" {
		return rs.planDir(rs.opts.Target, top, 0, true)
	}
	cur, path := top, rs.opts.Target
	for i, el := range els {
		t, err := rs.r.Tree(rs.ctx, cur.Subtree)
		if err != nil {
			return err
		}
		n := findNode(t, el)
		if n == nil {
			return fmt.Errorf("%s: %w in this recovery point", clean, vaultapi.ErrNotFound)
		}
		path = filepath.Join(path, el)
		if i == len(els)-1 {
			return rs.planNode(filepath.Dir(path), n, i+1)
		}
		if n.Type != format.TypeDir {
			return fmt.Errorf("%s: %s is not a directory in this recovery point", clean, el)
		}
		if err := rs.mkdir(path); err != nil {
			return err
		}
		if !slices.ContainsFunc(rs.dirs, func(d dirTask) bool { return d.path == path }) {
			rs.dirs = append(rs.dirs, dirTask{path: path, node: n, depth: i + 1})
		}
		cur = n
	}
	return nil
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

func (rs *restore) mkdir(path string) error {
	err := os.Mkdir(path, 0o700)
	if err == nil {
		return nil
	}
	fi, lerr := os.Lstat(path)
	if lerr == nil && fi.IsDir() {
		return nil
	}
	if lerr == nil {
		return fmt.Errorf("restore %s: exists and is not a directory; move it away or pick another --target", path)
	}
	return fmt.Errorf("restore: %w", err)
}

// planDir restores the contents of directory node n into path.
func (rs *restore) planDir(path string, n *format.Node, depth int, isTop bool) error {
	if err := rs.ctx.Err(); err != nil {
		return err
	}
	t, err := rs.r.Tree(rs.ctx, n.Subtree)
	if err != nil {
		return fmt.Errorf("restore %s: %w", path, err)
	}
	for i := range t.Nodes {
		if err := rs.planNode(path, &t.Nodes[i], depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (rs *restore) planNode(dirPath string, n *format.Node, depth int) error {
	if err := CheckName(n.Name); err != nil {
		return fmt.Errorf("restore into %s: %w; refusing to restore this point", dirPath, err)
	}
	path := filepath.Join(dirPath, string(n.Name))
	switch n.Type {
	case format.TypeDir:
		if err := rs.mkdir(path); err != nil {
			return err
		}
		rs.res.Dirs++
		rs.dirs = append(rs.dirs, dirTask{path: path, node: n, depth: depth})
		return rs.planDir(path, n, depth, false)
	case format.TypeFile:
		rs.res.Files++
		ft := &fileTask{path: path, node: n, remaining: len(n.Chunks)}
		rs.files = append(rs.files, ft)
		rs.totalBytes += n.Size
		if len(n.Chunks) == 0 {
			return rs.finishEmpty(ft)
		}
		var off int64
		for _, c := range n.Chunks {
			rs.needs[c.ID] = append(rs.needs[c.ID], target{file: ft, off: off})
			off += int64(c.Size)
		}
		if uint64(off) != n.Size {
			return fmt.Errorf("restore %s: %w: chunks hold %d bytes, the file %d", path, vaultapi.ErrDamaged, off, n.Size)
		}
	case format.TypeSymlink:
		rs.res.Links++
		_ = os.Remove(path)
		if err := os.Symlink(string(n.Target), path); err != nil {
			rs.problem(path, err)
			return nil
		}
		if err := setMeta(path, n, rs.opts.Owners); err != nil {
			rs.problem(path, err)
		}
	default:
		rs.res.Others++
		if err := makeSpecial(path, n); err != nil {
			rs.problem(path, err)
			return nil
		}
		if err := setMeta(path, n, rs.opts.Owners); err != nil {
			rs.problem(path, err)
		}
	}
	return nil
}

func (rs *restore) finishEmpty(ft *fileTask) error {
	f, err := os.OpenFile(ft.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		rs.problem(ft.path, err)
		ft.failed = true
		return nil
	}
	f.Close()
	rs.filesDone.Add(1)
	if err := setMeta(ft.path, ft.node, rs.opts.Owners); err != nil {
		rs.problem(ft.path, err)
	}
	return nil
}

// write puts one chunk's bytes into a file and finishes the file after its
// last chunk.
func (rs *restore) write(t target, data []byte) {
	ft := t.file
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.failed {
		return
	}
	if ft.f == nil {
		f, err := os.OpenFile(ft.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err == nil && len(ft.node.Chunks) > 1 {
			err = f.Truncate(int64(ft.node.Size)) // unwritten zero chunks stay holes
		}
		if err != nil {
			rs.problem(ft.path, err)
			ft.failed = true
			if f != nil {
				f.Close()
			}
			return
		}
		ft.f = f
	}
	if len(ft.node.Chunks) == 1 || !allZero(data) {
		if _, err := ft.f.WriteAt(data, t.off); err != nil {
			rs.problem(ft.path, err)
			ft.failed = true
			ft.f.Close()
			return
		}
	}
	rs.bytesDone.Add(uint64(len(data)))
	ft.remaining--
	if ft.remaining > 0 {
		return
	}
	err := ft.f.Close()
	ft.f = nil
	if err == nil {
		err = setMeta(ft.path, ft.node, rs.opts.Owners)
	}
	if err != nil {
		rs.problem(ft.path, err)
	}
	rs.filesDone.Add(1)
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

// fetch reads every needed blob, pack by pack, and writes it out.
func (rs *restore) fetch() error {
	ids := make([]vaultapi.ID, 0, len(rs.needs))
	for id := range rs.needs {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b vaultapi.ID) int { return a.Compare(b) })
	var all []vaultapi.Location
	const batch = 10000
	for i := 0; i < len(ids); i += batch {
		locs, err := rs.r.Vault.Locate(rs.ctx, ids[i:min(i+batch, len(ids))])
		if err != nil {
			return fmt.Errorf("locate blobs: %w", err)
		}
		for _, l := range locs {
			if l.Pack == "" || l.Kind != vaultapi.KindData {
				for _, t := range rs.needs[l.ID] {
					rs.failFile(t.file, fmt.Errorf("%w: chunk %s is missing from the vault", vaultapi.ErrDamaged, l.ID.Short()))
				}
				continue
			}
			all = append(all, l)
		}
	}
	packs, byPack := repo.GroupByPack(all)

	ctx, cancel := context.WithCancelCause(rs.ctx)
	defer cancel(nil)
	work := make(chan string)
	var wg sync.WaitGroup
	for range rs.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf, plain []byte
			for p := range work {
				var err error
				buf, plain, err = rs.fetchPack(ctx, p, byPack[p], buf, plain)
				if err != nil {
					cancel(err)
				}
			}
		}()
	}
	for _, p := range packs {
		select {
		case work <- p:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	for _, f := range rs.files {
		if f.f != nil {
			f.f.Close()
		}
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return rs.ctx.Err()
}

func (rs *restore) failFile(ft *fileTask, err error) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if !ft.failed {
		ft.failed = true
		rs.problem(ft.path, err)
	}
}

func (rs *restore) fetchPack(ctx context.Context, p string, locs []vaultapi.Location, buf, plain []byte) ([]byte, []byte, error) {
	buf, err := rs.r.ReadBlobs(ctx, p, locs, buf, func(l vaultapi.Location, sealed []byte) error {
		var err error
		plain, err = rs.r.OpenBlob(vaultapi.KindData, l.ID, sealed, plain)
		if err != nil {
			for _, t := range rs.needs[l.ID] {
				rs.failFile(t.file, err)
			}
			return nil
		}
		for _, t := range rs.needs[l.ID] {
			rs.write(t, plain)
		}
		return nil
	})
	return buf, plain, err
}
