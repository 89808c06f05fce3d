package archiver

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-backup/coffer/internal/folderindex"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// The folder index (package folderindex) is what a backup remembers, on
// the machine, of every folder it walked: a fingerprint of the folder's
// listing (every entry's name and every field its lstat gives the tree),
// the folder's tree ID and the chunk IDs of its files. The next backup of
// the same paths, from the point the index was written for, lists and
// stats each folder as always; when the fingerprint is the index's, the
// folder's files are unchanged and the tree is the previous point's
// unless a subfolder's changed, so neither the previous tree is loaded
// from the vault nor its entries compared. Subfolders are walked as
// always. A folder whose fingerprint differs is compared with its tree in
// the previous point, loaded then (doc/CLI.md, "The folder index").
//
// The fingerprint covers exactly what decides that a file is unchanged
// (size, mtime, ctime, inode) and every other field of its node, so the
// trees it reuses are the ones comparing them would have kept. A folder
// holding an entry that cannot be fingerprinted (a file with several
// links, whose link group is numbered per backup; a socket; an entry that
// could not be stat'ed) or one that was skipped is never recorded.

// Domains of the keyed hashes the index uses.
const (
	folderScopeDomain = "coffer folder index scope v1\n"
	folderMACDomain   = "coffer folder index file v1\n"
	folderKeyDomain   = "coffer folder index path v1\n"
	folderFPDomain    = "coffer folder index listing v1\n"
	folderPointDomain = "coffer folder index point v1\n"
)

// folders is a run's use of the folder index.
type folders struct {
	prev  *folderindex.Index // the parent point's; nil if none fits
	next  *folderindex.Log   // this backup's entries, until save
	file  string
	scope vaultapi.ID
	hash  func([]byte) vaultapi.ID
	bad   atomic.Bool // the index disagreed with the parent point
	same  atomic.Uint64
}

// onFolderSame, if set, is called for every folder the index let the
// backup skip comparing (a test hook).
var onFolderSame func()

// openFolders sets up the index of opts.FolderIndex: the parent point's,
// if the file holds it for these settings, and a builder for the next.
func (ru *run) openFolders() {
	o := ru.opts
	if o.FolderIndex == "" || (o.Exclude != nil && len(o.ExcludeNames) == 0) {
		return // no folder, or exclusions it cannot tell apart
	}
	h := ru.r.Hasher.ID
	b := []byte(folderScopeDomain)
	for _, p := range o.Paths {
		b = append(append(b, p...), 0)
	}
	b = append(b, 1)
	for _, p := range o.ExcludeNames {
		b = append(append(b, p...), 0)
	}
	if o.OneFileSystem {
		b = append(b, 1)
	}
	scope := h(b)
	f := &folders{
		file:  filepath.Join(o.FolderIndex, hex.EncodeToString(scope[:16])),
		scope: scope,
		hash:  h,
	}
	now := time.Now()
	if o.Clock != nil {
		now = o.Clock()
	}
	// The backup lock keeps backups from running at the same time: any
	// log in the folder is an interrupted backup's.
	folderindex.Tidy(o.FolderIndex, filepath.Base(f.file), now.Add(-folderIndexKept))
	next, err := folderindex.CreateLog(o.FolderIndex, filepath.Base(f.file))
	if err != nil {
		o.Report(Problem{Path: o.FolderIndex, Err: fmt.Errorf("folder index not kept: %w", err)})
		return
	}
	f.next = next
	if o.Parent != nil {
		ix, err := folderindex.Load(f.file, f.mac)
		if err == nil && ix.Point() == f.point(o.Parent.ID) && ix.Scope() == scope {
			f.prev = ix
		}
	}
	ru.folders = f
}

func (f *folders) mac(b []byte) vaultapi.ID {
	return f.hash(append([]byte(folderMACDomain), b...))
}

func (f *folders) point(id string) vaultapi.ID {
	return f.hash([]byte(folderPointDomain + id))
}

func (f *folders) key(path string) folderindex.Key {
	id := f.hash([]byte(folderKeyDomain + path))
	return folderindex.Key(id[:16])
}

