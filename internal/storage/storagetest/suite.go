package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/coffer-backup/coffer/internal/storage"
)

// Run runs the conformance suite. newStore is called once per subtest and
// returns an empty store (or one whose other objects do not start with the
// names the subtests use).
func Run(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"RoundTrip", testRoundTrip},
		{"PutIfAbsentExisting", testPutIfAbsentExisting},
		{"Overwrite", testOverwrite},
		{"Missing", testMissing},
		{"Range", testRange},
		{"List", testList},
		{"ListMany", testListMany},
		{"Delete", testDelete},
		{"Large", testLarge},
		{"WrongSize", testWrongSize},
		{"CancelledContext", testCancelledContext},
		{"CancelMidPut", testCancelMidPut},
		{"ConcurrentIfAbsent", testConcurrentIfAbsent},
		{"InvalidNames", testInvalidNames},
		{"Consumed", testConsumed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// seed returns a random seed and logs it, so a failing run can be replayed.
func seed(t *testing.T) uint64 {
	t.Helper()
	s := rand.Uint64()
	t.Logf("seed %d", s)
	return s
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(seedBytes(seed)).Read(b)
	return b
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

// put stores data under name and fails the test on error.
func put(t *testing.T, s storage.Storage, name string, data []byte, opts storage.PutOptions) {
	t.Helper()
	if err := s.Put(context.Background(), name, bytes.NewReader(data), int64(len(data)), opts); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", name, len(data), err)
	}
}

// get reads [off, off+length) of name and fails the test on error.
func get(t *testing.T, s storage.Storage, name string, off, length int64) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), name, off, length)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", name, off, length, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): reading: %v", name, off, length, err)
	}
	return b
}

// wantContent fails unless name holds exactly want.
func wantContent(t *testing.T, s storage.Storage, name string, want []byte) {
	t.Helper()
	got := get(t, s, name, 0, -1)
	if !bytes.Equal(got, want) {
		t.Fatalf("content of %q: got %d bytes (sha256 %x), want %d bytes (sha256 %x)",
			name, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
	info, err := s.Stat(context.Background(), name)
	if err != nil {
		t.Fatalf("Stat(%q): %v", name, err)
	}
	if info.Size != int64(len(want)) || info.Name != name {
		t.Fatalf("Stat(%q) = {%q, %d}, want {%q, %d}", name, info.Name, info.Size, name, len(want))
	}
}

// wantMissing fails unless Stat of name is ErrNotFound.
func wantMissing(t *testing.T, s storage.Storage, name string) {
	t.Helper()
	if _, err := s.Stat(context.Background(), name); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat(%q): got error %v, want ErrNotFound", name, err)
	}
}

// list returns the names under prefix, in the order List gives them.
func list(t *testing.T, s storage.Storage, prefix string) []string {
	t.Helper()
	var names []string
	err := s.List(context.Background(), prefix, func(info storage.Info) error {
		names = append(names, info.Name)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return names
}

func testRoundTrip(t *testing.T, s storage.Storage) {
	sd := seed(t)
	for i, n := range []int{0, 1, 1000, 1<<20 + 7} {
		name := fmt.Sprintf("roundtrip/dir/obj-%d", n)
		data := randomBytes(sd+uint64(i), n)
		put(t, s, name, data, storage.PutOptions{})
		wantContent(t, s, name, data)
	}
	put(t, s, "roundtrip-top", []byte("top"), storage.PutOptions{IfAbsent: true})
	wantContent(t, s, "roundtrip-top", []byte("top"))
}

func testPutIfAbsentExisting(t *testing.T, s storage.Storage) {
	name := "ifabsent/obj"
	put(t, s, name, []byte("first"), storage.PutOptions{IfAbsent: true})
	err := s.Put(context.Background(), name, bytes.NewReader([]byte("second!")), 7, storage.PutOptions{IfAbsent: true})
	if !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second Put with IfAbsent: got %v, want ErrExists", err)
	}
	wantContent(t, s, name, []byte("first"))
}

func testOverwrite(t *testing.T, s storage.Storage) {
	name := "overwrite/obj"
	put(t, s, name, []byte("first version"), storage.PutOptions{})
	put(t, s, name, []byte("second"), storage.PutOptions{})
	wantContent(t, s, name, []byte("second"))
}

func testMissing(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	name := "missing/nothing-here"
	if _, err := s.Get(ctx, name, 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get of missing object: got %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, name, 10, 5); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ranged Get of missing object: got %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, name); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of missing object: got %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, name); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Delete of missing object: got %v, want ErrNotFound", err)
	}
	if names := list(t, s, "missing/"); len(names) != 0 {
		t.Errorf("List of empty prefix: got %q, want nothing", names)
	}
}

