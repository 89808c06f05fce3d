package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// NodeType is the type of a directory entry.
type NodeType uint8

const (
	TypeFile     NodeType = 1
	TypeDir      NodeType = 2
	TypeSymlink  NodeType = 3
	TypeFIFO     NodeType = 4
	TypeCharDev  NodeType = 5
	TypeBlockDev NodeType = 6
	TypeSocket   NodeType = 7
)

func (t NodeType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeFIFO:
		return "fifo"
	case TypeCharDev:
		return "chardev"
	case TypeBlockDev:
		return "blockdev"
	case TypeSocket:
		return "socket"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Chunk is one piece of a file's content.
type Chunk struct {
	ID   vaultapi.ID
	Size uint32 // plaintext bytes
}

// Xattr is one extended attribute (POSIX ACLs travel as the
// system.posix_acl_* attributes).
type Xattr struct {
	Name  string
	Value []byte
}

// Extent is a data region of a sparse file: Chunks cover the extents in
// order; bytes outside every extent are holes.
type Extent struct {
	Off, Len uint64
}

// Node is one entry of a directory.
type Node struct {
	Name    []byte // one path element: bytes, not assumed UTF-8
	Type    NodeType
	Mode    uint32 // permission bits with setuid, setgid and sticky (07777)
	UID     uint32
	GID     uint32
	User    string
	Group   string
	MTime   int64 // nanoseconds since the Unix epoch
	ATime   int64
	CTime   int64 // for change detection; not restored
	Size    uint64
	Inode   uint64 // for change detection and hard links; not restored
	Dev     uint64
	Links   uint32
	Target  []byte      // symlink target
	Subtree vaultapi.ID // directory: its tree blob
	Chunks  []Chunk     // file content
	Rdev    uint64      // device nodes
	Xattrs  []Xattr
	// LinkGroup is non-zero for a file with several hard links in the
	// backup; entries of one group share the number.
	LinkGroup uint64
	Extents   []Extent // sparse files only
}

// Tree is a directory listing: its entries sorted by name, bytewise.
type Tree struct {
	Nodes []Node

	// skipped is set by DecodeTree when it dropped fields of a newer
	// format version: such a tree encodes to other bytes than it came from.
	skipped bool
}

// SkippedFields reports whether decoding dropped fields that this version
// does not know. A tree without them encodes (AppendEncode) to exactly the
// bytes it was decoded from, so it keeps its ID.
func (t *Tree) SkippedFields() bool { return t.skipped }

// Field tags of the node encoding; see doc/FORMAT.md, "Trees".
const (
	tagName = iota + 1
	tagType
	tagMode
	tagUID
	tagGID
	tagUser
	tagGroup
	tagMTime
	tagATime
	tagCTime
	tagSize
	tagInode
	tagDev
	tagLinks
	tagTarget
	tagSubtree
	tagChunk
	tagRdev
	tagXattr
	tagLinkGroup
	tagExtent
)

const (
	wireVarint = 0
	wireBytes  = 2
	treeMagic  = 1 // first byte of an encoded tree: the tree format version
)

// ErrTree is wrapped by every tree decoding error.
var ErrTree = errors.New("tree: bad encoding")

func putVarint(b []byte, tag int, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = binary.AppendUvarint(b, uint64(tag)<<3|wireVarint)
	return binary.AppendUvarint(b, v)
}

func putSigned(b []byte, tag int, v int64) []byte {
	return putVarint(b, tag, uint64(v<<1)^uint64(v>>63))
}

func putBytes(b []byte, tag int, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(tag)<<3|wireBytes)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// SortNodes sorts nodes by name, as Encode requires.
func SortNodes(nodes []Node) {
	slices.SortFunc(nodes, func(a, b Node) int { return bytes.Compare(a.Name, b.Name) })
}

// AppendEncode appends the canonical encoding of t to b. Nodes must be
// sorted by name with no duplicates. Zero-valued fields are omitted, so
// equal trees encode to equal bytes.
func (t *Tree) AppendEncode(b []byte) ([]byte, error) {
	b = slices.Grow(b, t.sizeHint())
	b = append(b, treeMagic)
	b = binary.AppendUvarint(b, uint64(len(t.Nodes)))
	var nbuf [512]byte
	nb := nbuf[:0]
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if len(n.Name) == 0 {
			return nil, fmt.Errorf("tree encode: entry %d has an empty name", i)
		}
		if i > 0 && bytes.Compare(t.Nodes[i-1].Name, n.Name) >= 0 {
			return nil, fmt.Errorf("tree encode: entries not sorted or duplicated at %q", n.Name)
		}
		for _, c := range n.Chunks {
			if c.Size == 0 || c.Size > MaxPlain {
				return nil, fmt.Errorf("tree encode: entry %q has a chunk of %d bytes", n.Name, c.Size)
			}
		}
		nb = n.appendFields(nb[:0])
		b = binary.AppendUvarint(b, uint64(len(nb)))
		b = append(b, nb...)
	}
	return b, nil
}

