package archiver

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	"github.com/coffer-backup/coffer/internal/exclude"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// future is an entry or a tree that workers finish later.
type future struct {
	done   chan struct{}
	node   format.Node
	skip   bool // dropped: its problem was reported
	treeID vaultapi.ID
	err    error // fatal: the backup stops
}

func newFuture(n format.Node) *future { return &future{done: make(chan struct{}), node: n} }

func resolved(n format.Node) *future {
	f := newFuture(n)
	close(f.done)
	return f
}

// failed returns a future settled with err, a fatal error.
func failed(err error) *future {
	f := &future{done: make(chan struct{}), err: err}
	close(f.done)
	return f
}

func (f *future) wait() (vaultapi.ID, error) {
	<-f.done
	return f.treeID, f.err
}

// node makes the tree node of an entry from its lstat.
func (ru *run) node(name string, st fileStat) format.Node { return ru.statNode([]byte(name), st) }

// statNode is node with the name as bytes, which the node keeps.
func (ru *run) statNode(name []byte, st fileStat) format.Node {
	n := format.Node{
		Name: name, Mode: st.perm, UID: st.uid, GID: st.gid,
		User: ru.names.user(st.uid), Group: ru.names.group(st.gid),
		MTime: st.mtime, ATime: st.atime, CTime: st.ctime,
		Inode: st.ino, Dev: st.dev, Links: st.nlink,
	}
	switch {
	case st.mode.IsDir():
		n.Type = format.TypeDir
	case st.mode&os.ModeSymlink != 0:
		n.Type = format.TypeSymlink
	case st.mode&os.ModeNamedPipe != 0:
		n.Type = format.TypeFIFO
	case st.mode&os.ModeSocket != 0:
		n.Type = format.TypeSocket
	case st.mode&os.ModeCharDevice != 0:
		n.Type, n.Rdev = format.TypeCharDev, st.rdev
	case st.mode&os.ModeDevice != 0:
		n.Type, n.Rdev = format.TypeBlockDev, st.rdev
	default:
		n.Type, n.Size = format.TypeFile, uint64(st.size)
	}
	return n
}

// unchanged reports whether a file may reuse its previous chunks unread.
func unchanged(prev *format.Node, st fileStat) bool {
	return prev != nil && prev.Type == format.TypeFile && prev.Size == uint64(st.size) &&
		prev.MTime == st.mtime && sameInode(prev, st) &&
		(len(prev.Chunks) > 0 || prev.Size == 0)
}

// sameInode reports whether the entry is prev's inode, untouched since:
// its attributes, a symlink's target, are unchanged (setting them changes
// the ctime).
func sameInode(prev *format.Node, st fileStat) bool {
	return prev.CTime == st.ctime && prev.Inode == st.ino
}

// unchangedFile returns the node of a regular file with a single link
// that has not changed since prev: it keeps prev's content and attributes
// and needs neither reading nor a future. The name is prev's.
func (ru *run) unchangedFile(st fileStat, prev *format.Node) (format.Node, bool) {
	if prev == nil || !st.mode.IsRegular() || st.nlink > 1 || !unchanged(prev, st) {
		return format.Node{}, false
	}
	n := ru.statNode(prev.Name, st)
	// The ctime and inode are unchanged, so are the attributes.
	n.Chunks, n.Extents, n.Xattrs = prev.Chunks, prev.Extents, prev.Xattrs
	return n, true
}

// entry handles one directory entry; nil means it was skipped. prev, if
// not nil, is the entry of that name in the parent point; s is the stream
// of the walker that met it.
func (ru *run) entry(d dir, path, rel, name string, st fileStat, prev *format.Node, rootDev uint64, s *stream) *future {
	var node format.Node
	if prev != nil {
		node = ru.statNode(prev.Name, st) // the same name: share its bytes
	} else {
		node = ru.node(name, st)
	}
	laterX := false // read the attributes later, through the open descriptor
	switch {
	case node.Type == format.TypeSocket:
	case prev != nil && prev.Type == node.Type && sameInode(prev, st):
		// Setting or removing an attribute changes the ctime: none changed.
		node.Xattrs = prev.Xattrs
	case node.Type == format.TypeFile || node.Type == format.TypeDir:
		laterX = true
	default:
		xs, err := d.xattrs(name)
		if err != nil {
			ru.problem(path, fmt.Errorf("extended attributes not stored: %w", err), false)
		}
		node.Xattrs = xs
	}
	if node.Type != format.TypeDir && node.Type != format.TypeSocket && st.nlink > 1 {
		group, leader := ru.links.join(st.dev, st.ino)
		node.LinkGroup = group
		if leader != nil {
			return ru.follow(path, node, leader)
		}
		f := ru.entryContent(d, path, name, st, prev, node, laterX, s)
		ru.links.lead(st.dev, st.ino, f)
		return f
	}
	if node.Type == format.TypeDir {
		return ru.walkDir(d, path, rel, node, prev, st, rootDev, laterX, s)
	}
	return ru.entryContent(d, path, name, st, prev, node, laterX, s)
}

