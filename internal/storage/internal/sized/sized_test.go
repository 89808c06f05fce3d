package sized

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReader(t *testing.T) {
	tests := []struct {
		data    string
		size    int64
		wantErr error
	}{
		{"", 0, nil},
		{"hello", 5, nil},
		{"hell", 5, ErrSize},
		{"hello!", 5, ErrSize},
		{"x", 0, ErrSize},
		{"", 3, ErrSize},
	}
	for _, tc := range tests {
		for _, one := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.data)
			if one {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(Reader(context.Background(), r, tc.size))
			if !errors.Is(err, tc.wantErr) && !(err == nil && tc.wantErr == nil) {
				t.Errorf("Reader(%q, %d) one-byte=%v: error %v, want %v", tc.data, tc.size, one, err, tc.wantErr)
			}
			if err == nil && string(got) != tc.data {
				t.Errorf("Reader(%q, %d): got %q", tc.data, tc.size, got)
			}
		}
	}
}

// countingWriter records the size of every Write.
type countingWriter struct {
	bytes.Buffer
	writes []int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	return w.Buffer.Write(p)
}

// TestWriteTo checks the path io.Copy takes for a body in memory: the
// bytes in pieces of at most writePiece, a wrong size refused before any
// byte is written, other bodies copied as before, and the end reported
// like Read's.
func TestWriteTo(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), (2*writePiece+100)/16)
	for _, tc := range []struct {
		name    string
		body    io.Reader
		size    int64
		wantErr error
		writes  int
	}{
		{"memory", bytes.NewReader(data), int64(len(data)), nil, 3},
		{"memory-empty", bytes.NewReader(nil), 0, nil, 0},
		{"memory-short", bytes.NewReader(data[:100]), 101, ErrSize, 0},
		{"memory-long", bytes.NewReader(data), int64(len(data)) - 1, ErrSize, 0},
		{"stream", strings.NewReader(string(data)), int64(len(data)), nil, -1},
		{"stream-short", strings.NewReader("abc"), 4, ErrSize, -1},
	} {
		var w countingWriter
		n, err := io.Copy(&w, Reader(context.Background(), tc.body, tc.size))
		if !errors.Is(err, tc.wantErr) && !(err == nil && tc.wantErr == nil) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.wantErr)
		}
		if tc.writes >= 0 && len(w.writes) != tc.writes {
			t.Errorf("%s: %d writes %v, want %d", tc.name, len(w.writes), w.writes, tc.writes)
		}
		for _, k := range w.writes {
			if k > writePiece {
				t.Errorf("%s: a write of %d bytes", tc.name, k)
			}
		}
		if err == nil && (n != tc.size || !bytes.Equal(w.Bytes(), data[:tc.size])) {
			t.Errorf("%s: wrote %d bytes, want %d of the body", tc.name, n, tc.size)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var w countingWriter
	if _, err := io.Copy(&w, Reader(ctx, bytes.NewReader(data), int64(len(data)))); !errors.Is(err, context.Canceled) || w.Len() != 0 {
		t.Errorf("cancelled: %d bytes written, error %v", w.Len(), err)
	}
}

func TestReaderCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := io.ReadAll(Reader(ctx, strings.NewReader("data"), 4))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestRange(t *testing.T) {
	tests := []struct {
		off, length, size, want int64
		ok                      bool
	}{
		{0, -1, 10, 10, true}, {3, 4, 10, 4, true}, {10, 0, 10, 0, true}, {10, -1, 10, 0, true},
		{9, 2, 10, 0, false}, {11, -1, 10, 0, false}, {-1, 1, 10, 0, false},
	}
	for _, tc := range tests {
		got, err := Range(tc.off, tc.length, tc.size)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Range(%d, %d, %d) = %d, %v; want %d, ok=%v", tc.off, tc.length, tc.size, got, err, tc.want, tc.ok)
		}
	}
}

func BenchmarkReader(b *testing.B) {
	data := bytes.Repeat([]byte{1}, 1<<20)
	b.SetBytes(int64(len(data)))
	buf := make([]byte, 64<<10)
	for b.Loop() {
		_, _ = io.CopyBuffer(io.Discard, struct{ io.Reader }{Reader(context.Background(), bytes.NewReader(data), int64(len(data)))}, buf)
	}
}
