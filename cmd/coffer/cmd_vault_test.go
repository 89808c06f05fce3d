package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultserver/servertest"
)

// cli runs coffer in-process with an environment.
type cli struct {
	t   *testing.T
	env map[string]string
}

func (c cli) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	var out, errb bytes.Buffer
	g := newGlobals(strings.NewReader(""), &out, &errb, func(k string) string { return c.env[k] })
	root := newRootCmd(g)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString("coffer: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), exitCode(err)
}

// must runs and fails the test unless the exit code is want.
func (c cli) must(want int, args ...string) (string, string) {
	c.t.Helper()
	out, errs, code := c.run(args...)
	if code != want {
		c.t.Fatalf("coffer %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errs)
	}
	return out, errs
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRegisterBackupRestoreThroughServer(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	opToken, _ := env.Operator(t)
	tmp := t.TempDir()
	pass := "correct horse battery staple"
	op := cli{t, map[string]string{"COFFER_OPERATOR_TOKEN": opToken}}
	credsFile := filepath.Join(tmp, "vault.json")
	op.must(exitOK, "vault", "credentials", "--remote", env.URL, "--fingerprint", env.Fingerprint, "--out", credsFile)
	if fi, err := os.Stat(credsFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, %v", fi, err)
	}

	homeA := filepath.Join(tmp, "homeA")
	a := cli{t, map[string]string{"COFFER_HOME": homeA, "COFFER_PASSPHRASE": pass}}
	out, _ := a.must(exitOK, "register", "--credentials", credsFile, "--name", "alpha")
	if !strings.Contains(out, `registered "alpha"`) {
		t.Errorf("register said %q", out)
	}
	if fi, err := os.Stat(filepath.Join(homeA, machineCredentialsFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("machine credentials: %v, %v", fi, err)
	}
	a.must(exitUsage, "register", "--credentials", credsFile, "--name", "alpha-again")

	src := filepath.Join(tmp, "src")
	writeTree(t, src, map[string]string{"a.txt": "hello", "d/b.txt": strings.Repeat("coffer ", 10000)})
	a.must(exitOK, "backup", "--quiet", src)
	out, _ = a.must(exitOK, "points", "--json")
	var pts []struct {
		ID    string   `json:"id"`
		Paths []string `json:"paths"`
	}
	if err := json.Unmarshal([]byte(out), &pts); err != nil || len(pts) != 1 || pts[0].Paths[0] != src {
		t.Fatalf("points: %v %s", err, out)
	}
	target := filepath.Join(tmp, "restored")
	a.must(exitOK, "restore", "latest", "--target", target, "--quiet")
	got, err := os.ReadFile(filepath.Join(target, src, "d", "b.txt"))
	if err != nil || string(got) != strings.Repeat("coffer ", 10000) {
		t.Fatalf("restored file: %v", err)
	}
	a.must(exitOK, "verify")

	// The trees of a remote vault are kept, sealed, in the cache folder;
	// a damaged copy is dropped and read from the vault again.
	cached, _ := filepath.Glob(filepath.Join(homeA, "cache", "trees", "*", "*"))
	if len(cached) == 0 {
		t.Fatal("no tree was kept in the cache folder")
	}
	for _, f := range cached {
		if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
			b[len(b)/2] ^= 0xff
			os.WriteFile(f, b, 0o600)
		}
	}
	out, _ = a.must(exitOK, "backup", "--json", src)
	if !strings.Contains(out, `"bytes_read":0`) {
		t.Errorf("a second backup of unchanged files read them again: %s", out)
	}
	// With the folder index the backup left, a changed folder's tree
	// comes from the remote vault (or its cache) alone.
	if ix, _ := filepath.Glob(filepath.Join(homeA, "cache", "folders", "*")); len(ix) != 1 {
		t.Fatalf("folder index files: %v", ix)
	}
	writeTree(t, src, map[string]string{"d/b.txt": strings.Repeat("changed ", 100), "d/e/new.txt": "new"})
	// The test server's clock is fixed, so "latest" cannot tell these
	// points apart: the point by its ID.
	out, _ = a.must(exitOK, "backup", "--json", src)
	var sum struct {
		Point string `json:"point"`
	}
	if err := json.Unmarshal([]byte(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]), &sum); err != nil || sum.Point == "" {
		t.Fatalf("backup summary: %v %s", err, out)
	}
	target2 := filepath.Join(tmp, "restored2")
	a.must(exitOK, "restore", sum.Point, "--target", target2, "--quiet")
	for name, want := range map[string]string{"a.txt": "hello", "d/b.txt": strings.Repeat("changed ", 100), "d/e/new.txt": "new"} {
		if got, err := os.ReadFile(filepath.Join(target2, src, name)); err != nil || string(got) != want {
			t.Fatalf("restored %s after a change: %q, %v", name, got, err)
		}
	}

	_, errs := a.must(exitRefused, "points", "delete", pts[0].ID)
	if !strings.Contains(errs, "operator action") {
		t.Errorf("points delete said %q", errs)
	}

	// The machine's replace verifier is stored at its first backup.
	out, _ = op.must(exitOK, "vault", "machines", "--remote", env.URL, "--fingerprint", env.Fingerprint, "--json")
	if !strings.Contains(out, `"has_verifier":true`) {
		t.Errorf("vault machines: %s", out)
	}

	// Another machine may not take the name, nor replace it without the
	// passphrase; with it, it continues the history.
	homeB := filepath.Join(tmp, "homeB")
	b := cli{t, map[string]string{"COFFER_HOME": homeB, "COFFER_PASSPHRASE": "a wrong passphrase, long enough"}}
	_, errs = b.must(exitRefused, "register", "--credentials", credsFile, "--name", "alpha")
	if !strings.Contains(errs, "already registered") {
		t.Errorf("duplicate name said %q", errs)
	}
	b.must(exitPassphrase, "register", "--credentials", credsFile, "--name", "alpha", "--replace")
	b.env["COFFER_PASSPHRASE"] = pass
	out, _ = b.must(exitOK, "register", "--credentials", credsFile, "--name", "alpha", "--replace")
	if !strings.Contains(out, "took over") {
		t.Errorf("replace said %q", out)
	}
	out, _ = b.must(exitOK, "points", "--json")
	if !strings.Contains(out, pts[0].ID) {
		t.Errorf("replaced machine does not see the old point: %s", out)
	}
	_, errs = a.must(exitRefused, "points")
	if !strings.Contains(errs, "revoked") {
		t.Errorf("old credentials after replace said %q", errs)
	}

	// An embedded vault named explicitly still wins over the registration.
	b.must(exitOK, "backup", "--quiet", "--vault", filepath.Join(tmp, "embedded"), src)
	out, _ = b.must(exitOK, "points", "--json", "--vault", filepath.Join(tmp, "embedded"))
	if strings.Contains(out, pts[0].ID) {
		t.Errorf("embedded vault shows the server's point")
	}

	// Expired credentials file.
	env.Clock.Advance(241 * time.Hour)
	c := cli{t, map[string]string{"COFFER_HOME": filepath.Join(tmp, "homeC")}}
	_, errs = c.must(exitRefused, "register", "--credentials", credsFile, "--name", "gamma")
	if !strings.Contains(errs, "expired") {
		t.Errorf("expired credentials said %q", errs)
	}

	// Wrong fingerprint.
	var cf map[string]any
	raw, _ := os.ReadFile(credsFile)
	json.Unmarshal(raw, &cf)
	cf["fingerprint"] = strings.Repeat("00", 32)
	raw, _ = json.Marshal(cf)
	bad := filepath.Join(tmp, "bad.json")
	os.WriteFile(bad, raw, 0o600)
	_, errs = c.must(exitRefused, "register", "--credentials", bad, "--name", "gamma")
	if !strings.Contains(errs, "fingerprint") {
		t.Errorf("wrong fingerprint said %q", errs)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestVaultServeAndOperatorCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	g := newGlobals(strings.NewReader(""), &out, &errb, func(string) string { return "" })
	root := newRootCmd(g)
	root.SetArgs([]string{"vault", "serve", "--dir", dir, "--listen", "127.0.0.1:0"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "TLS fingerprint") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s %s", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	tmp := t.TempDir()
	op := cli{t, map[string]string{}}
	creds := filepath.Join(tmp, "v.json")
	// While the server runs, operator commands on the host go through it.
	op.must(exitOK, "vault", "credentials", "--dir", dir, "--out", creds, "--expires", "1h")
	a := cli{t, map[string]string{"COFFER_HOME": filepath.Join(tmp, "h"), "COFFER_PASSPHRASE": "sixteen chars or more"}}
	a.must(exitOK, "register", "--credentials", creds, "--name", "web-01")
	src := filepath.Join(tmp, "src")
	writeTree(t, src, map[string]string{"f": "data"})
	a.must(exitOK, "backup", "--quiet", src)
	outM, _ := op.must(exitOK, "vault", "machines", "--dir", dir)
	if !strings.Contains(outM, "web-01") {
		t.Errorf("vault machines: %s", outM)
	}
	tok, _ := op.must(exitOK, "vault", "token", "create", "--dir", dir, "--name", "ci")
	if !strings.HasPrefix(tok, "cfo_") {
		t.Errorf("token create printed %q", tok)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	// Stopped: operator commands open the store directly.
	outP, _ := op.must(exitOK, "vault", "points", "--dir", dir, "--machine", "web-01")
	if !strings.Contains(outP, "web-01") {
		t.Errorf("vault points: %s", outP)
	}
	op.must(exitError, "vault", "points", "--dir", dir, "--machine", "nobody")

	// The certificate is kept across restarts.
	fp1 := fingerprintIn(t, out.String())
	ctx2, cancel2 := context.WithCancel(context.Background())
	var out2 syncBuffer
	g2 := newGlobals(strings.NewReader(""), &out2, &errb, func(string) string { return "" })
	root2 := newRootCmd(g2)
	root2.SetArgs([]string{"vault", "serve", "--dir", dir, "--listen", "127.0.0.1:0"})
	go func() { done <- root2.ExecuteContext(ctx2) }()
	for !strings.Contains(out2.String(), "TLS fingerprint") {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatal("server did not restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fp2 := fingerprintIn(t, out2.String()); fp2 != fp1 {
		t.Errorf("fingerprint changed across restarts: %s, then %s", fp1, fp2)
	}
	cancel2()
	<-done
}

func fingerprintIn(t *testing.T, s string) string {
	t.Helper()
	for _, l := range strings.Split(s, "\n") {
		if f, ok := strings.CutPrefix(l, "TLS fingerprint: "); ok {
			return f
		}
	}
	t.Fatalf("no fingerprint in %q", s)
	return ""
}