// entryContent reads what a non-directory entry holds: a file's content
// (queued for the workers), a symlink's target.
func (ru *run) entryContent(d dir, path, name string, st fileStat, prev *format.Node, node format.Node, laterX bool, s *stream) *future {
	switch node.Type {
	case format.TypeFile:
		ru.files.Add(1)
		ru.bytes.Add(node.Size)
		if unchanged(prev, st) {
			node.Chunks, node.Extents = prev.Chunks, prev.Extents
			for _, c := range node.Chunks {
				ru.addRefs(c.ID)
			}
			return resolved(node)
		}
		f, err := d.openFile(name)
		if err != nil {
			ru.problem(path, readErr(err), true)
			return nil
		}
		ext, err := sparseExtents(f, st)
		if err != nil {
			ru.problem(path, fmt.Errorf("holes not detected, read whole: %w", err), false)
		}
		node.Extents = ext
		if ext == nil && st.size >= SegmentFrom {
			return ru.queueSegments(f, path, st, node, laterX, s)
		}
		fut := newFuture(node)
		select {
		case ru.jobs <- &fileJob{f: f, path: path, st: st, fut: fut, xattrs: laterX, stream: s}:
		case <-ru.ctx.Done():
			f.Close()
			fut.err = ru.ctx.Err()
			close(fut.done)
		}
		return fut
	case format.TypeSymlink:
		if prev != nil && prev.Type == format.TypeSymlink && sameInode(prev, st) && len(prev.Target) > 0 {
			// A symlink's target cannot change in place, and reading it
			// would move its access time (once a day with relatime).
			node.Target = prev.Target
			break
		}
		t, err := d.readlink(name)
		if err != nil {
			ru.problem(path, readErr(err), true)
			return nil
		}
		node.Target = t
	case format.TypeSocket:
		ru.problem(path, errors.New("socket not backed up (sockets cannot be restored)"), false)
		return nil
	}
	return resolved(node)
}

// queueSegments queues a large file as segments for several workers.
func (ru *run) queueSegments(f sourceFile, path string, st fileStat, node format.Node, laterX bool, s *stream) *future {
	if laterX {
		xs, err := f.xattrs()
		if err != nil {
			ru.problem(path, fmt.Errorf("extended attributes not stored: %w", err), false)
		}
		node.Xattrs = xs
	}
	fut := newFuture(node)
	for _, j := range segmentJobs(f, path, st, fut, s) {
		select {
		case ru.jobs <- j:
		case <-ru.ctx.Done():
			// Jobs already queued still run: each sees the cancelled
			// context and the last completes the future.
			j.seg.mu.Lock()
			j.seg.left -= len(j.seg.parts) - j.idx
			done := j.seg.left == 0
			j.seg.mu.Unlock()
			if done {
				f.Close()
				fut.err = ru.ctx.Err()
				close(fut.done)
			}
			return fut
		}
	}
	return fut
}

func readErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vanished during the backup: %w", err)
	}
	return err
}

// walkDir lists a directory and returns the future of its node. When a
// walker slot is free, the listing runs in its own goroutine, so several
// directories are read at once, with a stream of its own that s started;
// otherwise this goroutine lists it, in s.
func (ru *run) walkDir(parent dir, path, rel string, node format.Node, prev *format.Node, st fileStat, rootDev uint64, laterX bool, s *stream) *future {
	ru.dirs.Add(1)
	if ru.opts.OneFileSystem && st.dev != rootDev {
		return ru.tree(nil, &node) // a mount point: kept, empty
	}
	d, err := parent.openDir(string(node.Name))
	if err != nil {
		ru.problem(path, readErr(err), true)
		return nil
	}
	if laterX {
		xs, err := d.ownXattrs()
		if err != nil {
			ru.problem(path, fmt.Errorf("extended attributes not stored: %w", err), false)
		}
		node.Xattrs = xs
	}
	select {
	case ru.walkers <- struct{}{}:
	default:
		return ru.list(d, path, rel, node, prev, rootDev, s)
	}
	fut := newFuture(node)
	own := ru.packer.newStream(s)
	ru.listers.Add(1)
	go func() {
		inner := ru.list(d, path, rel, node, prev, rootDev, own)
		if err := ru.packer.listed(own); err != nil {
			ru.fail(err)
		}
		<-ru.walkers
		ru.listers.Done()
		if inner == nil {
			fut.skip = true
			close(fut.done)
			return
		}
		<-inner.done
		fut.node, fut.skip, fut.treeID, fut.err = inner.node, inner.skip, inner.treeID, inner.err
		close(fut.done)
	}()
	return fut
}

