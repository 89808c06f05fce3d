package repo

import (
	"container/list"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// DiskCache keeps sealed chunks (as stored: encrypted and authenticated,
// so nothing readable lands on disk) in a folder of the agent's cache, up
// to a byte budget, the least recently used dropped first. It saves
// fetching a chunk from the vault again once memory has let it go. Writes
// happen in the background and are dropped when the writer falls behind,
// so the cache never slows a reader down. Safe for concurrent use.
type DiskCache struct {
	dir string
	max int64

	mu    sync.Mutex
	size  int64
	lru   *list.List // of diskEntry, most recent first
	items map[vaultapi.ID]*list.Element

	writes chan diskWrite
	done   chan struct{}
}

type diskEntry struct {
	id   vaultapi.ID
	size int64
}

type diskWrite struct {
	id   vaultapi.ID
	data []byte
}

// OpenDiskCache opens (creating) a cache folder of at most maxBytes and
// indexes what an earlier run left in it.
func OpenDiskCache(dir string, maxBytes int64) (*DiskCache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("chunk cache: %w", err)
	}
	d := &DiskCache{dir: dir, max: maxBytes, lru: list.New(), items: map[vaultapi.ID]*list.Element{},
		writes: make(chan diskWrite, 16), done: make(chan struct{})}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("chunk cache: %w", err)
	}
	type found struct {
		e    diskEntry
		used int64
	}
	var fs []found
	for _, e := range ents {
		id, err := vaultapi.ParseID(e.Name())
		info, ierr := e.Info()
		if err != nil || ierr != nil || !info.Mode().IsRegular() {
			os.Remove(filepath.Join(dir, e.Name())) // a temporary file of a crashed run
			continue
		}
		fs = append(fs, found{diskEntry{id, info.Size()}, info.ModTime().UnixNano()})
	}
	slices.SortFunc(fs, func(a, b found) int { return int(b.used - a.used) })
	for _, f := range fs {
		d.items[f.e.id] = d.lru.PushBack(f.e)
		d.size += f.e.size
	}
	d.trim()
	go d.writer()
	return d, nil
}

func (d *DiskCache) path(id vaultapi.ID) string { return filepath.Join(d.dir, id.String()) }

// get reads a cached sealed chunk into buf; ok is false if it is not here.
func (d *DiskCache) get(id vaultapi.ID, buf []byte) ([]byte, bool) {
	d.mu.Lock()
	e, ok := d.items[id]
	if ok {
		d.lru.MoveToFront(e)
	}
	d.mu.Unlock()
	if !ok {
		return buf, false
	}
	f, err := os.Open(d.path(id))
	if err != nil {
		d.remove(id)
		return buf, false
	}
	defer f.Close()
	size := e.Value.(diskEntry).size
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := f.ReadAt(buf, 0); err != nil {
		d.remove(id)
		return buf, false
	}
	return buf, true
}

// put stores a sealed chunk in the background; data is kept, not copied.
func (d *DiskCache) put(id vaultapi.ID, data []byte) {
	select {
	case d.writes <- diskWrite{id, data}:
	default: // the writer is behind: skip this one
	}
}

// remove drops a chunk (unreadable, or failing authentication).
func (d *DiskCache) remove(id vaultapi.ID) {
	d.mu.Lock()
	if e, ok := d.items[id]; ok {
		d.lru.Remove(e)
		delete(d.items, id)
		d.size -= e.Value.(diskEntry).size
	}
	d.mu.Unlock()
	os.Remove(d.path(id))
}

func (d *DiskCache) writer() {
	defer close(d.done)
	for w := range d.writes {
		d.mu.Lock()
		_, have := d.items[w.id]
		d.mu.Unlock()
		if have || int64(len(w.data)) > d.max {
			continue
		}
		tmp := d.path(w.id) + ".tmp"
		if err := os.WriteFile(tmp, w.data, 0o600); err != nil {
			os.Remove(tmp)
			continue
		}
		if err := os.Rename(tmp, d.path(w.id)); err != nil {
			os.Remove(tmp)
			continue
		}
		d.mu.Lock()
		d.items[w.id] = d.lru.PushFront(diskEntry{w.id, int64(len(w.data))})
		d.size += int64(len(w.data))
		d.mu.Unlock()
		d.trim()
	}
}

func (d *DiskCache) trim() {
	d.mu.Lock()
	var drop []vaultapi.ID
	for d.size > d.max && d.lru.Len() > 0 {
		e := d.lru.Remove(d.lru.Back()).(diskEntry)
		delete(d.items, e.id)
		d.size -= e.size
		drop = append(drop, e.id)
	}
	d.mu.Unlock()
	for _, id := range drop {
		os.Remove(d.path(id))
	}
}

// Close waits for pending writes.
func (d *DiskCache) Close() error {
	close(d.writes)
	<-d.done
	return nil
}
