package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Lookup finds the node at an absolute path of the tree root ("/" is the
// root itself, as a directory node).
func (r *Repo) Lookup(ctx context.Context, root vaultapi.ID, p string) (*format.Node, error) {
	n := &format.Node{Name: []byte("/"), Type: format.TypeDir, Mode: 0o755, Subtree: root}
	clean := path.Clean("/" + p)
	if clean == "/" {
		return n, nil
	}
	for _, el := range strings.Split(strings.TrimPrefix(clean, "/"), "/") {
		if n.Type != format.TypeDir {
			return nil, fmt.Errorf("%s: %s is a %s, not a folder", clean, n.Name, n.Type)
		}
		t, err := r.Tree(ctx, n.Subtree)
		if err != nil {
			return nil, err
		}
		i, ok := slices.BinarySearchFunc(t.Nodes, el, func(n format.Node, s string) int {
			return strings.Compare(string(n.Name), s)
		})
		if !ok {
			return nil, fmt.Errorf("%s: %w", clean, vaultapi.ErrNotFound)
		}
		n = &t.Nodes[i]
	}
	return n, nil
}

// SkipDir, returned by a Walk function for a directory, skips its contents.
var SkipDir = errors.New("skip this directory")

// Walk calls fn for every entry under directory node dir, depth first in
// name order, with its path (p joined with the names).
func (r *Repo) Walk(ctx context.Context, dir *format.Node, p string, fn func(p string, n *format.Node) error) error {
	if dir.Type != format.TypeDir || dir.Subtree.IsZero() {
		return nil
	}
	t, err := r.Tree(ctx, dir.Subtree)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		cp := path.Join(p, string(n.Name))
		err := fn(cp, n)
		if errors.Is(err, SkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == format.TypeDir {
			if err := r.Walk(ctx, n, cp, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Change is one difference between two trees: Op is '+' (added), '-'
// (removed) or 'M' (changed: content, type or metadata).
type Change struct {
	Op     byte
	Path   string
	Old    *format.Node // nil when added
	New    *format.Node // nil when removed
	Detail string       // for 'M': what changed
}

// Diff calls fn for the differences between directory nodes a and b,
// skipping subtrees whose tree IDs are equal.
func (r *Repo) Diff(ctx context.Context, a, b *format.Node, p string, fn func(Change) error) error {
	if a.Subtree == b.Subtree {
		return nil
	}
	ta, err := r.Tree(ctx, a.Subtree)
	if err != nil {
		return err
	}
	tb, err := r.Tree(ctx, b.Subtree)
	if err != nil {
		return err
	}
	all := func(op byte, n *format.Node, cp string) error {
		c := Change{Op: op, Path: cp}
		if op == '+' {
			c.New = n
		} else {
			c.Old = n
		}
		if err := fn(c); err != nil {
			return err
		}
		return r.Walk(ctx, n, cp, func(sp string, sn *format.Node) error {
			c := Change{Op: op, Path: sp}
			if op == '+' {
				c.New = sn
			} else {
				c.Old = sn
			}
			return fn(c)
		})
	}
	i, j := 0, 0
	for i < len(ta.Nodes) || j < len(tb.Nodes) {
		var cmp int
		switch {
		case i == len(ta.Nodes):
			cmp = 1
		case j == len(tb.Nodes):
			cmp = -1
		default:
			cmp = bytes.Compare(ta.Nodes[i].Name, tb.Nodes[j].Name)
		}
		switch {
		case cmp < 0:
			na := &ta.Nodes[i]
			if err := all('-', na, path.Join(p, string(na.Name))); err != nil {
				return err
			}
			i++
		case cmp > 0:
			nb := &tb.Nodes[j]
			if err := all('+', nb, path.Join(p, string(nb.Name))); err != nil {
				return err
			}
			j++
		default:
			na, nb := &ta.Nodes[i], &tb.Nodes[j]
			cp := path.Join(p, string(na.Name))
			if na.Type != nb.Type {
				if err := all('-', na, cp); err != nil {
					return err
				}
				if err := all('+', nb, cp); err != nil {
					return err
				}
			} else {
				if d := NodeChanges(na, nb); d != "" {
					if err := fn(Change{Op: 'M', Path: cp, Old: na, New: nb, Detail: d}); err != nil {
						return err
					}
				}
				if na.Type == format.TypeDir {
					if err := r.Diff(ctx, na, nb, cp, fn); err != nil {
						return err
					}
				}
			}
			i++
			j++
		}
	}
	return nil
}

// NodeChanges names what differs between two nodes of one type, ignoring
// what a backup cannot keep stable (inode, device, ctime, atime) and, for
// directories, their contents.
func NodeChanges(a, b *format.Node) string {
	var d []string
	if a.Type == format.TypeFile && (!slices.Equal(a.Chunks, b.Chunks) || !slices.Equal(a.Extents, b.Extents)) || a.Size != b.Size {
		d = append(d, "content")
	}
	if a.Mode != b.Mode {
		d = append(d, "mode")
	}
	if a.UID != b.UID || a.GID != b.GID || a.User != b.User || a.Group != b.Group {
		d = append(d, "owner")
	}
	if a.MTime != b.MTime && a.Type != format.TypeDir {
		d = append(d, "mtime")
	}
	if !bytes.Equal(a.Target, b.Target) {
		d = append(d, "target")
	}
	if a.Rdev != b.Rdev {
		d = append(d, "device")
	}
	if !slices.EqualFunc(a.Xattrs, b.Xattrs, func(x, y format.Xattr) bool { return x.Name == y.Name && bytes.Equal(x.Value, y.Value) }) {
		d = append(d, "xattrs")
	}
	return strings.Join(d, ",")
}
