package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/coffer-backup/coffer/internal/storage"
)

// List implements storage.Storage. It walks only the directories that can
// hold names with the prefix. Directory entries are ordered by name, with
// "/" appended to directories, which gives the lexical order of the full
// object names: all names under directory "b" sort together, after "b-"
// and before "b0".
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	start := ""
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = prefix[:i]
	}
	err := s.walk(ctx, start, prefix, fn)
	var fnErr fnError
	if errors.As(err, &fnErr) {
		return fnErr.err
	}
	if err != nil {
		return fmt.Errorf("local: list %q: %w", prefix, err)
	}
	return nil
}

// fnError carries an error of List's fn through walk unwrapped.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

type entry struct {
	key string // name, plus "/" for a directory
	fs.DirEntry
}

func (s *Store) walk(ctx context.Context, rel, prefix string, fn func(storage.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	des, err := os.ReadDir(filepath.Join(s.root, filepath.FromSlash(rel)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
			return nil
		}
		return err
	}
	entries := make([]entry, 0, len(des))
	for _, de := range des {
		if rel == "" && de.Name() == tmpDir {
			continue
		}
		key := de.Name()
		if de.IsDir() {
			key += "/"
		}
		entries = append(entries, entry{key, de})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	for _, e := range entries {
		full := e.key
		if rel != "" {
			full = rel + "/" + e.key
		}
		if e.IsDir() {
			if strings.HasPrefix(full, prefix) || strings.HasPrefix(prefix, full) {
				if err := s.walk(ctx, strings.TrimSuffix(full, "/"), prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(full, prefix) {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		if err := fn(storage.Info{Name: full, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return fnError{err}
		}
	}
	return nil
}
