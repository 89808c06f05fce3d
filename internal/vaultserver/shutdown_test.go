package vaultserver_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/memory"
	"github.com/coffer-backup/coffer/internal/vaultserver/servertest"
)

// slowGet holds every Get until release is closed.
type slowGet struct {
	storage.Storage
	entered chan struct{}
	release chan struct{}
}

func (s *slowGet) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.Storage.Get(ctx, name, off, length)
}

// TestGracefulShutdown stops the server while a pack read is running: the
// read completes, and the server stops cleanly.
func TestGracefulShutdown(t *testing.T) {
	st := &slowGet{Storage: memory.New(nil), entered: make(chan struct{}, 1), release: make(chan struct{})}
	env := servertest.Start(t, servertest.Options{Storage: st})
	ctx := context.Background()
	a := env.Machine(t, "alpha")
	p, _ := backup(t, a)

	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		rc, err := a.ReadPack(ctx, p.Name, 0, int64(len(p.Data)))
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		done <- result{b, err}
	}()
	<-st.entered // the read is in the vault
	stopped := make(chan struct{})
	go func() { env.Stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-stopped:
		t.Fatal("the server stopped before the running request finished")
	default:
	}
	close(st.release)
	r := <-done
	if r.err != nil || len(r.b) != len(p.Data) {
		t.Fatalf("read during shutdown: %d bytes, %v", len(r.b), r.err)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop")
	}
}
