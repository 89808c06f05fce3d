package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMountWhileBackingUp mounts the vault and runs backups while the
// mount is open: they must not be blocked, and new points must appear.
func TestMountWhileBackingUp(t *testing.T) {
	vault := t.TempDir()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), "first")
	mustCoffer(t, vault, "backup", src)

	mnt := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		env := map[string]string{"COFFER_PASSPHRASE": "correct horse battery staple", "COFFER_VAULT": vault}
		g := newGlobals(strings.NewReader(""), &bytes.Buffer{}, &errb, func(k string) string { return env[k] })
		root := newRootCmd(g)
		root.SetArgs([]string{"mount", mnt, "--refresh", "100ms"})
		err := root.ExecuteContext(ctx)
		if err != nil {
			t.Logf("mount: %v", err)
		}
		done <- exitCode(err)
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("mount exited %d: %s", code, errb.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("mount did not stop on cancel")
		}
	}()
	waitFor(t, func() bool {
		b, err := os.ReadFile(filepath.Join(mnt, "latest", src, "a.txt"))
		return err == nil && string(b) == "first"
	})
	writeFile(t, filepath.Join(src, "a.txt"), "second")
	// Keep the mount busy reading the vault's metadata during the backup,
	// which must still get the store.
	stop := make(chan struct{})
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.ReadDir(mnt)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	mustCoffer(t, vault, "backup", src)
	close(stop)
	<-busy
	waitFor(t, func() bool {
		ents, _ := os.ReadDir(mnt)
		b, _ := os.ReadFile(filepath.Join(mnt, "latest", src, "a.txt"))
		return len(ents) == 3 && string(b) == "second"
	})
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("condition not met in 20 s")
}
