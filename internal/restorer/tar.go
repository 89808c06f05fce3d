package restorer

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
)

// WriteTar streams node (a file or a directory with everything in it) as a
// PAX tar archive, names relative to the point's top (no leading slash):
// p is node's path in the point. Hard links are written as links to their
// first member, extended attributes and ACLs as SCHILY.xattr records,
// times to the nanosecond. Holes of sparse files are written as zeros;
// sockets are left out.
func WriteTar(ctx context.Context, r *repo.Repo, cache *repo.ChunkCache, node *format.Node, p string, w io.Writer) error {
	tw := tar.NewWriter(w)
	links := map[uint64]string{}
	buf := make([]byte, 1<<20)
	add := func(p string, n *format.Node) error {
		name := strings.TrimPrefix(p, "/")
		if name == "" {
			return nil // the top itself
		}
		h := &tar.Header{Name: name, Mode: int64(n.Mode & 0o7777), Uid: int(n.UID), Gid: int(n.GID),
			Uname: n.User, Gname: n.Group, ModTime: time.Unix(0, n.MTime), AccessTime: time.Unix(0, n.ATime),
			Format: tar.FormatPAX}
		for _, x := range n.Xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+x.Name] = string(x.Value)
		}
		if n.LinkGroup != 0 && n.Type != format.TypeDir {
			if first, ok := links[n.LinkGroup]; ok {
				h.Typeflag, h.Linkname = tar.TypeLink, first
				return tw.WriteHeader(h)
			}
			links[n.LinkGroup] = name
		}
		switch n.Type {
		case format.TypeDir:
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		case format.TypeSymlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, string(n.Target)
		case format.TypeFIFO:
			h.Typeflag = tar.TypeFifo
		case format.TypeCharDev, format.TypeBlockDev:
			h.Typeflag = tar.TypeChar
			if n.Type == format.TypeBlockDev {
				h.Typeflag = tar.TypeBlock
			}
			h.Devmajor, h.Devminor = devMajor(n.Rdev), devMinor(n.Rdev)
		case format.TypeSocket:
			return nil
		case format.TypeFile:
			h.Typeflag, h.Size = tar.TypeReg, int64(n.Size)
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar %s: %w", p, err)
		}
		if n.Type != format.TypeFile || n.Size == 0 {
			return nil
		}
		f, err := r.OpenFile(ctx, cache, n)
		if err != nil {
			return err
		}
		for off := int64(0); off < f.Size(); {
			k, err := f.ReadAtContext(ctx, buf[:min(int64(len(buf)), f.Size()-off)], off)
			if err != nil && err != io.EOF {
				return err
			}
			if _, err := tw.Write(buf[:k]); err != nil {
				return err
			}
			off += int64(k)
		}
		return nil
	}
	if err := add(p, node); err != nil {
		return err
	}
	if err := r.Walk(ctx, node, p, add); err != nil {
		return err
	}
	return tw.Close()
}

// devMajor and devMinor split a Linux device number.
func devMajor(d uint64) int64 { return int64((d>>8)&0xfff | (d>>32)&^0xfff) }
func devMinor(d uint64) int64 { return int64(d&0xff | (d>>12)&^0xff) }
