//go:build linux

package fusefs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/repo"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"
)

// Options of a mount.
type Options struct {
	Repo  *repo.Repo
	Cache *repo.ChunkCache // default: 256 MiB in memory
	// IdleTimeout unmounts after this long without a request; 0 never.
	IdleTimeout time.Duration
	// Refresh is how often the list of points is read again; default 10 s.
	Refresh time.Duration
	// Ready, if set, is called once the mount is up.
	Ready func()
	// Clock, default time.Now, for the idle timeout and point refreshes.
	Clock func() time.Time
}

// fsys is the state the nodes share.
type fsys struct {
	o        Options
	lastUse  atomic.Int64 // unix ns
	mu       sync.Mutex
	points   []pointDir
	loadedAt time.Time
}

type pointDir struct {
	name  string
	point vaultapi.Point
}

func (f *fsys) touch() { f.lastUse.Store(f.o.Clock().UnixNano()) }

// pointList returns the points, read again when older than Refresh.
func (f *fsys) pointList(ctx context.Context) ([]pointDir, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.o.Clock()
	if f.points != nil && now.Sub(f.loadedAt) < f.o.Refresh {
		return f.points, nil
	}
	ps, err := f.o.Repo.Vault.Points(ctx)
	if err != nil {
		if f.points != nil {
			return f.points, nil // keep serving what we have
		}
		return nil, err
	}
	out := make([]pointDir, 0, len(ps))
	seen := map[string]bool{}
	for _, p := range ps {
		name := p.Time.UTC().Format("2006-01-02T15:04:05Z")
		if seen[name] {
			name += "_" + p.ID[:8]
		}
		seen[name] = true
		out = append(out, pointDir{name: name, point: p})
	}
	f.points, f.loadedAt = out, now
	return out, nil
}

// errno maps an error to the errno a FUSE request answers.
func errno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, vaultapi.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return syscall.EINTR
	}
	return syscall.EIO
}

// root is the top folder.
type root struct {
	fs.Inode
	f *fsys
}

var (
	_ fs.NodeLookuper  = (*root)(nil)
	_ fs.NodeReaddirer = (*root)(nil)
	_ fs.NodeGetattrer = (*root)(nil)
)

func (r *root) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	out.SetTimeout(time.Second)
	return 0
}

func (r *root) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	r.f.touch()
	ps, err := r.f.pointList(ctx)
	if err != nil {
		return nil, errno(err)
	}
	ents := make([]fuse.DirEntry, 0, len(ps)+1)
	for _, p := range ps {
		ents = append(ents, fuse.DirEntry{Name: p.name, Mode: syscall.S_IFDIR})
	}
	if len(ps) > 0 {
		ents = append(ents, fuse.DirEntry{Name: "latest", Mode: syscall.S_IFLNK})
	}
	return fs.NewListDirStream(ents), 0
}

func (r *root) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	r.f.touch()
	ps, err := r.f.pointList(ctx)
	if err != nil {
		return nil, errno(err)
	}
	out.SetEntryTimeout(time.Second)
	out.SetAttrTimeout(time.Second)
	if name == "latest" && len(ps) > 0 {
		l := &latest{target: ps[len(ps)-1].name}
		out.Mode = syscall.S_IFLNK | 0o777
		out.Size = uint64(len(l.target))
		return r.NewInode(ctx, l, fs.StableAttr{Mode: syscall.S_IFLNK}), 0
	}
	i := slices.IndexFunc(ps, func(p pointDir) bool { return p.name == name })
	if i < 0 {
		return nil, syscall.ENOENT
	}
	p := ps[i].point
	m, err := r.f.o.Repo.Manifest(ctx, p)
	if err != nil {
		return nil, errno(err)
	}
	n := &format.Node{Name: []byte(name), Type: format.TypeDir, Mode: 0o755, MTime: p.Time.UnixNano(),
		ATime: p.Time.UnixNano(), CTime: p.Time.UnixNano(), Subtree: m.Root}
	d := &node{f: r.f, n: n, point: p.ID}
	d.attr(&out.Attr)
	return r.NewInode(ctx, d, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: inoFor(p.ID, 0)}), 0
}

// latest is the symlink to the newest point's folder.
type latest struct {
	fs.Inode
	target string
}

func (l *latest) Readlink(ctx context.Context) ([]byte, syscall.Errno) { return []byte(l.target), 0 }

func (l *latest) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFLNK | 0o777
	out.Size = uint64(len(l.target))
	out.SetTimeout(time.Second)
	return 0
}

// inoFor gives a stable inode number to a point folder (group 0) or to
// a hard-link group of a point, so that all its links share one inode.
// The numbers stay below the ones go-fuse assigns itself (from 2^63).
func inoFor(point string, group uint64) uint64 {
	h := blake3.New()
	h.Write([]byte(point))
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], group)
	h.Write(b[:])
	sum := h.Sum(nil)
	return binary.LittleEndian.Uint64(sum)&(1<<62-1) | 1<<62
}

