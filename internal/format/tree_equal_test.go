package format

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// nodeMutators change one field of a node each, in the order of Node's
// fields; TestNodeEqualCoversFields keeps the list complete.
var nodeMutators = []func(r *rand.Rand, n *Node){
	func(r *rand.Rand, n *Node) { n.Name = append(slices.Clone(n.Name), 'x') },
	func(r *rand.Rand, n *Node) { n.Type++ },
	func(r *rand.Rand, n *Node) { n.Mode ^= 1 << r.IntN(12) },
	func(r *rand.Rand, n *Node) { n.UID++ },
	func(r *rand.Rand, n *Node) { n.GID++ },
	func(r *rand.Rand, n *Node) { n.User += "u" },
	func(r *rand.Rand, n *Node) { n.Group += "g" },
	func(r *rand.Rand, n *Node) { n.MTime++ },
	func(r *rand.Rand, n *Node) { n.ATime-- },
	func(r *rand.Rand, n *Node) { n.CTime ^= 1 << r.IntN(63) },
	func(r *rand.Rand, n *Node) { n.Size++ },
	func(r *rand.Rand, n *Node) { n.Inode++ },
	func(r *rand.Rand, n *Node) { n.Dev++ },
	func(r *rand.Rand, n *Node) { n.Links++ },
	func(r *rand.Rand, n *Node) {
		switch {
		case n.Target == nil:
			n.Target = []byte{} // an empty target is still written
		case r.IntN(2) == 0:
			n.Target = nil
		default:
			n.Target = append(slices.Clone(n.Target), 't')
		}
	},
	func(r *rand.Rand, n *Node) { n.Subtree[r.IntN(32)]++ },
	func(r *rand.Rand, n *Node) {
		n.Chunks = slices.Clone(n.Chunks)
		if len(n.Chunks) > 0 && r.IntN(2) == 0 {
			n.Chunks[r.IntN(len(n.Chunks))].ID[r.IntN(32)]++
			return
		}
		n.Chunks = append(n.Chunks, Chunk{Size: 1})
	},
	func(r *rand.Rand, n *Node) { n.Rdev++ },
	func(r *rand.Rand, n *Node) {
		n.Xattrs = slices.Clone(n.Xattrs)
		if len(n.Xattrs) > 0 && r.IntN(2) == 0 {
			x := &n.Xattrs[r.IntN(len(n.Xattrs))]
			x.Value = append(slices.Clone(x.Value), 'v')
			return
		}
		n.Xattrs = append(n.Xattrs, Xattr{Name: "user.x"})
	},
	func(r *rand.Rand, n *Node) { n.LinkGroup++ },
	func(r *rand.Rand, n *Node) { n.Extents = append(slices.Clone(n.Extents), Extent{Off: 1, Len: 1}) },
}

func TestNodeEqualCoversFields(t *testing.T) {
	if got, want := len(nodeMutators), reflect.TypeFor[Node]().NumField(); got != want {
		t.Fatalf("nodeMutators: got %d, want one per field of Node (%d)", got, want)
	}
}

// TestNodeEqualMatchesEncoding checks that Equal holds exactly when two
// nodes encode to the same bytes, for random nodes and one-field changes,
// and for the nil and empty forms of the lists.
func TestNodeEqualMatchesEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	checked := 0
	for checked < 2000 {
		tr := randomTree(r)
		for i := range tr.Nodes {
			a := &tr.Nodes[i]
			b := *a
			if !a.Equal(&b) {
				t.Fatalf("a node is not Equal to its copy: %+v", a)
			}
			nodeMutators[r.IntN(len(nodeMutators))](r, &b)
			wantNodeEqual(t, a, &b)
			c := *a
			c.Chunks, c.Xattrs, c.Extents = emptyOf(a.Chunks), emptyOf(a.Xattrs), emptyOf(a.Extents)
			d := c
			d.Chunks, d.Xattrs, d.Extents = nil, nil, nil
			wantNodeEqual(t, &c, &d)
			checked++
		}
	}
}

func emptyOf[T any](s []T) []T {
	if len(s) > 0 {
		return s
	}
	return []T{}
}

func wantNodeEqual(t *testing.T, a, b *Node) {
	t.Helper()
	same := bytes.Equal(a.appendFields(nil), b.appendFields(nil))
	if got := a.Equal(b); got != same {
		t.Fatalf("Equal: got %v, want %v (same encoding)\na %+v\nb %+v", got, same, a, b)
	}
	if got := b.Equal(a); got != same {
		t.Fatalf("Equal (swapped): got %v, want %v", got, same)
	}
}

// TestDecodedTreeReencodes checks what a backup relies on to reuse a
// tree's ID unseen: a decoded tree without skipped fields encodes to the
// bytes it came from, after the decoder's buffers were reused.
func TestDecodedTreeReencodes(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for range 300 {
		enc := encodeTree(t, randomTree(r))
		buf := slices.Clone(enc)
		tr, err := DecodeTree(buf)
		if err != nil {
			t.Fatal(err)
		}
		clear(buf) // the tree must not refer to its input
		if tr.SkippedFields() {
			t.Fatalf("SkippedFields of a tree of known fields")
		}
		if got := encodeTree(t, tr); !bytes.Equal(got, enc) {
			t.Fatalf("re-encoding differs:\ngot  %x\nwant %x", got, enc)
		}
	}
}

// TestDecodedListsAreCapped checks that appending to a decoded entry's
// lists cannot overwrite the next entry's.
func TestDecodedListsAreCapped(t *testing.T) {
	tr := &Tree{Nodes: []Node{
		{Name: []byte("a"), Target: []byte("t"), Chunks: []Chunk{{Size: 1}}},
		{Name: []byte("b"), Target: []byte("u"), Chunks: []Chunk{{Size: 2}}},
	}}
	got, err := DecodeTree(encodeTree(t, tr))
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got.Nodes[0].Name, 'z')
	_ = append(got.Nodes[0].Target, 'z')
	_ = append(got.Nodes[0].Chunks, Chunk{Size: 9})
	if string(got.Nodes[1].Name) != "b" || string(got.Nodes[1].Target) != "u" || got.Nodes[1].Chunks[0].Size != 2 {
		t.Fatalf("append to entry 0 changed entry 1: %+v", got.Nodes[1])
	}
}
