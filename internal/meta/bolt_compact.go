package meta

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/coffer-backup/coffer/internal/atomicfile"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// bbolt never gives space back: a page freed by a transaction stays in the
// file for later ones. A transaction rewrites every page it touches, and
// blob IDs are random, so indexing one pack touches pages all over the blob
// index; after a large backup the file holds the index about twice. Closing
// the store therefore rewrites the file without its free pages when they
// are worth it (CloseCompact), and opening it makes sure that the file it
// locked is still the one at the path.

const (
	// compactMin and compactFraction: CloseCompact rewrites the file when
	// its free space is at least compactMin and at least 1/compactFraction
	// of the file. bbolt reuses free pages, so a file no more than half
	// free stays about where it is: the next backup's changes fill them.
	// With a quarter, the first backup of a tree (its index merged three
	// times, its pending entries freed: 37 % of the file) paid a copy of
	// the file, about 5 % of its time; with a half it keeps those pages,
	// and a purge that frees most of the file still shrinks it.
	compactMin = 1 << 20
	// compactMax: larger files are left alone, so that closing stays quick.
	compactMax = 1 << 30
	// compactTxSize bounds the bytes of keys and values the copy writes
	// in one transaction, and so its memory. It must stay well above the
	// largest value (a point's reference set, megabytes): a transaction
	// that ends right after one rewrites that value's leaf in the next, and
	// the copy then keeps the old one as free pages (with 1 MiB, a quarter
	// of the copy was free, so every close compacted again). The copy is
	// synced once, at its end.
	compactTxSize = 64 << 20
	// openTries bounds how often OpenBolt starts again because the file it
	// locked was replaced by another process's compaction meanwhile.
	openTries = 10
)

// compactFraction: see compactMin (a variable for the tests of the copy).
var compactFraction int64 = 2

var errCompacted = errors.New("compacted")

func boltOptions() *bolt.Options {
	o := &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType}
	if runtime.GOOS != "windows" && strconv.IntSize == 64 {
		// Map address space for growth up front. When the file outgrows
		// the map, bbolt maps it again in the middle of the write, first
		// copying every node the transaction holds into the heap: at a
		// backup's commit, megabytes. The map is only address space; pages
		// become resident as read. (On Windows, bbolt grows the file to
		// the size of the map, so there it is left to grow as needed.)
		o.InitialMmapSize = 1 << 30
	}
	return o
}

// openDB opens the bbolt file at path and locks it. If the file it locked
// is no longer the one at path (another process compacted it while this
// one waited for the lock), it starts again.
func openDB(path string) (*bolt.DB, error) {
	for try := 1; ; try++ {
		var f *os.File
		opts := boltOptions()
		opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
			g, err := os.OpenFile(name, flag, perm)
			if f == nil {
				f = g
			}
			return g, err
		}
		db, err := bolt.Open(path, 0o600, opts)
		if err != nil {
			if errors.Is(err, berrors.ErrTimeout) {
				return nil, fmt.Errorf("open vault metadata %s: another Coffer process holds it; wait for it to finish", path)
			}
			return nil, fmt.Errorf("open vault metadata: %w", err)
		}
		if try < openTries && f != nil && replaced(path, f) {
			db.Close()
			continue
		}
		// Grow the file a mebibyte at a time, not bbolt's default 16 MiB:
		// the slack counts as vault size for anyone measuring the directory.
		db.AllocSize = 1 << 20
		return db, nil
	}
}

// replaced reports whether the file at path is not (any longer) f.
func replaced(path string, f *os.File) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err != nil || !os.SameFile(a, b)
}

// waste returns how many bytes of the file are free pages (below the
// high-water mark), how many lie past the high-water mark (bbolt grows the
// file ahead of use), and the high-water mark.
func (s *Bolt) waste() (free, slack, used int64, err error) {
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		return 0, 0, 0, err
	}
	if err := s.db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		return 0, 0, 0, err
	}
	st := s.db.Stats()
	free = int64(st.FreePageN+st.PendingPageN) * int64(s.db.Info().PageSize)
	return free, max(fi.Size()-used, 0), used, nil
}

