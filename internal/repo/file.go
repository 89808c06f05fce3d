package repo

import (
	"container/list"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// ChunkCache keeps recently read data chunks in memory, up to a byte
// budget, and loads each missing chunk once however many readers ask for
// it at the same time. Chunk buffers are recycled once evicted and no
// longer read, so a long sequential read makes little garbage. It is safe
// for concurrent use.
type ChunkCache struct {
	r   *Repo
	max int64

	mu    sync.Mutex
	size  int64
	items map[vaultapi.ID]*cacheItem
	lru   *list.List // of *cacheItem, most recent first
	sem   chan struct{}
	pool  sync.Pool // of *[]byte
	disk  *DiskCache
	// openers keep the groups opened last, whose other chunks a reader
	// going through a folder's small files is likely to want next.
	openers sync.Pool // of *ChunkOpener
}

type cacheItem struct {
	id      vaultapi.ID
	done    chan struct{}
	data    []byte
	err     error
	elem    *list.Element
	refs    int  // readers copying from data
	evicted bool // data goes back to the pool when refs drops to 0
}

// NewChunkCache returns a cache of at most maxBytes of chunks; loads run at
// most parallel at a time.
func (r *Repo) NewChunkCache(maxBytes int64, parallel int) *ChunkCache {
	return &ChunkCache{r: r, max: maxBytes, items: make(map[vaultapi.ID]*cacheItem), lru: list.New(),
		sem: make(chan struct{}, max(parallel, 1))}
}

// UseDisk adds a second tier: chunks are also kept, sealed, in d.
func (c *ChunkCache) UseDisk(d *DiskCache) { c.disk = d }

func (c *ChunkCache) buf(n int) []byte {
	if p, ok := c.pool.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]byte, n, (n+1<<20-1)&^(1<<20-1)) // whole MiBs, so buffers fit later chunks
}

func (c *ChunkCache) recycle(b []byte) { c.pool.Put(&b) }

// Get returns the plaintext of the data chunk at loc, of size bytes. The
// caller must not modify it and must call release once done reading it.
func (c *ChunkCache) Get(ctx context.Context, loc vaultapi.Location, size uint32) ([]byte, func(), error) {
	var it *cacheItem
	for {
		it = c.start(loc, size)
		select {
		case <-it.done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		if it.err != nil {
			return nil, nil, it.err
		}
		c.mu.Lock()
		if !it.evicted { // else its buffer may be reused already: load again
			it.refs++
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
	}
	return it.data, sync.OnceFunc(func() {
		c.mu.Lock()
		it.refs--
		if it.refs == 0 && it.evicted {
			c.recycle(it.data)
		}
		c.mu.Unlock()
	}), nil
}

// Prefetch starts loading loc in the background if it is not cached.
func (c *ChunkCache) Prefetch(loc vaultapi.Location, size uint32) { c.start(loc, size) }

func (c *ChunkCache) start(loc vaultapi.Location, size uint32) *cacheItem {
	c.mu.Lock()
	if it, ok := c.items[loc.ID]; ok {
		if it.elem != nil {
			c.lru.MoveToFront(it.elem)
		}
		c.mu.Unlock()
		return it
	}
	it := &cacheItem{id: loc.ID, done: make(chan struct{})}
	c.items[loc.ID] = it
	c.mu.Unlock()
	go func() {
		c.sem <- struct{}{}
		data, err := c.load(loc, size)
		<-c.sem
		it.data, it.err = data, err
		c.mu.Lock()
		if err != nil {
			delete(c.items, loc.ID) // a later read tries again
		} else {
			it.elem = c.lru.PushFront(it)
			c.size += int64(cap(data))
			for c.size > c.max && c.lru.Len() > 1 {
				old := c.lru.Remove(c.lru.Back()).(*cacheItem)
				delete(c.items, old.id)
				c.size -= int64(cap(old.data))
				old.evicted = true
				if old.refs == 0 {
					c.recycle(old.data)
				}
			}
		}
		c.mu.Unlock()
		close(it.done)
	}()
	return it
}

// load reads, authenticates and decrypts one data chunk into a recycled
// buffer, from the disk tier if it holds it, else from the vault.
func (c *ChunkCache) load(loc vaultapi.Location, size uint32) ([]byte, error) {
	if c.disk != nil {
		if sealed, ok := c.disk.get(loc.ID, c.buf(int(loc.Length))); ok {
			plain, err := c.open(loc, sealed, size)
			c.recycle(sealed)
			if err == nil {
				return plain, nil
			}
			c.disk.remove(loc.ID) // damaged on disk: fetch it again
		}
	}
	if loc.Pack == "" || loc.Kind != vaultapi.KindData {
		return nil, fmt.Errorf("data blob %s: %w: the vault does not hold it", loc.ID.Short(), vaultapi.ErrDamaged)
	}
	rc, err := c.r.Vault.ReadPack(context.Background(), loc.Pack, int64(loc.Offset), int64(loc.Length))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", loc.ID.Short(), err)
	}
	sealed := c.buf(int(loc.Length))
	_, err = io.ReadFull(rc, sealed)
	rc.Close()
	if err != nil {
		c.recycle(sealed)
		return nil, fmt.Errorf("read blob %s: %w", loc.ID.Short(), err)
	}
	var keep []byte
	if c.disk != nil && !format.IsGroup(sealed) {
		// Open decrypts in place. A group is not kept on disk: every
		// chunk in it would keep a copy of the whole group.
		keep = append([]byte(nil), sealed...)
	}
	plain, err := c.open(loc, sealed, size)
	c.recycle(sealed)
	if err != nil {
		return nil, err
	}
	if keep != nil {
		c.disk.put(loc.ID, keep)
	}
	return plain, nil
}

// open authenticates and decrypts the chunk at loc, of size bytes, from
// sealed (its blob or group, overwritten) into a recycled buffer.
func (c *ChunkCache) open(loc vaultapi.Location, sealed []byte, size uint32) ([]byte, error) {
	dst := c.buf(int(size))[:0]
	if !format.IsGroup(sealed) {
		plain, err := c.r.openData(loc.ID, sealed, dst, false)
		if err != nil {
			c.recycle(dst)
		}
		return plain, err
	}
	o, _ := c.openers.Get().(*ChunkOpener)
	if o == nil {
		o = c.r.NewChunkOpener()
	}
	plain, err := o.Open(loc, sealed)
	if err == nil {
		plain = append(dst, plain...)
	} else {
		c.recycle(dst)
	}
	c.openers.Put(o)
	return plain, err
}

// FileReader reads a file node's content: random access through a chunk
// cache, holes of sparse files read as zeros, and the next chunks fetched
// ahead of a reader going forward.
type FileReader struct {
	cache     *ChunkCache
	node      *format.Node
	layout    *format.Layout
	locs      []vaultapi.Location
	ReadAhead int // chunks fetched ahead; default 8
}

// OpenFile locates a file node's chunks and returns a reader of it.
func (r *Repo) OpenFile(ctx context.Context, c *ChunkCache, n *format.Node) (*FileReader, error) {
	if n.Type != format.TypeFile {
		return nil, fmt.Errorf("open %q: a %s, not a file", n.Name, n.Type)
	}
	l, err := format.NewLayout(n)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w: %v", n.Name, vaultapi.ErrDamaged, err)
	}
	ids := make([]vaultapi.ID, len(n.Chunks))
	for i, ch := range n.Chunks {
		ids[i] = ch.ID
	}
	var locs []vaultapi.Location
	const batch = 10000
	for i := 0; i < len(ids); i += batch {
		ls, err := r.Vault.Locate(ctx, ids[i:min(i+batch, len(ids))])
		if err != nil {
			return nil, fmt.Errorf("open %q: %w", n.Name, err)
		}
		locs = append(locs, ls...)
	}
	return &FileReader{cache: c, node: n, layout: l, locs: locs, ReadAhead: 8}, nil
}

