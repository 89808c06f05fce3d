package meta

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// dump lists every bucket, sequence, key and value of a store, in order.
func dump(t *testing.T, db *bolt.DB) []string {
	t.Helper()
	var out []string
	var walk func(path string, b *bolt.Bucket) error
	walk = func(path string, b *bolt.Bucket) error {
		out = append(out, fmt.Sprintf("%s seq=%d", path, b.Sequence()))
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				return walk(path+"/"+string(k), b.Bucket(k))
			}
			out = append(out, fmt.Sprintf("%s/%x=%x", path, k, v))
			return nil
		})
	}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(string(name), b) })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCopyAll copies nested buckets with sequences, committing every few
// hundred bytes, so that buckets are resumed in later transactions.
func TestCopyAll(t *testing.T) {
	dir := t.TempDir()
	src, err := bolt.Open(filepath.Join(dir, "src.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	err = src.Update(func(tx *bolt.Tx) error {
		for i := range 3 {
			top, err := tx.CreateBucket(fmt.Appendf(nil, "top%d", i))
			if err != nil {
				return err
			}
			if err := top.SetSequence(uint64(10 + i)); err != nil {
				return err
			}
			for j := range 40 {
				if err := top.Put(fmt.Appendf(nil, "k%03d", j), bytes.Repeat([]byte{byte(j)}, j)); err != nil {
					return err
				}
				if j%10 == 5 {
					sub, err := top.CreateBucket(fmt.Appendf(nil, "k%03d-sub", j))
					if err != nil {
						return err
					}
					if err := sub.SetSequence(uint64(j)); err != nil {
						return err
					}
					for k := range 20 {
						if err := sub.Put(fmt.Appendf(nil, "s%02d", k), []byte("value")); err != nil {
							return err
						}
					}
					if _, err := sub.CreateBucket([]byte("empty")); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := dump(t, src)
	for _, txSize := range []int{1, 300, 1 << 30} {
		dst, err := bolt.Open(filepath.Join(dir, fmt.Sprintf("dst-%d.db", txSize)), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = src.View(func(tx *bolt.Tx) error { return copyAll(dst, tx, txSize) })
		if err != nil {
			t.Fatalf("copyAll(txSize %d): %v", txSize, err)
		}
		got := dump(t, dst)
		dst.Close()
		if len(got) != len(want) {
			t.Fatalf("copyAll(txSize %d): got %d lines, want %d", txSize, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("copyAll(txSize %d): line %d: got %q, want %q", txSize, i, got[i], want[i])
			}
		}
	}
}

// TestCompactConverges: a store with a value of megabytes among small ones
// (a point's reference set) compacts to a file without free pages, so the
// next close leaves it alone instead of compacting again.
func TestCompactConverges(t *testing.T) {
	defer SetCompactFraction(4)()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := OpenBolt(path, func() string { return "v" })
	if err != nil {
		t.Fatal(err)
	}
	// Fill, then overwrite, so that half the file is free.
	for round := range 2 {
		err = s.db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("refs"))
			if err != nil {
				return err
			}
			for i := range 8 {
				big := bytes.Repeat([]byte{byte(round + i)}, 3<<20)
				if err := b.Put([]byte(fmt.Sprintf("point-%d", i)), big); err != nil {
					return err
				}
				for j := range 2000 {
					if err := b.Put([]byte(fmt.Sprintf("point-%d-%05d", i, j)), []byte("small value")); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := dump(t, s.db)
	if err := s.CloseCompact(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBolt(path, func() string { return "v" })
	if err != nil {
		t.Fatal(err)
	}
	if got := dump(t, s.db); !slices.Equal(got, want) {
		t.Fatalf("compaction changed the contents")
	}
	free, _, used, err := s.waste()
	if err != nil {
		t.Fatal(err)
	}
	if free*10 > used {
		t.Fatalf("after compaction %d of %d bytes are free pages, want under a tenth", free, used)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CloseCompact(); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Fatalf("a compacted store was compacted again on its next close")
	}
}