// list reads an open directory's entries and closes it.
func (ru *run) list(d dir, path, rel string, node format.Node, prev *format.Node, rootDev uint64, s *stream) *future {
	defer d.close()
	names, err := d.names()
	if err != nil {
		ru.problem(path, err, true)
		return nil
	}
	slices.Sort(names)
	if _, ok := slices.BinarySearch(names, exclude.CacheDirTagName); ok && isCacheTag(d) {
		names = []string{exclude.CacheDirTagName}
	}
	// Every entry is looked at before the parent point's tree is waited
	// for: meanwhile the prefetch may have loaded it.
	sts := make([]lstat, len(names))
	for i, name := range names {
		if ru.ctx.Err() != nil {
			break
		}
		sts[i].st, sts[i].err = d.lstat(name)
	}
	var excluded []bool
	if ru.opts.Exclude != nil {
		excluded = make([]bool, len(names))
		for i, name := range names {
			if sts[i].err != nil {
				continue
			}
			excluded[i] = ru.opts.Exclude.Match(childRel(rel, name), sts[i].st.mode.IsDir())
		}
	}
	var rec *folderRec // what the folder index records of this folder
	if ru.folders != nil && ru.ctx.Err() == nil {
		if fp, ok := ru.fingerprint(names, sts, excluded); ok {
			rec = &folderRec{key: ru.folders.key(path), fp: fp}
			if prev != nil && prev.Type == format.TypeDir && !prev.Subtree.IsZero() {
				if e, ok := ru.folders.prev.Get(rec.key); ok && e.FP == fp && e.Tree == prev.Subtree {
					return ru.listSame(d, path, rel, node, names, sts, excluded, e, rec, rootDev, s)
				}
			}
		}
	}
	var prevTree *format.Tree
	var prevID vaultapi.ID
	if prev != nil && prev.Type == format.TypeDir && !prev.Subtree.IsZero() {
		// Unreadable: read everything anew.
		if t, err := ru.r.TakeTree(ru.ctx, prev.Subtree); err == nil {
			prevTree, prevID = t, prev.Subtree
		}
	}
	var before prevEntries
	if prevTree != nil {
		before.nodes = prevTree.Nodes
	}
	k := newKids(prevTree, len(names))
	var files, size uint64
	refs := make([]vaultapi.ID, 0, len(names)+1) // a chunk a file, and the tree
	for i, name := range names {
		if ru.ctx.Err() != nil {
			break
		}
		cst, err := sts[i].st, sts[i].err
		if err != nil {
			ru.problem(path+"/"+name, readErr(err), true)
			continue
		}
		if excluded != nil && excluded[i] {
			continue
		}
		crel := ""
		if cst.mode.IsDir() {
			crel = childRel(rel, name)
		}
		pn := before.find(name)
		if n, ok := ru.unchangedFile(cst, pn); ok {
			k.add(&n, pn)
			files++
			size += n.Size
			for _, c := range n.Chunks {
				refs = append(refs, c.ID)
			}
			continue
		}
		if f := ru.entry(d, path+"/"+name, crel, name, cst, pn, rootDev, s); f != nil {
			k.wait(f, pn)
		} else {
			rec = nil // skipped: look at it again next time
		}
	}
	k.end()
	ru.files.Add(files)
	ru.bytes.Add(size)
	return ru.dirTree(k, &node, prevID, refs, rec)
}

// childRel is the path of name, an entry of the folder at rel, relative
// to the source path.
func childRel(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

// lstat is an entry's lstat, or why it failed.
type lstat struct {
	st  fileStat
	err error
}

// prevEntries finds the entries of a parent point's tree by name, for
// names asked in increasing order: one pass over the tree in all.
type prevEntries struct {
	nodes []format.Node
	i     int
}

func (p *prevEntries) find(name string) *format.Node {
	for p.i < len(p.nodes) && string(p.nodes[p.i].Name) < name {
		p.i++
	}
	if p.i < len(p.nodes) && string(p.nodes[p.i].Name) == name {
		return &p.nodes[p.i]
	}
	return nil
}

func isCacheTag(d dir) bool {
	f, err := d.openFile(exclude.CacheDirTagName)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, len(exclude.CacheDirSignature))
	_, err = io.ReadFull(f, buf)
	return err == nil && string(buf) == exclude.CacheDirSignature
}