// node is an entry of a point.
type node struct {
	fs.Inode
	f     *fsys
	n     *format.Node
	point string

	mu     sync.Mutex
	reader *repo.FileReader
}

var (
	_ fs.NodeLookuper    = (*node)(nil)
	_ fs.NodeReaddirer   = (*node)(nil)
	_ fs.NodeGetattrer   = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeReader      = (*node)(nil)
	_ fs.NodeReadlinker  = (*node)(nil)
	_ fs.NodeGetxattrer  = (*node)(nil)
	_ fs.NodeListxattrer = (*node)(nil)
	_ fs.NodeLseeker     = (*node)(nil)
)

func typeBits(t format.NodeType) uint32 {
	switch t {
	case format.TypeDir:
		return syscall.S_IFDIR
	case format.TypeSymlink:
		return syscall.S_IFLNK
	case format.TypeFIFO:
		return syscall.S_IFIFO
	case format.TypeCharDev:
		return syscall.S_IFCHR
	case format.TypeBlockDev:
		return syscall.S_IFBLK
	case format.TypeSocket:
		return syscall.S_IFSOCK
	}
	return syscall.S_IFREG
}

func (d *node) attr(a *fuse.Attr) {
	n := d.n
	a.Mode = typeBits(n.Type) | n.Mode&0o7777
	a.Size = n.Size
	if n.Type == format.TypeSymlink {
		a.Size = uint64(len(n.Target))
	}
	a.Uid, a.Gid = n.UID, n.GID
	a.Mtime, a.Mtimensec = uint64(n.MTime/1e9), uint32(n.MTime%1e9)
	a.Atime, a.Atimensec = uint64(n.ATime/1e9), uint32(n.ATime%1e9)
	a.Ctime, a.Ctimensec = a.Mtime, a.Mtimensec
	if n.CTime != 0 {
		a.Ctime, a.Ctimensec = uint64(n.CTime/1e9), uint32(n.CTime%1e9)
	}
	a.Nlink = 1
	if n.LinkGroup != 0 && n.Links > 1 {
		a.Nlink = n.Links
	}
	if n.Type == format.TypeDir {
		a.Nlink = 2
	}
	a.Rdev = uint32(n.Rdev)
	data := n.Size
	if n.Extents != nil {
		data = 0
		for _, x := range n.Extents {
			data += x.Len
		}
	}
	a.Blocks = (data + 511) / 512
	a.Blksize = 4096
}

func (d *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.attr(&out.Attr)
	return 0
}

func (d *node) tree(ctx context.Context) (*format.Tree, syscall.Errno) {
	if d.n.Type != format.TypeDir {
		return nil, syscall.ENOTDIR
	}
	t, err := d.f.o.Repo.Tree(ctx, d.n.Subtree)
	if err != nil {
		return nil, errno(err)
	}
	return t, 0
}

func (d *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	d.f.touch()
	t, e := d.tree(ctx)
	if e != 0 {
		return nil, e
	}
	ents := make([]fuse.DirEntry, 0, len(t.Nodes))
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.Type == format.TypeSocket || !safeName(n.Name) {
			continue
		}
		ents = append(ents, fuse.DirEntry{Name: string(n.Name), Mode: typeBits(n.Type)})
	}
	return fs.NewListDirStream(ents), 0
}