// CloseCompact closes the store like Close, first rewriting its file
// without free pages if they take at least half of it (and 1 MiB).
// The copy is written beside the file, synced, and renamed over it while
// the file is still locked, so a crash leaves one whole file or the other.
// Where the file cannot be replaced while open (Windows), or if the copy
// fails, the file is left as it is: compaction only saves space, so its
// failure is not an error. The caller must not use the store concurrently.
//
// Without enough free pages to be worth a copy, the room bbolt allocated
// past the last page in use is cut off instead (a truncate, while the file
// is still locked): counting it as waste made nearly every close rewrite
// the whole file, since any write grows a compacted file ahead of use.
func (s *Bolt) CloseCompact() error {
	if runtime.GOOS == "windows" {
		return s.Close()
	}
	free, slack, used, err := s.waste()
	switch {
	case err != nil:
	case used+slack <= compactMax && free >= compactMin && free*compactFraction >= used:
		s.compact()
	case slack > 0 && used > 0:
		os.Truncate(s.db.Path(), used) // best effort, like compaction
	}
	return s.Close()
}

// compact rewrites the file; see CloseCompact.
func (s *Bolt) compact() {
	path := s.db.Path()
	tmp := path + ".compact"
	os.Remove(tmp)
	// The write transaction only keeps other writers out during the copy.
	err := s.db.Update(func(src *bolt.Tx) error {
		// Mapping the copy at its final size up front spares bbolt a remap,
		// and with it a copy of every node, while it writes the copy.
		dst, err := bolt.Open(tmp, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType,
			InitialMmapSize: int(src.Size())})
		if err != nil {
			return err
		}
		dst.AllocSize = 64 << 10
		// The copy is synced once, below, before it replaces the file.
		dst.NoSync, dst.NoGrowSync = true, true
		err = copyAll(dst, src, compactTxSize)
		if err == nil {
			err = dst.Sync()
		}
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, path)
		}
		if err == nil {
			err = errCompacted // nothing to commit to the old file
		}
		return err
	})
	if !errors.Is(err, errCompacted) {
		os.Remove(tmp)
		return
	}
	atomicfile.SyncDir(filepath.Dir(path))
}

// copyAll copies every bucket of src into the empty store dst, nested
// buckets and sequences included, filling dst's pages (keys arrive in
// order). It commits after every txSize bytes of keys and values.
func copyAll(dst *bolt.DB, src *bolt.Tx, txSize int) error {
	tx, err := dst.Begin(true)
	if err != nil {
		return err
	}
	c := &copier{db: dst, tx: tx, max: txSize}
	defer func() { c.tx.Rollback() }()
	err = src.ForEach(func(name []byte, b *bolt.Bucket) error {
		if _, err := c.tx.CreateBucket(name); err != nil {
			return err
		}
		return c.copy([][]byte{name}, b)
	})
	if err != nil {
		return err
	}
	return c.tx.Commit()
}

type copier struct {
	db  *bolt.DB
	tx  *bolt.Tx
	n   int // bytes put in tx
	max int // bytes after which to commit
}

// bucket returns the bucket at path in the current transaction.
func (c *copier) bucket(path [][]byte) *bolt.Bucket {
	b := c.tx.Bucket(path[0])
	for _, k := range path[1:] {
		b = b.Bucket(k)
	}
	b.FillPercent = 1
	return b
}

// copy copies src into the empty bucket at path.
func (c *copier) copy(path [][]byte, src *bolt.Bucket) error {
	dst := c.bucket(path)
	if err := dst.SetSequence(src.Sequence()); err != nil {
		return err
	}
	return src.ForEach(func(k, v []byte) error {
		if c.n >= c.max {
			if err := c.tx.Commit(); err != nil {
				return err
			}
			tx, err := c.db.Begin(true)
			if err != nil {
				return err
			}
			c.tx, c.n = tx, 0
			dst = c.bucket(path)
		}
		c.n += len(k) + len(v)
		if v != nil {
			return dst.Put(k, v)
		}
		if _, err := dst.CreateBucket(k); err != nil {
			return err
		}
		err := c.copy(append(path[:len(path):len(path)], k), src.Bucket(k))
		dst = c.bucket(path) // the nested copy may have committed
		return err
	})
}
