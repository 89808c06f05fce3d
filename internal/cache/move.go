package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/coffer-backup/coffer/internal/atomicfile"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Move moves the cache folder of the agent's home to dst, in steps that
// survive an interruption at any point:
//
//  1. a journal in the home records the move (from, to);
//  2. every file is copied to dst (written to a temporary name, synced,
//     renamed), and every directory synced;
//  3. the pointer file is replaced atomically: from here on the cache is
//     dst;
//  4. the old folder is removed, then the journal.
//
// Run again after an interruption, Move finishes the move the journal
// records (dst may then be empty). It refuses a dst inside the cache or
// the cache inside dst, and a dst that exists and is not empty.
func Move(home, dst string, progress io.Writer) (string, error) {
	if progress == nil {
		progress = io.Discard
	}
	j, err := readJournal(home)
	if err != nil {
		return "", err
	}
	if j != nil {
		if dst != "" && !samePath(dst, j.To) {
			return "", fmt.Errorf("cache move: an interrupted move to %s is unfinished; run coffer cache move %s (or with no DIR) first", j.To, j.To)
		}
		fmt.Fprintf(progress, "finishing the interrupted move from %s to %s\n", j.From, j.To)
		return j.To, finish(home, *j, progress)
	}
	if dst == "" {
		return "", errors.New("cache move: name the new folder (coffer cache move DIR)")
	}
	dst, err = filepath.Abs(dst)
	if err != nil {
		return "", err
	}
	src, err := Dir(home)
	if err != nil {
		return "", err
	}
	if samePath(src, dst) {
		return dst, nil
	}
	if within(dst, src) || within(src, dst) {
		return "", fmt.Errorf("cache move: %s and %s are inside one another", src, dst)
	}
	if ents, err := os.ReadDir(dst); err == nil && len(ents) > 0 {
		return "", fmt.Errorf("cache move: %s exists and is not empty; name a new or empty folder", dst)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return "", fmt.Errorf("cache move: %w", err)
	}
	if err := CheckFree(dst, dirSize(src)+Reserve); err != nil {
		return "", fmt.Errorf("cache move: %w", err)
	}
	jb, _ := json.Marshal(journal{From: src, To: dst})
	if err := writeAtomic(filepath.Join(home, JournalName), jb); err != nil {
		return "", fmt.Errorf("cache move: %w", err)
	}
	return dst, finish(home, journal{From: src, To: dst}, progress)
}

func finish(home string, j journal, progress io.Writer) error {
	cur, err := Dir(home)
	if err != nil {
		return err
	}
	if !samePath(cur, j.To) {
		if _, err := os.Stat(j.From); err == nil {
			fmt.Fprintf(progress, "copying %s to %s\n", j.From, j.To)
			if err := copyTree(j.From, j.To); err != nil {
				return fmt.Errorf("cache move: copy: %w (run coffer cache move again to resume)", err)
			}
		} else if err := os.MkdirAll(j.To, 0o700); err != nil {
			return fmt.Errorf("cache move: %w", err)
		}
		if err := writeAtomic(filepath.Join(home, PointerName), []byte(j.To+"\n")); err != nil {
			return fmt.Errorf("cache move: switch: %w", err)
		}
		atomicfile.SyncDir(home)
	}
	fmt.Fprintf(progress, "the cache folder is now %s; removing %s\n", j.To, j.From)
	if err := os.RemoveAll(j.From); err != nil {
		return fmt.Errorf("cache move: remove the old folder: %w (run coffer cache move again to finish)", err)
	}
	if err := os.Remove(filepath.Join(home, JournalName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	atomicfile.SyncDir(home)
	return nil
}

// copyTree copies the files and directories of src into dst, overwriting
// what an earlier, interrupted copy left; symlinks are recreated.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if err := os.MkdirAll(to, 0o700); err != nil {
				return err
			}
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			os.Remove(to)
			return os.Symlink(l, to)
		case d.Type().IsRegular():
			if err := copyFile(p, to); err != nil {
				return err
			}
			atomicfile.SyncDir(filepath.Dir(to))
			return nil
		}
		return nil // sockets and the like are not cache content
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	tmp := to + ".coffer-move"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, to)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// writeAtomic writes a small file whole or not at all.
func writeAtomic(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o600)
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func samePath(a, b string) bool { return filepath.Clean(a) == filepath.Clean(b) }

// within reports whether p is inside dir (or is dir).
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && (rel == "." || !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel))
}
