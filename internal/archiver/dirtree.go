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
type kids struct {
	nodes   []format.Node
	pending []pendingKid
}

// pendingKid is an entry whose node comes from a future.
type pendingKid struct {
	at  int // index in nodes
	fut *future
}

// wait adds an entry that fut resolves.
func (k *kids) wait(fut *future) {
	k.pending = append(k.pending, pendingKid{at: len(k.nodes), fut: fut})
	k.nodes = append(k.nodes, format.Node{})
}

// tree returns a future that, once all kids are done, stores their tree
// and resolves to its ID; with node set, it resolves to node with Subtree
// filled in.
func (ru *run) tree(futs []*future, node *format.Node) *future {
	k := kids{nodes: make([]format.Node, 0, len(futs))}
	for _, f := range futs {
		k.wait(f)
	}
	return ru.dirTree(k, node, nil, vaultapi.ID{}, nil)
}

// dirTree is tree for kids. prev is the directory's tree in the parent
// point and prevID its ID: when every entry comes out Equal to prev's,
// the tree is prev's, byte for byte, and it keeps prevID without being
// encoded, hashed or looked up again. refs (the chunks of the entries
// that are final) are added with the tree's ID.
func (ru *run) dirTree(k kids, node *format.Node, prev *format.Tree, prevID vaultapi.ID, refs []vaultapi.ID) *future {
	var f *future
	if node != nil {
		f = newFuture(*node)
	} else {
		f = newFuture(format.Node{})
	}
	if len(k.pending) == 0 && ru.reuse(k.nodes, prev) {
		ru.settleTree(f, prevID, refs)
		close(f.done)
		return f
	}
	// Storing asks the vault (a round trip to a remote one) and may wait
	// for the packer: not in the walk's goroutine.
	go func() {
		defer close(f.done)
		skipped := false
		for _, p := range k.pending {
			select {
			case <-p.fut.done:
			case <-ru.ctx.Done():
				f.err = ru.ctx.Err()
				return
			}
			if p.fut.err != nil {
				f.err = p.fut.err
				return
			}
			if p.fut.skip {
				skipped = true
				k.nodes[p.at].Name = nil // dropped below
				continue
			}
			k.nodes[p.at] = p.fut.node
		}
		nodes := k.nodes
		if skipped {
			nodes = dropSkipped(nodes)
		}
		ru.finishTree(f, nodes, prev, prevID, refs)
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

// finishTree stores the tree of nodes, or reuses prevID, and settles f.
func (ru *run) finishTree(f *future, nodes []format.Node, prev *format.Tree, prevID vaultapi.ID, refs []vaultapi.ID) {
	id := prevID
	if !ru.reuse(nodes, prev) {
		t := format.Tree{Nodes: nodes}
		enc, err := t.AppendEncode(nil)
		if err != nil {
			f.err = err
			ru.fail(err)
			return
		}
		id = ru.r.Hasher.ID(enc)
		if err := ru.storeBlob(vaultapi.KindTree, id, enc); err != nil {
			f.err = err
			ru.fail(err)
			return
		}
	}
	ru.settleTree(f, id, refs)
}

// reuse reports whether the tree of nodes is prev (and tells the test
// hook).
func (ru *run) reuse(nodes []format.Node, prev *format.Tree) bool {
	if !reuseTrees || !sameTree(nodes, prev) {
		return false
	}
	if onReuse != nil {
		onReuse()
	}
	return true
}

// settleTree adds the tree id and the refs of its entries to the point's,
// and sets f's tree ID and node's subtree.
func (ru *run) settleTree(f *future, id vaultapi.ID, refs []vaultapi.ID) {
	ru.addRefs(append(refs, id)...)
	f.treeID = id
	f.node.Subtree = id
}

// sameTree reports whether nodes encode to the bytes prev was decoded
// from (see format.Node.Equal).
func sameTree(nodes []format.Node, prev *format.Tree) bool {
	if prev == nil || prev.SkippedFields() || len(nodes) != len(prev.Nodes) {
		return false
	}
	for i := range nodes {
		if !nodes[i].Equal(&prev.Nodes[i]) {
			return false
		}
	}
	return true
}
