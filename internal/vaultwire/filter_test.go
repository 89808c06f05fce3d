package vaultwire

import (
	"crypto/rand"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func TestFilter(t *testing.T) {
	const n = 20000
	f := NewFilter(n)
	ids := make([]vaultapi.ID, n)
	for i := range ids {
		rand.Read(ids[i][:])
		f.Add(ids[i])
	}
	g, err := DecodeFilter(f.Encode())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !g.MayHave(id) {
			t.Fatal("false negative")
		}
	}
	fp := 0
	for range n {
		var id vaultapi.ID
		rand.Read(id[:])
		if g.MayHave(id) {
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.03 {
		t.Errorf("false positive rate %.3f, want about 0.01", rate)
	}
	if empty := NewFilter(0); empty.MayHave(ids[0]) {
		t.Error("empty filter has an ID")
	}
}

func FuzzDecodeFilter(f *testing.F) {
	f.Add(NewFilter(10).Encode())
	f.Add([]byte("CFBF\x01\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := DecodeFilter(b)
		if err != nil {
			return
		}
		var id vaultapi.ID
		g.Add(id)
		if !g.MayHave(id) {
			t.Fatal("added ID missing")
		}
	})
}
