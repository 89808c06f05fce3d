package archiver

import (
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Test hooks: with reuseTrees off every tree is encoded; onReuse, if set,
// is called for every tree reused.
var (
	reuseTrees = true
	onReuse    func()
)

// kids are the entries of a directory, in name order: nodes that are
// final, and the futures of those that workers or walkers finish later.
//
// With prev, the directory's tree in the parent point, kids start out
// the same as prev: while every entry so far is Equal to prev's at its
// position (pending ones aside), nodes is not kept. If it stays so, the
// tree is prev's, byte for byte, and keeps prev's ID without being
// encoded, hashed or looked up again; an unchanged directory costs no
// copy of its entries.
type kids struct {
	prev    *format.Tree
	same    bool // the entries so far are prev's first n
	n       int  // entries so far
	size    int  // expected entries, for nodes' capacity
	nodes   []format.Node
	pending []pendingKid
}

// pendingKid is an entry whose node comes from a future.
type pendingKid struct {
	at  int // index of the entry
	fut *future
}

// newKids returns kids for about size entries, the same as prev so far
// (nil: there is nothing to reuse).
func newKids(prev *format.Tree, size int) kids {
	k := kids{prev: prev, size: size}
	if prev != nil && !prev.SkippedFields() && reuseTrees {
		k.same = true
	} else {
		k.nodes = make([]format.Node, 0, size)
	}
	return k
}

// diverge ends k.same: nodes gets the entries so far, which are prev's.
func (k *kids) diverge() {
	if !k.same {
		return
	}
	k.same = false
	k.nodes = make([]format.Node, k.n, max(k.size, k.n))
	copy(k.nodes, k.prev.Nodes[:k.n])
}

// aligned reports whether pn, the entry of the same name in prev, is at
// the position of the next entry.
func (k *kids) aligned(pn *format.Node) bool {
	return pn != nil && k.n < len(k.prev.Nodes) && pn == &k.prev.Nodes[k.n]
}

// add adds a final node; pn is the entry of its name in prev, or nil.
func (k *kids) add(n *format.Node, pn *format.Node) {
	if k.same && k.aligned(pn) && n.Equal(pn) {
		k.n++
		return
	}
	k.diverge()
	k.nodes = append(k.nodes, *n)
	k.n++
}

// wait adds an entry that fut resolves; pn is as for add.
func (k *kids) wait(fut *future, pn *format.Node) {
	if k.same && !k.aligned(pn) {
		k.diverge()
	}
	k.pending = append(k.pending, pendingKid{at: k.n, fut: fut})
	if !k.same {
		k.nodes = append(k.nodes, format.Node{}) // filled in once fut is done
	}
	k.n++
}

// end notes that every entry was added: prev may have had more.
func (k *kids) end() {
	if k.same && k.n != len(k.prev.Nodes) {
		k.diverge()
	}
}

// tree returns a future that, once all kids are done, stores their tree
// and resolves to its ID; with node set, it resolves to node with Subtree
// filled in.
func (ru *run) tree(futs []*future, node *format.Node) *future {
	k := newKids(nil, len(futs))
	for _, f := range futs {
		k.wait(f, nil)
	}
	return ru.dirTree(k, node, vaultapi.ID{}, nil, nil)
}

// dirTree is tree for kids, all added (see kids.end); prevID is the ID of
// k.prev. refs (the chunks of the entries that are final) are added with
// the tree's ID. rec, if not nil, is what the folder index records once
// the tree is known and no entry was skipped.
func (ru *run) dirTree(k kids, node *format.Node, prevID vaultapi.ID, refs []vaultapi.ID, rec *folderRec) *future {
	var f *future
	if node != nil {
		f = newFuture(*node)
	} else {
		f = newFuture(format.Node{})
	}
	if len(k.pending) == 0 && k.same {
		ru.keepPrevTree(f, k, prevID, refs, rec)
		close(f.done)
		return f
	}
	// Storing asks the vault (a round trip to a remote one) and may wait
	// for the packer: not in the walk's goroutine.
	go func() {
		defer close(f.done)
		skipped := false
		for _, p := range k.pending {
			if f.err = ru.await(p.fut); f.err != nil {
				return
			}
			if p.fut.skip {
				k.diverge()
				skipped = true
				k.nodes[p.at].Name = nil // dropped below
				continue
			}
			if k.same && p.fut.node.Equal(&k.prev.Nodes[p.at]) {
				continue
			}
			k.diverge()
			k.nodes[p.at] = p.fut.node
		}
		if k.same {
			ru.keepPrevTree(f, k, prevID, refs, rec)
			return
		}
		nodes := k.nodes
		if skipped {
			rec = nil
			nodes = dropSkipped(nodes)
		}
		ru.storeTree(f, nodes, refs)
		if rec != nil && f.err == nil {
			ru.record(rec, f.treeID, nodes)
		}
	}()
	return f
}

// dropSkipped drops the nodes without a name (skipped entries).
func dropSkipped(nodes []format.Node) []format.Node {
	out := nodes[:0]
	for _, n := range nodes {
		if n.Name != nil {
			out = append(out, n)
		}
	}
	clear(nodes[len(out):])
	return out
}

// storeTree stores the tree of nodes and settles f.
func (ru *run) storeTree(f *future, nodes []format.Node, refs []vaultapi.ID) {
	t := format.Tree{Nodes: nodes}
	enc, err := t.AppendEncode(nil)
	if err != nil {
		f.err = err
		ru.fail(err)
		return
	}
	id := ru.r.Hasher.ID(enc)
	if err := ru.storeBlob(vaultapi.KindTree, id, enc, nil); err != nil {
		f.err = err
		ru.fail(err)
		return
	}
	ru.settleTree(f, id, refs)
}

// reused tells the test hook of a tree reused.
func (ru *run) reused() {
	if onReuse != nil {
		onReuse()
	}
}

// settleTree adds the tree id and the refs of its entries to the point's,
// and sets f's tree ID and node's subtree.
func (ru *run) settleTree(f *future, id vaultapi.ID, refs []vaultapi.ID) {
	ru.addRefs(append(refs, id)...)
	f.treeID = id
	f.node.Subtree = id
}

// keepPrevTree settles f as k.prev, the parent point's tree prevID, and
// records it in the folder index when rec is set.
func (ru *run) keepPrevTree(f *future, k kids, prevID vaultapi.ID, refs []vaultapi.ID, rec *folderRec) {
	ru.reused()
	ru.settleTree(f, prevID, refs)
	if rec != nil {
		ru.record(rec, prevID, k.prev.Nodes)
	}
}

// await waits for fut and returns its fatal error, or the run's if the run
// ends first.
func (ru *run) await(fut *future) error {
	select {
	case <-fut.done:
		return fut.err
	case <-ru.ctx.Done():
		return ru.ctx.Err()
	}
}