// sizeHint is about the size of t's encoding, a little more as a rule,
// so that encoding allocates once.
func (t *Tree) sizeHint() int {
	size := 1 + binary.MaxVarintLen64
	for i := range t.Nodes {
		n := &t.Nodes[i]
		// Fixed fields take up to 70 bytes, mostly 40 to 50.
		size += 72 + len(n.Name) + len(n.User) + len(n.Group) + len(n.Target) +
			len(n.Chunks)*(2+32+4) + len(n.Extents)*(2+20)
		if !n.Subtree.IsZero() {
			size += 2 + 32
		}
		for _, x := range n.Xattrs {
			size += 4 + len(x.Name) + len(x.Value)
		}
	}
	return size
}

func (n *Node) appendFields(b []byte) []byte {
	b = putBytes(b, tagName, n.Name)
	b = putVarint(b, tagType, uint64(n.Type))
	b = putVarint(b, tagMode, uint64(n.Mode))
	b = putVarint(b, tagUID, uint64(n.UID))
	b = putVarint(b, tagGID, uint64(n.GID))
	if n.User != "" {
		b = putBytes(b, tagUser, []byte(n.User))
	}
	if n.Group != "" {
		b = putBytes(b, tagGroup, []byte(n.Group))
	}
	b = putSigned(b, tagMTime, n.MTime)
	b = putSigned(b, tagATime, n.ATime)
	b = putSigned(b, tagCTime, n.CTime)
	b = putVarint(b, tagSize, n.Size)
	b = putVarint(b, tagInode, n.Inode)
	b = putVarint(b, tagDev, n.Dev)
	b = putVarint(b, tagLinks, uint64(n.Links))
	if n.Target != nil {
		b = putBytes(b, tagTarget, n.Target)
	}
	if !n.Subtree.IsZero() {
		b = putBytes(b, tagSubtree, n.Subtree[:])
	}
	var tmp [32 + binary.MaxVarintLen64]byte
	for _, c := range n.Chunks {
		copy(tmp[:], c.ID[:])
		l := 32 + binary.PutUvarint(tmp[32:], uint64(c.Size))
		b = putBytes(b, tagChunk, tmp[:l])
	}
	b = putVarint(b, tagRdev, n.Rdev)
	for _, x := range n.Xattrs {
		v := binary.AppendUvarint(tmp[:0], uint64(len(x.Name)))
		v = append(v, x.Name...)
		v = append(v, x.Value...)
		b = putBytes(b, tagXattr, v)
	}
	b = putVarint(b, tagLinkGroup, n.LinkGroup)
	for _, e := range n.Extents {
		v := binary.AppendUvarint(tmp[:0], e.Off)
		v = binary.AppendUvarint(v, e.Len)
		b = putBytes(b, tagExtent, v)
	}
	return b
}

// Equal reports whether n and o encode to the same bytes: every field
// that encoding writes is equal. A tree whose entries are all Equal to
// those of a decoded tree (without SkippedFields) encodes to the bytes
// that tree came from, so it has the same ID.
func (n *Node) Equal(o *Node) bool {
	return n.Type == o.Type && n.Mode == o.Mode && n.UID == o.UID && n.GID == o.GID &&
		n.MTime == o.MTime && n.ATime == o.ATime && n.CTime == o.CTime &&
		n.Size == o.Size && n.Inode == o.Inode && n.Dev == o.Dev && n.Links == o.Links &&
		n.Subtree == o.Subtree && n.Rdev == o.Rdev && n.LinkGroup == o.LinkGroup &&
		n.User == o.User && n.Group == o.Group && bytes.Equal(n.Name, o.Name) &&
		(n.Target == nil) == (o.Target == nil) && bytes.Equal(n.Target, o.Target) &&
		slices.Equal(n.Chunks, o.Chunks) && slices.Equal(n.Extents, o.Extents) &&
		slices.EqualFunc(n.Xattrs, o.Xattrs, func(a, b Xattr) bool {
			return a.Name == b.Name && bytes.Equal(a.Value, b.Value)
		})
}