func testRange(t *testing.T, s storage.Storage) {
	name := "range/obj"
	data := randomBytes(seed(t), 1000)
	put(t, s, name, data, storage.PutOptions{})
	good := []struct{ off, length int64 }{
		{0, 10}, {0, 1000}, {0, -1}, {500, 100}, {990, -1}, {999, 1},
		{0, 0}, {500, 0}, {1000, 0}, {1000, -1},
	}
	for _, r := range good {
		end := int64(len(data))
		if r.length >= 0 {
			end = r.off + r.length
		}
		if got, want := get(t, s, name, r.off, r.length), data[r.off:end]; !bytes.Equal(got, want) {
			t.Errorf("Get(%d, %d): got %d bytes, want %d bytes %s", r.off, r.length, len(got), len(want), diffAt(got, want))
		}
	}
	bad := []struct{ off, length int64 }{
		{995, 10}, {1000, 1}, {1001, -1}, {1001, 0}, {2000, 5}, {-1, 5},
	}
	for _, r := range bad {
		rc, err := s.Get(context.Background(), name, r.off, r.length)
		if err == nil {
			b, rerr := io.ReadAll(rc)
			rc.Close()
			if rerr == nil {
				t.Errorf("Get(%d, %d) past the end: got %d bytes and no error, want an error", r.off, r.length, len(b))
			}
		}
	}
}

func diffAt(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("(first difference at byte %d)", i)
		}
	}
	return ""
}

func testList(t *testing.T, s storage.Storage) {
	// Names share prefixes, and '-' < '.' < '/' < '0' < 'b' in byte order,
	// so a store that walks directories must order "b-" < "b/…" < "b0".
	names := []string{
		"list/a", "list/a-b", "list/a.c", "list/ab",
		"list/b/c/d", "list/b/c/e", "list/b/cd", "list/b-", "list/b0",
		"list/c", "listx",
	}
	for i, n := range names {
		put(t, s, n, bytes.Repeat([]byte{'x'}, i), storage.PutOptions{})
	}
	sorted := slices.Sorted(slices.Values(names))
	tests := []struct {
		prefix string
		want   []string
	}{
		{"list/", sorted[:len(sorted)-1]},
		{"list", sorted},
		{"list/a", []string{"list/a", "list/a-b", "list/a.c", "list/ab"}},
		{"list/b", []string{"list/b-", "list/b/c/d", "list/b/c/e", "list/b/cd", "list/b0"}},
		{"list/b/", []string{"list/b/c/d", "list/b/c/e", "list/b/cd"}},
		{"list/b/c", []string{"list/b/c/d", "list/b/c/e", "list/b/cd"}},
		{"list/b/c/", []string{"list/b/c/d", "list/b/c/e"}},
		{"list/c", []string{"list/c"}},
		{"list/nothing", nil},
	}
	for _, tc := range tests {
		if got := list(t, s, tc.prefix); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q):\n got %q\nwant %q", tc.prefix, got, tc.want)
		}
	}
	// Sizes are reported.
	err := s.List(context.Background(), "list/", func(info storage.Info) error {
		if want := int64(slices.Index(names, info.Name)); info.Size != want {
			t.Errorf("List: %s has size %d, want %d", info.Name, info.Size, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	// An error from fn stops List and comes back.
	stop := errors.New("stop here")
	calls := 0
	err = s.List(context.Background(), "list/", func(storage.Info) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("List with fn failing on the 3rd call: got %v after %d calls, want %v after 3", err, calls, stop)
	}
}

func testListMany(t *testing.T, s storage.Storage) {
	const n = 1100 // more than one page of the cloud services' listings
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("many/%02x/%05d", i%7, i))
	}
	parallel(t, 8, len(want), func(i int) error {
		return s.Put(context.Background(), want[i], bytes.NewReader([]byte(want[i])), int64(len(want[i])), storage.PutOptions{IfAbsent: true})
	})
	slices.Sort(want)
	got := list(t, s, "many/")
	if !slices.Equal(got, want) {
		t.Fatalf("List of %d objects: got %d names, want %d; first difference %s", n, len(got), len(want), firstDiff(got, want))
	}
	if got := list(t, s, "many/03/"); len(got) != (n+3)/7 {
		t.Errorf("List(many/03/): got %d names, want %d", len(got), (n+3)/7)
	}
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: got %q, want %q", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("at %d (one list is shorter)", min(len(got), len(want)))
}

// parallel runs fn(0..n-1) on workers goroutines and fails the test on the
// first error.
func parallel(t *testing.T, workers, n int, fn func(i int) error) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan int)
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d calls failed; first: %v", len(errs), n, errs[0])
	}
}

