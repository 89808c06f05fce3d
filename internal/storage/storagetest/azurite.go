package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// The well-known development account of Azurite (documented by Microsoft;
// not a secret).
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is a running Azurite blob service, started for tests.
type Azurite struct {
	// URL is the blob service URL of the development account, such as
	// http://127.0.0.1:PORT/devstoreaccount1.
	URL string

	cmd    *exec.Cmd
	dir    string
	done   chan struct{} // closed when the process has exited
	output *lockedBuffer
}

// FindAzurite returns the path of the azurite-blob program: on PATH, or in
// tools/node_modules/.bin of the repository (found by walking up from the
// working directory to go.mod).
func FindAzurite() (string, error) {
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "tools", "node_modules", ".bin", "azurite-blob")
			if _, err := os.Stat(p); err != nil {
				break
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("azurite-blob not found on PATH nor in tools/node_modules/.bin; " +
		"run `bash scripts/install-test-deps.sh` to install it")
}

// StartAzurite starts Azurite's blob service on a free local port, with its
// data in a new temporary directory, and waits until it listens. Call Stop
// when done.
func StartAzurite() (*Azurite, error) {
	bin, err := FindAzurite()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("azurite: %w", err)
	}
	dir, err := os.MkdirTemp("", "coffer-azurite-")
	if err != nil {
		return nil, fmt.Errorf("azurite: %w", err)
	}
	cmd := exec.Command(bin,
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port), "--location", dir,
		"--skipApiVersionCheck", "--disableTelemetry", "--silent")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("azurite: start %s: %w", bin, err)
	}
	a := &Azurite{
		URL: fmt.Sprintf("http://127.0.0.1:%d/%s", port, AzuriteAccount),
		cmd: cmd, dir: dir, done: make(chan struct{}), output: out,
	}
	go func() { _ = cmd.Wait(); close(a.done) }()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return a, nil
		}
		select {
		case <-a.done:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("azurite: exited before listening on %s: %s", addr, out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			a.Stop()
			return nil, fmt.Errorf("azurite: not listening on %s after 30s: %s", addr, out.String())
		}
	}
}

// Stop stops Azurite (its whole process group) and removes its data.
func (a *Azurite) Stop() {
	terminate(a.cmd)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		kill(a.cmd)
		<-a.done
	}
	os.RemoveAll(a.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
