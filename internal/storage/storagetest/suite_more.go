package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/coffer-backup/coffer/internal/storage"
)

// generator is a plain io.Reader (not seekable) of n pseudo-random bytes.
type generator struct {
	src  *rand.ChaCha8
	left int64
	// after, if set, is called once when more than afterN bytes were read.
	after  func()
	afterN int64
	read   int64
}

func newGenerator(seed uint64, n int64) *generator {
	return &generator{src: rand.NewChaCha8(seedBytes(seed)), left: n}
}

func (g *generator) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, _ := g.src.Read(p)
	g.left -= int64(n)
	g.read += int64(n)
	if g.after != nil && g.read > g.afterN {
		g.after()
		g.after = nil
	}
	return n, nil
}

func hashOf(t *testing.T, r io.Reader) ([32]byte, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return [32]byte(h.Sum(nil)), n
}

func testLarge(t *testing.T, s storage.Storage) {
	const size = 40 << 20
	sd := seed(t)
	name := "large/obj"
	if err := s.Put(context.Background(), name, newGenerator(sd, size), size, storage.PutOptions{IfAbsent: true}); err != nil {
		t.Fatalf("Put of %d bytes: %v", size, err)
	}
	want, _ := hashOf(t, newGenerator(sd, size))
	rc, err := s.Get(context.Background(), name, 0, -1)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	got, n := hashOf(t, rc)
	rc.Close()
	if got != want || n != size {
		t.Fatalf("Get: got %d bytes with sha256 %x, want %d bytes with sha256 %x", n, got, size, want)
	}
	// A range across the middle.
	off, length := int64(size/2-12345), int64(3<<20)
	g := newGenerator(sd, size)
	if _, err := io.CopyN(io.Discard, g, off); err != nil {
		t.Fatal(err)
	}
	wantPart := make([]byte, length)
	if _, err := io.ReadFull(g, wantPart); err != nil {
		t.Fatal(err)
	}
	if gotPart := get(t, s, name, off, length); !bytes.Equal(gotPart, wantPart) {
		t.Fatalf("Get(%d, %d): got %d bytes, want %d %s", off, length, len(gotPart), len(wantPart), diffAt(gotPart, wantPart))
	}
	if info, err := s.Stat(context.Background(), name); err != nil || info.Size != size {
		t.Fatalf("Stat: got %+v, %v; want size %d", info, err, size)
	}
}

func testWrongSize(t *testing.T, s storage.Storage) {
	tests := []struct {
		name      string
		data      int // bytes the reader has
		size      int64
		generator bool
	}{
		{"short", 50, 100, false},
		{"short-empty", 0, 10, false},
		{"long", 100, 50, false},
		{"long-from-empty", 10, 0, false},
		{"short-large", 6 << 20, 9 << 20, true},
		{"long-large", 9 << 20, 6 << 20, true},
	}
	for _, tc := range tests {
		for _, ifAbsent := range []bool{false, true} {
			name := fmt.Sprintf("wrongsize/%s-%v", tc.name, ifAbsent)
			var r io.Reader = bytes.NewReader(bytes.Repeat([]byte{'z'}, tc.data))
			if tc.generator {
				r = newGenerator(1, int64(tc.data))
			}
			err := s.Put(context.Background(), name, r, tc.size, storage.PutOptions{IfAbsent: ifAbsent})
			if err == nil {
				t.Errorf("Put(%s) of %d bytes announced as %d: no error, want one", name, tc.data, tc.size)
			}
			wantMissing(t, s, name)
		}
	}
	if names := list(t, s, "wrongsize/"); len(names) != 0 {
		t.Errorf("List after failed Puts: got %q, want nothing", names)
	}
}

func testCancelledContext(t *testing.T, s storage.Storage) {
	put(t, s, "cancel/existing", []byte("data"), storage.PutOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wantCancelled := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: got %v, want context.Canceled", op, err)
		}
	}
	wantCancelled("Put", s.Put(ctx, "cancel/new", strings.NewReader("data"), 4, storage.PutOptions{}))
	wantMissing(t, s, "cancel/new")
	_, err := s.Get(ctx, "cancel/existing", 0, -1)
	wantCancelled("Get", err)
	_, err = s.Stat(ctx, "cancel/existing")
	wantCancelled("Stat", err)
	wantCancelled("List", s.List(ctx, "cancel/", func(storage.Info) error { return nil }))
	wantCancelled("Delete", s.Delete(ctx, "cancel/existing"))
	wantContent(t, s, "cancel/existing", []byte("data"))
}

func testCancelMidPut(t *testing.T, s storage.Storage) {
	for _, ifAbsent := range []bool{false, true} {
		name := fmt.Sprintf("cancelmid/obj-%v", ifAbsent)
		ctx, cancel := context.WithCancel(context.Background())
		g := newGenerator(2, 16<<20)
		g.after, g.afterN = cancel, 3<<20
		err := s.Put(ctx, name, g, 16<<20, storage.PutOptions{IfAbsent: ifAbsent})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put cancelled after 3 MiB: got %v, want context.Canceled", err)
		}
		wantMissing(t, s, name)
	}
}

func testConcurrentIfAbsent(t *testing.T, s storage.Storage) {
	const writers = 8
	name := "race/obj"
	sd := seed(t)
	var (
		wg      sync.WaitGroup
		errs    [writers]error
		content [writers][]byte
	)
	for i := range writers {
		content[i] = randomBytes(sd+uint64(i), 256<<10+i)
		wg.Go(func() {
			errs[i] = s.Put(context.Background(), name, bytes.NewReader(content[i]), int64(len(content[i])), storage.PutOptions{IfAbsent: true})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both won the put-if-absent", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrExists):
			t.Errorf("writer %d: got %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer won the put-if-absent: %v", errs)
	}
	wantContent(t, s, name, content[winner])
}

func testInvalidNames(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for _, name := range []string{"", "/abs", "dir/", "a//b", "./a", "a/../b", "..", "a\\b", "nul\x00"} {
		if err := s.Put(ctx, name, strings.NewReader("x"), 1, storage.PutOptions{}); err == nil {
			t.Errorf("Put(%q): no error, want one", name)
		}
		if _, err := s.Get(ctx, name, 0, -1); err == nil {
			t.Errorf("Get(%q): no error, want one", name)
		}
		if _, err := s.Stat(ctx, name); err == nil {
			t.Errorf("Stat(%q): no error, want one", name)
		}
		if err := s.Delete(ctx, name); err == nil {
			t.Errorf("Delete(%q): no error, want one", name)
		}
	}
}
