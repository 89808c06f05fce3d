package restorer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// prefetchTrees bounds how many trees a full restore loads ahead.
const prefetchTrees = 1 << 16

// plan walks the trees, creates directories, links, special files and
// empty files, and lists which chunks go where.
func (rs *restore) plan(root vaultapi.ID) error {
	top := &format.Node{Type: format.TypeDir, Subtree: root}
	if len(rs.opts.Paths) == 0 {
		rs.r.Prefetch(rs.ctx, root, prefetchTrees) // the whole point: load trees in batches
		return rs.planDir(rs.root, top, "", rs.opts.Include == nil)
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
	if clean == "/" {
		return rs.planDir(rs.root, top, "", rs.opts.Include == nil)
	}
	els := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	cur, d := top, rs.root
	for i, el := range els {
		t, err := rs.r.Tree(rs.ctx, cur.Subtree)
		if err != nil {
			return err
		}
		n := findNode(t, el)
		if n == nil {
			return fmt.Errorf("%s: %w in this recovery point", clean, vaultapi.ErrNotFound)
		}
		parentRel := strings.Join(els[:i], "/")
		if i == len(els)-1 {
			return rs.planNode(d, n, parentRel, rs.opts.Include == nil)
		}
		if n.Type != format.TypeDir {
			return fmt.Errorf("%s: %s is not a directory in this recovery point", clean, el)
		}
		d = rs.subdir(d, n, false)
		if d == nil {
			return nil
		}
		cur = n
	}
	return nil
}

// planDir restores the contents of directory node n into d.
func (rs *restore) planDir(d *rdir, n *format.Node, rel string, included bool) error {
	if err := rs.ctx.Err(); err != nil {
		return err
	}
	t, err := rs.r.Tree(rs.ctx, n.Subtree)
	if err != nil {
		return fmt.Errorf("restore %s: %w", d.path, err)
	}
	for i := range t.Nodes {
		if err := rs.planNode(d, &t.Nodes[i], rel, included); err != nil {
			return err
		}
	}
	return nil
}

func (rs *restore) planNode(d *rdir, n *format.Node, parentRel string, parentIncluded bool) error {
	if err := CheckName(n.Name); err != nil {
		return fmt.Errorf("restore into %s: %w; refusing to restore this point", d.path, err)
	}
	name := string(n.Name)
	rel := name
	if parentRel != "" {
		rel = parentRel + "/" + name
	}
	isDir := n.Type == format.TypeDir
	if rs.opts.Exclude != nil && rs.opts.Exclude.Match(rel, isDir) {
		return nil
	}
	included := parentIncluded || rs.opts.Include != nil && rs.opts.Include.Match(rel, isDir)
	if isDir {
		sub := rs.subdir(d, n, included)
		if sub == nil {
			return nil
		}
		return rs.planDir(sub, n, rel, included)
	}
	if !included {
		return nil
	}
	path := joinPath(d.path, name)
	if n.LinkGroup != 0 {
		if l := rs.leaders[n.LinkGroup]; l != nil {
			rs.followers = append(rs.followers, follower{dir: d, name: name, path: path, node: n, lead: l})
			rs.res.HardLinks++
			rs.list(path, n.Type, "link")
			return nil
		}
	}
	var ok bool
	var err error
	switch n.Type {
	case format.TypeFile:
		ok, err = rs.planFile(d, name, path, n)
	case format.TypeSymlink:
		ok, err = rs.planSymlink(d, name, path, n)
	case format.TypeSocket:
		rs.list(path, n.Type, "skip")
		rs.problem(path, errors.New("sockets are not restored; the program that serves it makes it anew"))
	default:
		ok, err = rs.planSpecial(d, name, path, n)
	}
	if ok && n.LinkGroup != 0 {
		rs.leaders[n.LinkGroup] = &leader{dir: d, name: name, path: path}
	}
	return err
}

// joinPath is filepath.Join of a clean directory path and a name that
// CheckName passed, without Join's cleaning pass over the whole path.
func joinPath(dir, name string) string {
	if strings.HasSuffix(dir, string(filepath.Separator)) {
		return dir + name
	}
	return dir + string(filepath.Separator) + name
}

// existing returns the entry of d named name, if any.
func (rs *restore) existing(d *rdir, name string) (stat, bool) {
	if !d.ready || d.fresh || rs.cache == nil {
		return stat{}, false
	}
	h, rel, err := rs.cache.get(d)
	if err != nil {
		return stat{}, false
	}
	defer rel.release()
	st, err := lstatAt(h, name)
	return st, err == nil
}

// makeWay handles an entry in the way of one to restore, as IfExists
// says. It returns the name to restore under, or ok false to leave it.
func (rs *restore) makeWay(d *rdir, name, path string, n *format.Node, st stat) (string, string, bool) {
	switch rs.opts.IfExists {
	case Skip:
		rs.res.Skipped++
		rs.list(path, n.Type, "skip")
		return "", "", false
	case Rename:
		for i := 1; ; i++ {
			alt := name + ".restored"
			if i > 1 {
				alt += "." + strconv.Itoa(i)
			}
			if _, taken := rs.existing(d, alt); !taken {
				rs.list(filepath.Join(d.path, alt), n.Type, "rename")
				return alt, filepath.Join(d.path, alt), true
			}
		}
	}
	if st.typ == format.TypeDir {
		rs.problem(path, fmt.Errorf("exists and is a directory; not replaced by a %s", n.Type))
		return "", "", false
	}
	rs.list(path, n.Type, "replace")
	if rs.opts.DryRun {
		return name, path, true
	}
	h, rel, err := rs.cache.get(d)
	if err == nil {
		err = removeAt(h, name)
		rel.release()
	}
	if err != nil {
		rs.problem(path, err)
		return "", "", false
	}
	return name, path, true
}

// subdir plans directory n inside d, creating it now if included (else
// when something in it is restored). nil means it is left out.
func (rs *restore) subdir(d *rdir, n *format.Node, included bool) *rdir {
	name := string(n.Name)
	sd := &rdir{parent: d, name: name, path: joinPath(d.path, name), node: n, depth: d.depth + 1, meta: included}
	if st, ok := rs.existing(d, name); ok {
		if st.typ == format.TypeDir {
			sd.ready = true
		} else {
			alt, altPath, ok := rs.makeWay(d, name, sd.path, n, st)
			if !ok {
				return nil
			}
			sd.name, sd.path = alt, altPath
		}
	}
	rs.dirs = append(rs.dirs, sd)
	if included {
		rs.planDirs.Add(1)
		if err := rs.ensure(sd); err != nil {
			rs.problem(sd.path, err)
			return nil
		}
	}
	return sd
}

// ensure creates d and its parents if they do not exist yet.
func (rs *restore) ensure(d *rdir) error {
	if d.ready || d.planned {
		return nil
	}
	if d.parent == nil { // the target, missing in a dry run
		d.planned = true
		return nil
	}
	if err := rs.ensure(d.parent); err != nil {
		return err
	}
	if d.node != nil {
		d.meta = true
	}
	if rs.opts.DryRun {
		d.planned = true
		rs.list(d.path, format.TypeDir, "create")
		return nil
	}
	if rs.mk != nil { // while the plan runs: made in the background
		d.ready, d.fresh = true, true
		rs.mk.add(d)
		return nil
	}
	h, rel, err := rs.cache.get(d.parent)
	if err != nil {
		return err
	}
	defer rel.release()
	if err := mkdirAt(h, d.name); err != nil {
		if st, serr := lstatAt(h, d.name); serr != nil || st.typ != format.TypeDir {
			return err
		}
	} else {
		d.fresh = true // made just now, so empty: its entries need no lookup
	}
	d.ready = true
	return nil
}

func sameMeta(st stat, n *format.Node, m metaOpts) bool {
	return st.perm == n.Mode&0o7777 && st.mtime == n.MTime &&
		(!m.owners || st.uid == uint32(m.uid) && st.gid == uint32(m.gid))
}

// planFile plans a regular file; ok means it is (or will be) in place.
func (rs *restore) planFile(d *rdir, name, path string, n *format.Node) (bool, error) {
	layout, err := format.NewLayout(n)
	if err != nil {
		return false, fmt.Errorf("restore %s: %w: %v", path, vaultapi.ErrDamaged, err)
	}
	rs.planFiles.Add(1)
	rs.totalBytes.Add(n.Size)
	fresh := true
	var have []bool
	do := "create"
	if st, ok := rs.existing(d, name); ok {
		switch {
		case st.typ == format.TypeFile && st.size == n.Size && st.mtime == n.MTime:
			rs.keepExisting(d, name, path, n, st)
			return true, nil
		case rs.opts.IfExists == Overwrite && st.typ == format.TypeFile && st.nlink == 1 &&
			st.size == n.Size && !layout.Sparse():
			fresh, do = false, "update"
			if !rs.opts.DryRun {
				have = rs.sameChunks(d, name, n, layout)
			}
		default:
			alt, altPath, ok := rs.makeWay(d, name, path, n, st)
			if !ok {
				return false, nil
			}
			name, path, do = alt, altPath, ""
		}
	}
	if do != "" {
		rs.list(path, n.Type, do)
	}
	if rs.opts.DryRun {
		return true, nil
	}
	if err := rs.ensure(d); err != nil {
		rs.problem(path, err)
		return false, nil
	}
	ft := &fileTask{dir: d, name: name, path: path, node: n, layout: layout, fresh: fresh}
	rs.files = append(rs.files, ft)
	for i, c := range n.Chunks {
		if have != nil && have[i] {
			rs.bytesDone.Add(uint64(c.Size))
			continue
		}
		ft.remaining++
	}
	if ft.remaining == 0 {
		rs.finishNow(ft)
		return !ft.failed, nil
	}
	rs.needChunks(ft, have)
	return true, nil
}

// sameChunks reads an existing file of the right size and reports which of
// its chunks already hold the right bytes.
func (rs *restore) sameChunks(d *rdir, name string, n *format.Node, layout *format.Layout) []bool {
	h, rel, err := rs.cache.get(d)
	if err != nil {
		return nil
	}
	defer rel.release()
	f, err := openReadAt(h, name)
	if err != nil {
		return nil
	}
	defer f.Close()
	have := make([]bool, len(n.Chunks))
	var buf []byte
	var ps []format.Piece
	for i, c := range n.Chunks {
		if cap(buf) < int(c.Size) {
			buf = make([]byte, c.Size)
		}
		b := buf[:c.Size]
		ok := true
		ps = layout.AppendChunkPieces(ps[:0], i)
		for _, p := range ps {
			if _, err := f.ReadAt(b[p.ChunkOff:p.ChunkOff+p.Len], int64(p.FileOff)); err != nil && err != io.EOF {
				ok = false
				break
			}
		}
		have[i] = ok && rs.r.Hasher.ID(b) == c.ID
	}
	return have
}

func (rs *restore) planSymlink(d *rdir, name, path string, n *format.Node) (bool, error) {
	rs.res.Links++
	do := "create"
	if st, ok := rs.existing(d, name); ok {
		if st.typ == format.TypeSymlink {
			if t, err := rs.readlink(d, name); err == nil && string(t) == string(n.Target) {
				rs.keepExisting(d, name, path, n, stat{perm: n.Mode & 0o7777, mtime: st.mtime, uid: st.uid, gid: st.gid})
				return true, nil
			}
		}
		alt, altPath, ok := rs.makeWay(d, name, path, n, st)
		if !ok {
			return false, nil
		}
		name, path, do = alt, altPath, ""
	}
	if do != "" {
		rs.list(path, n.Type, do)
	}
	if rs.opts.DryRun {
		return true, nil
	}
	return rs.create(d, name, path, n, func(h handle) error { return symlinkAt(n.Target, h, name) }), nil
}

// keepExisting counts an entry already in place with the right content,
// setting its metadata only where it differs from st.
func (rs *restore) keepExisting(d *rdir, name, path string, n *format.Node, st stat) {
	rs.res.Unchanged++
	rs.list(path, n.Type, "unchanged")
	if !rs.opts.DryRun && !sameMeta(st, n, rs.metaOpts(n)) {
		if err := rs.setMeta(d, name, n); err != nil {
			rs.problem(path, err)
		}
	}
}

func (rs *restore) readlink(d *rdir, name string) ([]byte, error) {
	h, rel, err := rs.cache.get(d)
	if err != nil {
		return nil, err
	}
	defer rel.release()
	return readlinkAt(h, name)
}

func (rs *restore) planSpecial(d *rdir, name, path string, n *format.Node) (bool, error) {
	rs.res.Others++
	do := "create"
	if st, ok := rs.existing(d, name); ok {
		if st.typ == n.Type && (n.Type == format.TypeFIFO || st.rdev == n.Rdev) {
			rs.keepExisting(d, name, path, n, st)
			return true, nil
		}
		alt, altPath, ok := rs.makeWay(d, name, path, n, st)
		if !ok {
			return false, nil
		}
		name, path, do = alt, altPath, ""
	}
	if do != "" {
		rs.list(path, n.Type, do)
	}
	if rs.opts.DryRun {
		return true, nil
	}
	return rs.create(d, name, path, n, func(h handle) error { return mknodAt(h, name, n) }), nil
}

// create makes a symlink or special file with mk and sets its metadata.
func (rs *restore) create(d *rdir, name, path string, n *format.Node, mk func(h handle) error) bool {
	if err := rs.ensure(d); err != nil {
		rs.problem(path, err)
		return false
	}
	h, rel, err := rs.cache.get(d)
	if err == nil {
		err = mk(h)
		rel.release()
	}
	if err != nil {
		rs.problem(path, err)
		return false
	}
	if err := rs.setMeta(d, name, n); err != nil {
		rs.problem(path, err)
	}
	return true
}

// leader is the first restored entry of a hard-link group.
type leader struct {
	dir  *rdir
	name string
	path string
}

// follower is another entry of the group, linked to the leader once the
// leader is complete.
type follower struct {
	dir  *rdir
	name string
	path string
	node *format.Node
	lead *leader
}

func (rs *restore) linkFollowers() {
	for _, f := range rs.followers {
		if err := rs.linkOne(f); err != nil {
			rs.problem(f.path, err)
		}
	}
}

func (rs *restore) linkOne(f follower) error {
	lh, lrel, err := rs.cache.get(f.lead.dir)
	if err != nil {
		return err
	}
	defer lrel.release()
	lst, err := lstatAt(lh, f.lead.name)
	if err != nil {
		return fmt.Errorf("hard link to %s: %w", f.lead.path, err)
	}
	name := f.name
	if st, ok := rs.existing(f.dir, name); ok {
		if st.dev == lst.dev && st.ino == lst.ino {
			return nil // linked already
		}
		alt, _, ok := rs.makeWay(f.dir, name, f.path, f.node, st)
		if !ok {
			return nil
		}
		name = alt
	}
	if err := rs.ensure(f.dir); err != nil {
		return err
	}
	h, rel, err := rs.cache.get(f.dir)
	if err != nil {
		return err
	}
	defer rel.release()
	if err := linkAt(lh, f.lead.name, h, name); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("hard link to %s: %w", f.lead.path, err)
	}
	return nil
}