// minNodeSize is the size of the smallest encoded entry: its length, and
// a name field of one byte (key, length, byte).
const minNodeSize = 4

// DecodeTree decodes an encoded tree. It accepts only the canonical
// encoding that AppendEncode produces (minimal varints, fields in tag
// order, zero values omitted, values in range, entries sorted by unique
// non-empty names), except that fields with tags it does not know are
// skipped (SkippedFields reports it). It checks structure but not whether
// names are safe to write to a file system, nor whether a file's chunks
// add up to its size: restore checks those, so it can name the entry.
//
// The tree does not refer to b. Its names, targets and attribute values
// share one copy of b, and its chunk lists one array, so a tree costs a
// few allocations however many entries it has; they must not be modified
// in place.
func DecodeTree(b []byte) (*Tree, error) {
	if len(b) == 0 || b[0] != treeMagic {
		return nil, fmt.Errorf("%w: unknown version", ErrTree)
	}
	b = b[1:]
	count, k := uvarint(b)
	if k <= 0 || count > uint64(len(b)-k)/minNodeSize {
		return nil, fmt.Errorf("%w: bad entry count", ErrTree)
	}
	b = bytes.Clone(b[k:]) // names and values point into this copy
	t := &Tree{Nodes: make([]Node, count)}
	d := treeDecoder{t: t, chunks: make([]Chunk, 0, count)} // about one a file
	for i := range t.Nodes {
		l, k := uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, fmt.Errorf("%w: entry %d: bad length", ErrTree, i)
		}
		if err := d.decodeFields(&t.Nodes[i], b[k:k+int(l)]); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrTree, i, err)
		}
		if len(t.Nodes[i].Name) == 0 {
			return nil, fmt.Errorf("%w: entry %d has no name", ErrTree, i)
		}
		if i > 0 && bytes.Compare(t.Nodes[i-1].Name, t.Nodes[i].Name) >= 0 {
			return nil, fmt.Errorf("%w: entries not sorted at %d", ErrTree, i)
		}
		b = b[k+int(l):]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrTree, len(b))
	}
	// Chunks went into one growing array, node after node: point every
	// node's list into the final array.
	off := 0
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if l := len(n.Chunks); l > 0 {
			n.Chunks = d.chunks[off : off+l : off+l]
			off += l
		}
	}
	return t, nil
}

// treeDecoder holds what the entries of one tree share while decoding.
type treeDecoder struct {
	t           *Tree
	chunks      []Chunk // every entry's chunks, in order
	user, group string  // the last ones seen, reused when repeated
}

// uvarint is binary.Uvarint that also refuses non-minimal encodings (a
// last byte of zero after others), so that every value has one encoding.
func uvarint(b []byte) (uint64, int) {
	v, k := binary.Uvarint(b)
	if k > 1 && b[k-1] == 0 {
		return 0, 0
	}
	return v, k
}

// repeated reports whether a field may occur more than once in a row:
// the list fields, and fields newer than this version (which may be lists).
func repeated(tag uint64) bool {
	return tag == tagChunk || tag == tagXattr || tag == tagExtent || tag > tagExtent
}

func (d *treeDecoder) decodeFields(n *Node, b []byte) error {
	var last uint64 // tag of the previous field
	for len(b) > 0 {
		key, k := uvarint(b)
		if k <= 0 {
			return errors.New("bad field key")
		}
		b = b[k:]
		tag, wire := key>>3, key&7
		switch {
		case tag == 0:
			return errors.New("field tag 0")
		case tag < last || tag == last && !repeated(tag):
			return fmt.Errorf("field %d after field %d", tag, last)
		}
		last = tag
		var v uint64
		var bs []byte
		switch wire {
		case wireVarint:
			v, k = uvarint(b)
			if k <= 0 {
				return fmt.Errorf("field %d: bad varint", tag)
			}
			b = b[k:]
		case wireBytes:
			l, k := uvarint(b)
			if k <= 0 || l > uint64(len(b)-k) {
				return fmt.Errorf("field %d: bad length", tag)
			}
			bs = b[k : k+int(l)]
			b = b[k+int(l):]
		default:
			return fmt.Errorf("field %d: unknown wire type %d", tag, wire)
		}
		if err := d.setField(n, tag, wire, v, bs); err != nil {
			return err
		}
	}
	return nil
}