// safeName leaves out names the kernel would refuse (from a damaged or
// crafted point).
func safeName(b []byte) bool {
	s := string(b)
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

func (d *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	d.f.touch()
	t, e := d.tree(ctx)
	if e != 0 {
		return nil, e
	}
	i, ok := slices.BinarySearchFunc(t.Nodes, name, func(n format.Node, s string) int {
		return strings.Compare(string(n.Name), s)
	})
	if !ok || t.Nodes[i].Type == format.TypeSocket || !safeName(t.Nodes[i].Name) {
		return nil, syscall.ENOENT
	}
	c := &node{f: d.f, n: &t.Nodes[i], point: d.point}
	c.attr(&out.Attr)
	sa := fs.StableAttr{Mode: typeBits(c.n.Type)}
	if c.n.LinkGroup != 0 && c.n.Type != format.TypeDir {
		sa.Ino = inoFor(d.point, c.n.LinkGroup)
	}
	return d.NewInode(ctx, c, sa), 0
}

func (d *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if d.n.Type != format.TypeSymlink {
		return nil, syscall.EINVAL
	}
	return d.n.Target, 0
}

func (d *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	d.f.touch()
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	if d.n.Type != format.TypeFile {
		return nil, 0, syscall.EINVAL
	}
	if _, e := d.open(ctx); e != 0 {
		return nil, 0, e
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

// open returns the file's reader, locating its chunks on first use.
func (d *node) open(ctx context.Context) (*repo.FileReader, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reader == nil {
		fr, err := d.f.o.Repo.OpenFile(ctx, d.f.o.Cache, d.n)
		if err != nil {
			return nil, errno(err)
		}
		d.reader = fr
		fr.Prefetch(0) // most opens are followed by a read from the start
	}
	return d.reader, 0
}

func (d *node) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	d.f.touch()
	fr, e := d.open(ctx)
	if e != 0 {
		return nil, e
	}
	if off >= fr.Size() {
		return fuse.ReadResultData(nil), 0
	}
	n, err := fr.ReadAtContext(ctx, dest[:min(int64(len(dest)), fr.Size()-off)], off)
	if err != nil && n == 0 {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// Lseek answers SEEK_DATA and SEEK_HOLE from the file's extents.
func (d *node) Lseek(ctx context.Context, fh fs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	size := d.n.Size
	if off >= size {
		return 0, syscall.ENXIO
	}
	ext := d.n.Extents
	if ext == nil {
		if whence == unix.SEEK_DATA {
			return off, 0
		}
		return size, 0
	}
	for _, x := range ext {
		if x.Len == 0 || off >= x.Off+x.Len {
			continue
		}
		if whence == unix.SEEK_DATA {
			return max(off, x.Off), 0
		}
		if off >= x.Off { // in data: the hole starts at its end
			return x.Off + x.Len, 0
		}
		return off, 0 // in a hole already
	}
	if whence == unix.SEEK_DATA {
		return 0, syscall.ENXIO
	}
	return off, 0
}

func (d *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	for _, x := range d.n.Xattrs {
		if x.Name != attr {
			continue
		}
		if len(dest) == 0 {
			return uint32(len(x.Value)), 0
		}
		if len(dest) < len(x.Value) {
			return uint32(len(x.Value)), syscall.ERANGE
		}
		return uint32(copy(dest, x.Value)), 0
	}
	return 0, syscall.ENODATA
}

func (d *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	var b []byte
	for _, x := range d.n.Xattrs {
		b = append(append(b, x.Name...), 0)
	}
	if len(dest) == 0 {
		return uint32(len(b)), 0
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

// Run mounts the points at dir and serves until ctx is done or the mount
// was idle for IdleTimeout; then it unmounts and returns.
func Run(ctx context.Context, dir string, o Options) error {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Refresh <= 0 {
		o.Refresh = 10 * time.Second
	}
	if o.Cache == nil {
		o.Cache = o.Repo.NewChunkCache(256<<20, 16)
	}
	if err := available(); err != nil {
		return err
	}
	f := &fsys{o: o}
	f.touch()
	if _, err := f.pointList(ctx); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	long := time.Hour
	opts := &fs.Options{
		EntryTimeout: &long, AttrTimeout: &long,
		MountOptions: fuse.MountOptions{
			FsName: "coffer", Name: "coffer", Options: []string{"ro", "default_permissions"},
			MaxReadAhead: 1 << 20, MaxWrite: 1 << 20, MaxBackground: 64,
			DirectMount: unix.Geteuid() == 0, AllowOther: unix.Geteuid() == 0,
		},
	}
	srv, err := fs.Mount(dir, &root{f: f}, opts)
	if err != nil && opts.DirectMount {
		opts.DirectMount = false // try the fusermount helper
		srv, err = fs.Mount(dir, &root{f: f}, opts)
	}
	if err != nil {
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	if o.Ready != nil {
		o.Ready()
	}
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-done:
			return nil // unmounted from outside
		case <-ctx.Done():
			break loop
		case <-tick.C:
			if o.IdleTimeout > 0 && o.Clock().Sub(time.Unix(0, f.lastUse.Load())) >= o.IdleTimeout {
				break loop
			}
		}
	}
	for i := 0; ; i++ {
		err := srv.Unmount()
		if err == nil {
			break
		}
		if i == 50 { // busy for 10 s: detach lazily
			_ = unix.Unmount(dir, unix.MNT_DETACH)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	<-done
	return nil
}

// available checks for /dev/fuse and, when not root, the fusermount3
// helper.
func available() error {
	return availableAt("/dev/fuse", unix.Geteuid() == 0,
		[]string{"/usr/bin/fusermount3", "/bin/fusermount3", "/usr/bin/fusermount", "/bin/fusermount"})
}

func availableAt(dev string, root bool, helpers []string) error {
	if err := unix.Access(dev, unix.R_OK|unix.W_OK); err != nil {
		return fmt.Errorf("%w (%s: %v)", ErrUnavailable, dev, err)
	}
	if root {
		return nil
	}
	for _, p := range helpers {
		if unix.Access(p, unix.X_OK) == nil {
			return nil
		}
	}
	return fmt.Errorf("%w (no fusermount3 helper found)", ErrUnavailable)
}
