// Package memory is an in-memory storage.Storage, for unit tests of the code
// above storage. It keeps every object in memory; nothing is durable.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/internal/sized"
)

// Store is an in-memory storage.Storage. The zero value is not usable; call
// New.
type Store struct {
	now func() time.Time

	mu      sync.RWMutex
	objects map[string]object
}

type object struct {
	data    []byte // never modified once stored
	modTime time.Time
}

// New returns an empty store. now stamps ModTime; nil means zero times.
func New(now func() time.Time) *Store {
	if now == nil {
		now = func() time.Time { return time.Time{} }
	}
	return &Store{now: now, objects: make(map[string]object)}
}

var _ storage.Storage = (*Store)(nil)

// Put implements storage.Storage.
func (s *Store) Put(ctx context.Context, name string, r io.Reader, size int64, opts storage.PutOptions) error {
	if err := storage.CheckName(name); err != nil {
		return fmt.Errorf("memory: put: %w", err)
	}
	if size < 0 {
		return fmt.Errorf("memory: put %s: negative size %d", name, size)
	}
	var buf bytes.Buffer
	buf.Grow(int(min(size, 64<<20)))
	if _, err := io.Copy(&buf, sized.Reader(ctx, r, size)); err != nil {
		return fmt.Errorf("memory: put %s: %w", name, err)
	}
	if opts.Consumed != nil {
		opts.Consumed()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: put %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[name]; ok && opts.IfAbsent {
		return fmt.Errorf("memory: put %s: %w", name, storage.ErrExists)
	}
	s.objects[name] = object{data: buf.Bytes(), modTime: s.now()}
	return nil
}

// Get implements storage.Storage.
func (s *Store) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	o, err := s.lookup(ctx, "get", name)
	if err != nil {
		return nil, err
	}
	n, err := sized.Range(off, length, int64(len(o.data)))
	if err != nil {
		return nil, fmt.Errorf("memory: get %s: %w", name, err)
	}
	return io.NopCloser(bytes.NewReader(o.data[off : off+n])), nil
}

// Stat implements storage.Storage.
func (s *Store) Stat(ctx context.Context, name string) (storage.Info, error) {
	o, err := s.lookup(ctx, "stat", name)
	if err != nil {
		return storage.Info{}, err
	}
	return storage.Info{Name: name, Size: int64(len(o.data)), ModTime: o.modTime}, nil
}

func (s *Store) lookup(ctx context.Context, op, name string) (object, error) {
	if err := storage.CheckName(name); err != nil {
		return object{}, fmt.Errorf("memory: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return object{}, fmt.Errorf("memory: %s %s: %w", op, name, err)
	}
	s.mu.RLock()
	o, ok := s.objects[name]
	s.mu.RUnlock()
	if !ok {
		return object{}, fmt.Errorf("memory: %s %s: %w", op, name, storage.ErrNotFound)
	}
	return o, nil
}

// List implements storage.Storage. It works on a snapshot of the names
// taken when it starts.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	s.mu.RLock()
	var infos []storage.Info
	for name, o := range s.objects {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, storage.Info{Name: name, Size: int64(len(o.data)), ModTime: o.modTime})
		}
	}
	s.mu.RUnlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memory: list %q: %w", prefix, err)
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements storage.Storage.
func (s *Store) Delete(ctx context.Context, name string) error {
	if _, err := s.lookup(ctx, "delete", name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[name]; !ok {
		return fmt.Errorf("memory: delete %s: %w", name, storage.ErrNotFound)
	}
	delete(s.objects, name)
	return nil
}
