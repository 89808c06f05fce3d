package pack

import (
	"bytes"
	"errors"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/zeebo/blake3"
)

// TestAddFuncMatchesAdd checks that blobs written in place by AddFunc make
// the same pack as the same blobs copied in by Add.
func TestAddFuncMatchesAdd(t *testing.T) {
	a, b := NewWriter(nil), NewWriter(make([]byte, 0, 16))
	for _, blob := range goldenBlobs {
		id := blake3.Sum256(blob)
		a.Add(vaultapi.KindData, id, blob)
		b.Grow(len(blob))
		err := b.AddFunc(vaultapi.KindData, id, func(dst []byte) ([]byte, error) { return append(dst, blob...), nil })
		if err != nil {
			t.Fatalf("AddFunc: %v", err)
		}
	}
	pa, pb := a.Finish(), b.Finish()
	if pa.Name != pb.Name || !bytes.Equal(pa.Data, pb.Data) {
		t.Fatalf("AddFunc pack %s, want (from Add) %s", pb.Name, pa.Name)
	}
}

func TestAddFuncRefuses(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		write func([]byte) ([]byte, error)
	}{
		{"error", func(dst []byte) ([]byte, error) { return append(dst, 1, 2), boom }},
		{"empty", func(dst []byte) ([]byte, error) { return dst, nil }},
		{"shrunk", func(dst []byte) ([]byte, error) { return dst[:1], nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWriter(nil)
			w.Add(vaultapi.KindData, vaultapi.ID{1}, []byte("kept"))
			size := w.Size()
			if err := w.AddFunc(vaultapi.KindData, vaultapi.ID{2}, tt.write); err == nil {
				t.Fatal("AddFunc: no error")
			}
			if got, want := w.Size(), size; got != want || w.Count() != 1 {
				t.Fatalf("after a refused blob: size %d count %d, want %d and 1", got, w.Count(), want)
			}
			if _, err := Parse(w.Finish().Data); err != nil {
				t.Fatalf("pack after a refused blob: %v", err)
			}
		})
	}
}

// TestFitsBoundsThePack fills packs with Fits as the rule and checks that
// each finished pack, trailer included, stays within the limit.
func TestFitsBoundsThePack(t *testing.T) {
	const limit = 4096
	blob := bytes.Repeat([]byte{7}, 300)
	w := NewWriter(make([]byte, 0, limit))
	for i := range 40 {
		if !w.Fits(len(blob), 1, limit) {
			if p := w.Finish(); len(p.Data) > limit || cap(p.Data) != limit {
				t.Fatalf("pack of %d bytes (capacity %d), want at most %d in the first buffer", len(p.Data), cap(p.Data), limit)
			}
			w = NewWriter(make([]byte, 0, limit))
		}
		w.Add(vaultapi.KindData, vaultapi.ID{byte(i)}, blob)
	}
	if w.Fits(limit, 1, limit) != false || !NewWriter(nil).Fits(2*limit, 1, limit) {
		t.Fatal("Fits: a full pack takes a blob of the limit, or an empty pack refuses one")
	}
}

func TestBufferReuse(t *testing.T) {
	b := GetBuffer()
	if got := cap(b.Bytes()); got != TargetSize || len(b.Bytes()) != 0 {
		t.Fatalf("buffer length %d capacity %d, want 0 and %d", len(b.Bytes()), got, TargetSize)
	}
	w := NewWriter(b.Bytes())
	w.Add(vaultapi.KindData, vaultapi.ID{1}, bytes.Repeat([]byte{9}, 1<<20))
	p := w.Finish()
	if &p.Data[0] != &b.Bytes()[:1][0] {
		t.Fatal("the pack was not assembled in the buffer")
	}
	PutBuffer(b)
	b2 := GetBuffer()
	defer PutBuffer(b2)
	if b2 != b {
		t.Fatal("a released buffer was not reused")
	}
	w = NewWriter(b2.Bytes())
	w.Add(vaultapi.KindData, vaultapi.ID{2}, []byte("again"))
	if _, err := Parse(w.Finish().Data); err != nil {
		t.Fatalf("pack in a reused buffer: %v", err)
	}
}
