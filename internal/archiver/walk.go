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

func (f *future) wait() (vaultapi.ID, error) {
	<-f.done
	return f.treeID, f.err
}

// node makes the tree node of an entry from its lstat.
func (ru *run) node(name string, st fileStat) format.Node {
	n := format.Node{
		Name: []byte(name), Mode: st.perm, UID: st.uid, GID: st.gid,
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
		prev.MTime == st.mtime && prev.CTime == st.ctime && prev.Inode == st.ino &&
		(len(prev.Chunks) > 0 || prev.Size == 0)
}

// entry handles one directory entry; nil means it was skipped.
func (ru *run) entry(d dir, path, rel, name string, st fileStat, prev *format.Node, rootDev uint64) *future {
	node := ru.node(name, st)
	laterX := false // read the attributes later, through the open descriptor
	switch {
	case node.Type == format.TypeSocket:
	case prev != nil && prev.Type == node.Type && prev.CTime == st.ctime && prev.Inode == st.ino:
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
		f := ru.entryContent(d, path, name, st, prev, node, laterX)
		ru.links.lead(st.dev, st.ino, f)
		return f
	}
	if node.Type == format.TypeDir {
		return ru.walkDir(d, path, rel, node, prev, st, rootDev, laterX)
	}
	return ru.entryContent(d, path, name, st, prev, node, laterX)
}

// entryContent reads what a non-directory entry holds: a file's content
// (queued for the workers), a symlink's target.
func (ru *run) entryContent(d dir, path, name string, st fileStat, prev *format.Node, node format.Node, laterX bool) *future {
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
			return ru.queueSegments(f, path, st, node, laterX)
		}
		fut := newFuture(node)
		select {
		case ru.jobs <- &fileJob{f: f, path: path, st: st, fut: fut, xattrs: laterX}:
		case <-ru.ctx.Done():
			f.Close()
			fut.err = ru.ctx.Err()
			close(fut.done)
		}
		return fut
	case format.TypeSymlink:
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
func (ru *run) queueSegments(f sourceFile, path string, st fileStat, node format.Node, laterX bool) *future {
	if laterX {
		xs, err := f.xattrs()
		if err != nil {
			ru.problem(path, fmt.Errorf("extended attributes not stored: %w", err), false)
		}
		node.Xattrs = xs
	}
	fut := newFuture(node)
	for _, j := range segmentJobs(f, path, st, fut) {
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
// directories are read at once.
func (ru *run) walkDir(parent dir, path, rel string, node format.Node, prev *format.Node, st fileStat, rootDev uint64, laterX bool) *future {
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
		return ru.list(d, path, rel, node, prev, rootDev)
	}
	fut := newFuture(node)
	ru.listers.Add(1)
	go func() {
		inner := ru.list(d, path, rel, node, prev, rootDev)
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
func (ru *run) list(d dir, path, rel string, node format.Node, prev *format.Node, rootDev uint64) *future {
	defer d.close()
	var prevTree *format.Tree
	if prev != nil && prev.Type == format.TypeDir && !prev.Subtree.IsZero() {
		prevTree, _ = ru.r.Tree(ru.ctx, prev.Subtree) // unreadable: read everything anew
	}
	names, err := d.names()
	if err != nil {
		ru.problem(path, err, true)
		return nil
	}
	slices.Sort(names)
	if _, ok := slices.BinarySearch(names, exclude.CacheDirTagName); ok && isCacheTag(d) {
		names = []string{exclude.CacheDirTagName}
	}
	kids := make([]*future, 0, len(names))
	for _, name := range names {
		if ru.ctx.Err() != nil {
			break
		}
		cpath := path + "/" + name
		crel := name
		if rel != "" {
			crel = rel + "/" + name
		}
		cst, err := d.lstat(name)
		if err != nil {
			ru.problem(cpath, readErr(err), true)
			continue
		}
		if ru.opts.Exclude != nil && ru.opts.Exclude.Match(crel, cst.mode.IsDir()) {
			continue
		}
		if f := ru.entry(d, cpath, crel, name, cst, findNode(prevTree, name), rootDev); f != nil {
			kids = append(kids, f)
		}
	}
	return ru.tree(kids, &node)
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

// tree returns a future that, once all kids are done, stores their tree
// and resolves to its ID; with node set, it resolves to node with Subtree
// filled in.
func (ru *run) tree(kids []*future, node *format.Node) *future {
	var f *future
	if node != nil {
		f = newFuture(*node)
	} else {
		f = newFuture(format.Node{})
	}
	go func() {
		defer close(f.done)
		nodes := make([]format.Node, 0, len(kids))
		for _, k := range kids {
			select {
			case <-k.done:
			case <-ru.ctx.Done():
				f.err = ru.ctx.Err()
				return
			}
			if k.err != nil {
				f.err = k.err
				return
			}
			if !k.skip {
				nodes = append(nodes, k.node)
			}
		}
		t := format.Tree{Nodes: nodes}
		enc, err := t.AppendEncode(nil)
		if err != nil {
			f.err = err
			ru.fail(err)
			return
		}
		id := ru.r.Hasher.ID(enc)
		if err := ru.storeBlob(vaultapi.KindTree, id, enc); err != nil {
			f.err = err
			ru.fail(err)
			return
		}
		ru.addRefs(id)
		f.treeID = id
		f.node.Subtree = id
	}()
	return f
}
