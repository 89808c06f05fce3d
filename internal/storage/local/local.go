// Package local is a storage.Storage on a local directory: each object is a
// file, its slash-separated name mapped to subdirectories.
//
// Put writes a temporary file in the store's temporary directory (".coffer-tmp"
// at its top, which List skips and object names may not use), syncs it, then
// moves it into place: rename(2) to overwrite, link(2) for put-if-absent
// (link fails when the name exists, so two writers cannot both win), and
// syncs the directory. A crash leaves at most a temporary file, never a
// partial object; Clean removes old temporary files.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/internal/sized"
)

// tmpDir is the directory, at the top of the store, that holds temporary
// files of Puts in progress.
const tmpDir = ".coffer-tmp"

// Store is a storage.Storage on a local directory.
type Store struct {
	root string
	tmp  string

	// noLink serializes put-if-absent where the file system has no hard
	// links: Stat then rename is then race-free within this process only.
	noLink sync.Mutex
}

var _ storage.Storage = (*Store)(nil)

// New returns the store on dir, creating dir if it is missing.
func New(dir string) (*Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	s := &Store{root: root, tmp: filepath.Join(root, tmpDir)}
	if err := os.MkdirAll(s.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("local: create store directory: %w", err)
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.root }

// path checks name and returns its file.
func (s *Store) path(op, name string) (string, error) {
	if err := storage.CheckName(name); err != nil {
		return "", fmt.Errorf("local: %s: %w", op, err)
	}
	if name == tmpDir || strings.HasPrefix(name, tmpDir+"/") {
		return "", fmt.Errorf("local: %s: object name %q is reserved for temporary files", op, name)
	}
	return filepath.Join(s.root, filepath.FromSlash(name)), nil
}

// Put implements storage.Storage.
func (s *Store) Put(ctx context.Context, name string, r io.Reader, size int64, opts storage.PutOptions) (err error) {
	path, err := s.path("put", name)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("local: put %s: %w", name, err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	if opts.IfAbsent {
		// Not needed for correctness (link decides), but spares writing
		// an object that is already there.
		if _, err := os.Lstat(path); err == nil {
			return storage.ErrExists
		}
	}
	tmp, err := s.writeTemp(ctx, r, size, opts.Consumed)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // after link, or if anything fails
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := s.mkdirs(dir); err != nil {
		return err
	}
	if opts.IfAbsent {
		err = s.link(tmp, path)
	} else {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return err
	}
	return syncDir(dir)
}

// writeTemp writes the body to a new temporary file, synced and closed,
// calling consumed (if set) between the write and the sync.
func (s *Store) writeTemp(ctx context.Context, r io.Reader, size int64, consumed func()) (string, error) {
	f, err := os.CreateTemp(s.tmp, "put-*")
	if errors.Is(err, fs.ErrNotExist) {
		// Someone removed the temporary directory: make it again.
		if err = os.MkdirAll(s.tmp, 0o700); err == nil {
			f, err = os.CreateTemp(s.tmp, "put-*")
		}
	}
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, sized.Reader(ctx, r, size))
	if err == nil {
		if consumed != nil {
			consumed()
		}
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// link makes tmp appear at path unless path exists.
func (s *Store) link(tmp, path string) error {
	err := os.Link(tmp, path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return storage.ErrExists
	case errors.Is(err, fs.ErrNotExist):
		return err
	}
	// No hard links on this file system (FAT, some network shares).
	s.noLink.Lock()
	defer s.noLink.Unlock()
	if _, err := os.Lstat(path); err == nil {
		return storage.ErrExists
	}
	return os.Rename(tmp, path)
}

// mkdirs is os.MkdirAll that also syncs the parent of each directory it
// creates, so that a durable object is reachable after a crash.
func (s *Store) mkdirs(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is a file, not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if len(dir) <= len(s.root) || parent == dir {
		return os.MkdirAll(dir, 0o700)
	}
	if err := s.mkdirs(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// Get implements storage.Storage.
func (s *Store) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	path, err := s.path("get", name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local: get %s: %w", name, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("local: get %s: %w", name, notFound(err))
	}
	n, err := func() (int64, error) {
		fi, err := f.Stat()
		if err != nil {
			return 0, err
		}
		if !fi.Mode().IsRegular() {
			return 0, storage.ErrNotFound
		}
		n, err := sized.Range(off, length, fi.Size())
		if err != nil {
			return 0, err
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return 0, err
		}
		return n, nil
	}()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("local: get %s: %w", name, err)
	}
	return &section{Reader: io.LimitReader(f, n), f: f}, nil
}

type section struct {
	io.Reader
	f *os.File
}

func (s *section) Close() error { return s.f.Close() }

// Stat implements storage.Storage.
func (s *Store) Stat(ctx context.Context, name string) (storage.Info, error) {
	path, err := s.path("stat", name)
	if err != nil {
		return storage.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, fmt.Errorf("local: stat %s: %w", name, err)
	}
	fi, err := os.Stat(path)
	if err == nil && !fi.Mode().IsRegular() {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.Info{}, fmt.Errorf("local: stat %s: %w", name, notFound(err))
	}
	return storage.Info{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements storage.Storage. It leaves empty directories behind:
// removing them would race with Puts into them.
func (s *Store) Delete(ctx context.Context, name string) error {
	path, err := s.path("delete", name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: delete %s: %w", name, err)
	}
	fi, err := os.Lstat(path)
	if err == nil && fi.IsDir() {
		err = storage.ErrNotFound
	}
	if err == nil {
		err = os.Remove(path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("local: delete %s: %w", name, notFound(err))
	}
	return nil
}

// notFound maps the errors of a missing file to storage.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w (%v)", storage.ErrNotFound, err)
	}
	return err
}

// Clean removes the temporary files of Puts that started before the given
// time: those of crashed processes. Give it a time well before any Put still
// running (an hour ago, say). It returns how many files it removed.
func (s *Store) Clean(before time.Time) (int, error) {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("local: clean: %w", err)
	}
	removed := 0
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(before) {
			continue
		}
		if err := os.Remove(filepath.Join(s.tmp, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("local: clean: %w", err)
		}
		removed++
	}
	return removed, nil
}