func unzig(v uint64) int64 { return int64(v>>1) ^ -int64(v&1) }

// bytesOf returns bs, a part of the decoder's copy of the tree, capped so
// that appending to it copies.
func bytesOf(bs []byte) []byte { return bs[:len(bs):len(bs)] }

func (d *treeDecoder) setField(n *Node, tag, wire uint64, v uint64, bs []byte) error {
	if tag > tagExtent { // a newer field: skip
		d.t.skipped = true
		return nil
	}
	want := uint64(wireVarint)
	switch tag {
	case tagName, tagUser, tagGroup, tagTarget, tagSubtree, tagChunk, tagXattr, tagExtent:
		want = wireBytes
	}
	if wire != want {
		return fmt.Errorf("field %d: wrong wire type %d", tag, wire)
	}
	if wire == wireVarint {
		if v == 0 {
			return fmt.Errorf("field %d: zero value not omitted", tag)
		}
		limit := uint64(math.MaxUint64)
		switch tag {
		case tagType:
			limit = math.MaxUint8
		case tagMode, tagUID, tagGID, tagLinks:
			limit = math.MaxUint32
		}
		if v > limit {
			return fmt.Errorf("field %d: value %d out of range", tag, v)
		}
	}
	if (tag == tagUser || tag == tagGroup) && len(bs) == 0 {
		return fmt.Errorf("field %d: empty value not omitted", tag)
	}
	switch tag {
	case tagName:
		n.Name = bytesOf(bs)
	case tagType:
		n.Type = NodeType(v)
	case tagMode:
		n.Mode = uint32(v)
	case tagUID:
		n.UID = uint32(v)
	case tagGID:
		n.GID = uint32(v)
	case tagUser:
		if d.user != string(bs) {
			d.user = string(bs)
		}
		n.User = d.user
	case tagGroup:
		if d.group != string(bs) {
			d.group = string(bs)
		}
		n.Group = d.group
	case tagMTime:
		n.MTime = unzig(v)
	case tagATime:
		n.ATime = unzig(v)
	case tagCTime:
		n.CTime = unzig(v)
	case tagSize:
		n.Size = v
	case tagInode:
		n.Inode = v
	case tagDev:
		n.Dev = v
	case tagLinks:
		n.Links = uint32(v)
	case tagTarget:
		n.Target = bytesOf(bs)
	case tagSubtree:
		if len(bs) != 32 || [32]byte(bs) == [32]byte{} {
			return errors.New("subtree id is not 32 non-zero bytes")
		}
		copy(n.Subtree[:], bs)
	case tagChunk:
		if len(bs) < 33 {
			return errors.New("chunk field too short")
		}
		var c Chunk
		copy(c.ID[:], bs)
		size, k := uvarint(bs[32:])
		if k <= 0 || 32+k != len(bs) || size == 0 || size > MaxPlain {
			return errors.New("bad chunk size")
		}
		c.Size = uint32(size)
		// The node's list is fixed up to point into the final array once
		// every entry is decoded; until then it only counts.
		d.chunks = append(d.chunks, c)
		n.Chunks = d.chunks[len(d.chunks)-len(n.Chunks)-1:]
	case tagRdev:
		n.Rdev = v
	case tagXattr:
		l, k := uvarint(bs)
		if k <= 0 || l > uint64(len(bs)-k) {
			return errors.New("bad xattr")
		}
		n.Xattrs = append(n.Xattrs, Xattr{Name: string(bs[k : k+int(l)]), Value: bytesOf(bs[k+int(l):])})
	case tagLinkGroup:
		n.LinkGroup = v
	case tagExtent:
		off, k1 := uvarint(bs)
		if k1 <= 0 {
			return errors.New("bad extent")
		}
		l, k2 := uvarint(bs[k1:])
		if k2 <= 0 || k1+k2 != len(bs) {
			return errors.New("bad extent")
		}
		n.Extents = append(n.Extents, Extent{Off: off, Len: l})
	}
	return nil
}