// save writes the index for point p; after a disagreement it deletes the
// file instead, so that the next backup compares every folder.
func (f *folders) save(p vaultapi.Point) error {
	if f.bad.Load() {
		if err := os.Remove(f.file); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := f.next.Builder()
	if err != nil {
		return err
	}
	return folderindex.Save(f.file, b.Encode(f.point(p.ID), f.scope, f.mac))
}

// folderIndexKept is how long the index of settings no backup uses stays.
const folderIndexKept = 60 * 24 * time.Hour

// folderRec is what dirTree records of a folder once its tree is known.
type folderRec struct {
	key folderindex.Key
	fp  folderindex.FP
}

// record adds a folder whose tree is id and whose entries are nodes.
func (ru *run) record(rec *folderRec, id vaultapi.ID, nodes []format.Node) {
	ru.folders.next.Add(rec.key, rec.fp, id, func(add func(vaultapi.ID)) {
		for i := range nodes {
			for _, c := range nodes[i].Chunks {
				add(c.ID)
			}
		}
	})
}

// fpBufs are fingerprint's buffers: a folder of a thousand entries needs
// 60 KB, and allocating it for each folder left the first backup's heap
// fragmented (its peak RSS rose).
var fpBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// fingerprint hashes a folder's listing: the names kept (not excluded)
// and every field of their nodes that lstat gives. ok is false if an
// entry cannot be fingerprinted (see above).
func (ru *run) fingerprint(names []string, sts []lstat, excluded []bool) (fp folderindex.FP, ok bool) {
	bp := fpBufs.Get().(*[]byte)
	defer fpBufs.Put(bp)
	b := append((*bp)[:0], folderFPDomain...)
	defer func() { *bp = b[:0] }()
	for i, name := range names {
		if excluded != nil && excluded[i] {
			continue
		}
		st, err := sts[i].st, sts[i].err
		if err != nil || st.mode&os.ModeSocket != 0 || (!st.mode.IsDir() && st.nlink > 1) {
			return fp, false
		}
		n := ru.statNode(nil, st) // the name is hashed as it is
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = append(b, byte(n.Type))
		for _, v := range [...]uint64{uint64(n.Mode), uint64(n.UID), uint64(n.GID), uint64(n.MTime),
			uint64(n.ATime), uint64(n.CTime), n.Size, n.Inode, n.Dev, uint64(n.Links), n.Rdev} {
			b = binary.AppendUvarint(b, v)
		}
		b = binary.AppendUvarint(b, uint64(len(n.User)))
		b = append(b, n.User...)
		b = binary.AppendUvarint(b, uint64(len(n.Group)))
		b = append(b, n.Group...)
	}
	id := ru.folders.hash(b)
	return folderindex.FP(id[:16]), true
}

// sameSub is a subfolder of a folder listed as the index has it.
type sameSub struct {
	at   int // position among the folder's entries
	name string
	fut  *future
	want vaultapi.ID // its tree in the parent point
}

// listSame goes on with a folder whose fingerprint is e's: its files are
// the parent point's; its subfolders are walked, and its tree is e.Tree
// unless one of them changed.
func (ru *run) listSame(d dir, path, rel string, node format.Node, names []string, sts []lstat,
	excluded []bool, e folderindex.Entry, rec *folderRec, rootDev uint64, s *stream) *future {
	var files, size uint64
	var subs []sameSub
	var old *format.Tree               // e.Tree, loaded only if needed
	kept := make([]int, 0, len(names)) // the index in names of each entry kept
	at := 0
	for i, name := range names {
		if excluded != nil && excluded[i] {
			continue
		}
		kept = append(kept, i)
		st := sts[i].st
		switch {
		case st.mode.IsDir():
			crel := childRel(rel, name)
			cpath := path + "/" + name
			var cprev *format.Node
			if ce, ok := ru.folders.prev.Get(ru.folders.key(cpath)); ok {
				cprev = &format.Node{Type: format.TypeDir, Subtree: ce.Tree}
			} else {
				// Not recorded (it had a problem): its node in e.Tree.
				if old == nil {
					t, err := ru.r.TakeTree(ru.ctx, e.Tree)
					if err != nil {
						return failed(ru.folderFailed(path, fmt.Errorf("tree %s of the previous point: %w", e.Tree.Short(), err)))
					}
					old = t
				}
				cprev = findNode(old, name)
			}
			f := ru.walkDir(d, cpath, crel, ru.node(name, st), cprev, st, rootDev, true, s)
			if f == nil { // skipped, its problem reported
				f = &future{done: make(chan struct{}), skip: true}
				close(f.done)
			}
			var want vaultapi.ID
			if cprev != nil {
				want = cprev.Subtree
			}
			subs = append(subs, sameSub{at: at, name: name, fut: f, want: want})
		case st.mode.IsRegular():
			files++
			size += uint64(st.size)
		}
		at++
	}
	ru.files.Add(files)
	ru.bytes.Add(size)
	refs := e.Chunks[:len(e.Chunks):len(e.Chunks)] // settleTree appends: never into the index
	f := newFuture(node)
	if len(subs) == 0 {
		ru.sameFolder(f, e, rec, refs)
		close(f.done)
		return f
	}
	go func() {
		defer close(f.done)
		same := true
		for _, sub := range subs {
			if f.err = ru.await(sub.fut); f.err != nil {
				return
			}
			if sub.fut.skip || sub.fut.node.Subtree != sub.want || sub.want.IsZero() {
				same = false
			}
		}
		if same {
			ru.sameFolder(f, e, rec, refs)
			return
		}
		// A subfolder changed: the previous tree with its new nodes.
		t, err := ru.r.TakeTree(ru.ctx, e.Tree)
		if err != nil {
			f.err = ru.folderFailed(path, fmt.Errorf("tree %s of the previous point: %w", e.Tree.Short(), err))
			return
		}
		nodes := slices.Clone(t.Nodes)
		if len(nodes) != at {
			f.err = ru.folderFailed(path, fmt.Errorf("%d entries listed, %d in the previous point's tree", at, len(nodes)))
			return
		}
		// The entries other than subfolders must be what was listed.
		isSub := make([]bool, len(nodes))
		for _, sub := range subs {
			isSub[sub.at] = true
		}
		for j := range nodes {
			if n := ru.node(names[kept[j]], sts[kept[j]].st); !isSub[j] && !sameStat(&nodes[j], n) {
				f.err = ru.folderFailed(path, fmt.Errorf("entry %q is not the previous point's", n.Name))
				return
			}
		}
		skipped := false
		for _, sub := range subs {
			pn := &nodes[sub.at]
			if string(pn.Name) != sub.name || pn.Type != format.TypeDir {
				f.err = ru.folderFailed(path, fmt.Errorf("entry %q is not where the previous point's tree has it", sub.name))
				return
			}
			if sub.fut.skip {
				pn.Name = nil
				skipped = true
				continue
			}
			*pn = sub.fut.node
		}
		if skipped {
			rec = nil
			nodes = dropSkipped(nodes)
		}
		ru.storeTree(f, nodes, refs)
		if rec != nil && f.err == nil {
			ru.folders.next.AddEntry(rec.key, folderindex.Entry{FP: rec.fp, Tree: f.treeID, Chunks: e.Chunks})
		}
	}()
	return f
}

// sameFolder settles f as the parent point's tree e.Tree.
func (ru *run) sameFolder(f *future, e folderindex.Entry, rec *folderRec, refs []vaultapi.ID) {
	ru.folders.same.Add(1)
	if onFolderSame != nil {
		onFolderSame()
	}
	ru.reused()
	ru.settleTree(f, e.Tree, refs)
	ru.folders.next.AddEntry(rec.key, folderindex.Entry{FP: rec.fp, Tree: e.Tree, Chunks: e.Chunks})
}

// folderFailed stops the backup and returns why: the index disagrees with
// the parent point, which only a bug can cause. The index is deleted at
// the end, so the next backup compares every folder.
func (ru *run) folderFailed(path string, err error) error {
	ru.folders.bad.Store(true)
	err = fmt.Errorf("%s: the folder index disagrees with the previous recovery point (%v); it is deleted, run the backup again", path, err)
	ru.fail(err)
	return err
}

// sameStat reports whether old, a node of the previous tree, is n (from
// an lstat) with its content: it agrees on every field lstat gives.
func sameStat(old *format.Node, n format.Node) bool {
	n.Target, n.Subtree, n.Chunks, n.Xattrs, n.LinkGroup, n.Extents = old.Target, old.Subtree, old.Chunks, old.Xattrs, old.LinkGroup, old.Extents
	return n.Equal(old)
}
