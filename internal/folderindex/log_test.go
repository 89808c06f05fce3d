package folderindex

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// TestLogBuilder: entries logged from several goroutines come back as the
// Builder that Add would have made, and the log's file is gone.
func TestLogBuilder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "folders")
	l, err := CreateLog(dir, "idx")
	if err != nil {
		t.Fatal(err)
	}
	want := NewBuilder()
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 50 {
				k := Key{byte(g), byte(i)}
				e := Entry{FP: FP{byte(i)}, Tree: vaultapi.ID{byte(g)}, Chunks: make([]vaultapi.ID, i%3)}
				for j := range e.Chunks {
					e.Chunks[j] = vaultapi.ID{byte(j + 1), byte(i)}
				}
				want.Add(k, e)
				l.AddEntry(k, e)
			}
		}()
	}
	for range 4 {
		<-done
	}
	got, err := l.Builder()
	if err != nil {
		t.Fatal(err)
	}
	mac := func(b []byte) vaultapi.ID { return vaultapi.ID{byte(len(b))} }
	if a, b := got.Encode(vaultapi.ID{1}, vaultapi.ID{2}, mac), want.Encode(vaultapi.ID{1}, vaultapi.ID{2}, mac); string(a) != string(b) {
		t.Fatalf("the log's builder encodes to %d bytes unlike the entries added (%d)", len(a), len(b))
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Fatalf("%d files left after Builder, want none", len(files))
	}
	l.Discard() // after Builder: nothing left to do
}