// Size is the file's size.
func (f *FileReader) Size() int64 { return int64(f.layout.Size()) }

// ReadAtContext reads len(p) bytes at off (fewer only at the end of the
// file, with io.EOF).
func (f *FileReader) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %q: negative offset", f.node.Name)
	}
	done := 0
	for done < len(p) {
		i, co, n := f.layout.At(uint64(off) + uint64(done))
		if n == 0 {
			return done, io.EOF
		}
		n = min(n, uint64(len(p)-done))
		if i < 0 {
			clear(p[done : done+int(n)])
		} else {
			data, release, err := f.cache.Get(ctx, f.locs[i], f.node.Chunks[i].Size)
			if err != nil {
				return done, fmt.Errorf("read %q: %w", f.node.Name, err)
			}
			if uint64(len(data)) < co+n {
				release()
				return done, fmt.Errorf("read %q: %w: chunk %d is short", f.node.Name, vaultapi.ErrDamaged, i)
			}
			copy(p[done:], data[co:co+n])
			release()
			for k := i + 1; k <= i+f.ReadAhead && k < len(f.locs); k++ {
				f.cache.Prefetch(f.locs[k], f.node.Chunks[k].Size)
			}
		}
		done += int(n)
	}
	return done, nil
}

// ReadAt implements io.ReaderAt.
func (f *FileReader) ReadAt(p []byte, off int64) (int, error) {
	return f.ReadAtContext(context.Background(), p, off)
}

// Prefetch starts fetching the chunks from the one holding offset off,
// ReadAhead of them.
func (f *FileReader) Prefetch(off int64) {
	i, _, n := f.layout.At(uint64(max(off, 0)))
	for i < 0 && n > 0 { // in a hole: from the next data
		off += int64(n)
		i, _, n = f.layout.At(uint64(off))
	}
	for k := max(i, 0); i >= 0 && k < i+f.ReadAhead && k < len(f.locs); k++ {
		f.cache.Prefetch(f.locs[k], f.node.Chunks[k].Size)
	}
}