func testDelete(t *testing.T, s storage.Storage) {
	put(t, s, "delete/a", []byte("a"), storage.PutOptions{})
	put(t, s, "delete/b/c", []byte("c"), storage.PutOptions{})
	for _, name := range []string{"delete/a", "delete/b/c"} {
		if err := s.Delete(context.Background(), name); err != nil {
			t.Fatalf("Delete(%q): %v", name, err)
		}
		wantMissing(t, s, name)
		if err := s.Delete(context.Background(), name); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("second Delete(%q): got %v, want ErrNotFound", name, err)
		}
	}
	if names := list(t, s, "delete/"); len(names) != 0 {
		t.Errorf("List after Delete: got %q, want nothing", names)
	}
	// The name can be used again.
	put(t, s, "delete/a", []byte("again"), storage.PutOptions{IfAbsent: true})
	wantContent(t, s, "delete/a", []byte("again"))
}

// testConsumed checks PutOptions.Consumed: called at most once, and the
// body never read after it. The callback overwrites the body, as a caller
// reusing the memory would, so a store that read it again would hold the
// overwritten bytes. Put over an existing name with IfAbsent keeps the
// first object either way.
func testConsumed(t *testing.T, s storage.Storage) {
	sd := seed(t)
	for i, n := range []int{0, 1000, 3<<20 + 5} {
		name := fmt.Sprintf("consumed/obj-%d", n)
		want := randomBytes(sd+uint64(i), n)
		body := bytes.Clone(want)
		calls := 0
		opts := storage.PutOptions{IfAbsent: true, Consumed: func() {
			calls++
			for j := range body {
				body[j] = 0xA5
			}
		}}
		if err := s.Put(context.Background(), name, bytes.NewReader(body), int64(n), opts); err != nil {
			t.Fatalf("Put(%q): %v", name, err)
		}
		if calls > 1 {
			t.Fatalf("Put(%q): Consumed called %d times", name, calls)
		}
		wantContent(t, s, name, want)

		body, calls = randomBytes(sd+100+uint64(i), n+1), 0
		err := s.Put(context.Background(), name, bytes.NewReader(body), int64(n+1), opts)
		if !errors.Is(err, storage.ErrExists) || calls > 1 {
			t.Fatalf("second Put(%q) with IfAbsent: %v, Consumed called %d times", name, err, calls)
		}
		wantContent(t, s, name, want)
	}
}
