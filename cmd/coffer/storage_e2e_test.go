//go:build linux

package main

import (
	"bytes"
	"context"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/storage/storagetest"
)

// goTree is the corpus of the storage end-to-end tests: the Go
// installation the tests run with (about 270 MB in 16,700 files: source,
// test data, compiled tools).
func goTree(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("no Go tree for the corpus: go env GOROOT: %v", err)
	}
	root := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(root, "src", "go.mod")); err != nil {
		t.Fatalf("no Go tree for the corpus at %s: %v", root, err)
	}
	return root
}

// roundTrip backs src up with c, restores it, compares the copy with
// rsync -anci (content by checksum and metadata) and runs coffer verify.
func roundTrip(t *testing.T, c cli, src string) {
	t.Helper()
	start := time.Now()
	out, _ := c.must(exitOK, "backup", "--quiet", "--json", src)
	var sum summary
	lastJSON(t, out, &sum)
	if sum.Files == 0 || sum.Skipped != 0 {
		t.Fatalf("backup: %+v", sum)
	}
	t.Logf("backup: %d files, %d bytes read, %d bytes added, in %v", sum.Files, sum.BytesRead, sum.BytesAdded, time.Since(start))

	start = time.Now()
	target := filepath.Join(t.TempDir(), "restored")
	c.must(exitOK, "restore", sum.Point, "--quiet", "--target", target)
	t.Logf("restore: %v", time.Since(start))
	rsyncSame(t, src, filepath.Join(target, src))

	start = time.Now()
	c.must(exitOK, "verify")
	t.Logf("verify: %v", time.Since(start))
}

// rsyncSame fails unless rsync -anci finds no difference from src to dst
// but the time of the top directory itself.
func rsyncSame(t *testing.T, src, dst string) {
	t.Helper()
	out, err := exec.Command("rsync", "-anci", "--delete", src+"/", dst+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("rsync (installed by scripts/install-test-deps.sh): %v\n%s", err, out)
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" || strings.HasPrefix(l, ".d..t") && strings.HasSuffix(l, " ./") {
			continue
		}
		if n++; n <= 20 {
			t.Errorf("rsync -anci reports a difference: %s", l)
		}
	}
	if n > 20 {
		t.Errorf("... %d differences in all", n)
	}
}

func TestEmbeddedVaultOnAzurite(t *testing.T) {
	az, err := storagetest.StartAzurite()
	if err != nil {
		t.Fatalf("this test needs Azurite: %v", err)
	}
	t.Cleanup(az.Stop)
	tmp := t.TempDir()
	c := cli{t, map[string]string{
		"COFFER_HOME": filepath.Join(tmp, "home"), "COFFER_VAULT": filepath.Join(tmp, "vault"),
		"COFFER_PASSPHRASE":     testPass,
		"COFFER_VAULT_STORAGE":  "azblob://coffer-e2e/vault-1?endpoint=" + url.QueryEscape(az.URL),
		"AZURE_STORAGE_ACCOUNT": storagetest.AzuriteAccount, "AZURE_STORAGE_KEY": storagetest.AzuriteKey,
	}}
	roundTrip(t, c, goTree(t))
	noSecretIn(t, filepath.Join(tmp, "vault"), storagetest.AzuriteKey)

	// A wrong key is refused at start, naming the problem.
	c.env["AZURE_STORAGE_KEY"] = "d3JvbmcKd3JvbmcKd3JvbmcKd3JvbmcKd3JvbmcKd3Jvbmc="
	_, errs := c.must(exitError, "points")
	if !strings.Contains(errs, "vault storage: ") || !strings.Contains(errs, "access denied") {
		t.Errorf("wrong key said %q", errs)
	}

	// A connection string names the account, key and endpoint at once; a
	// second vault shares the container under another prefix.
	small := filepath.Join(tmp, "small")
	writeTree(t, small, map[string]string{"a.txt": "hello", "d/b.txt": strings.Repeat("coffer ", 10000)})
	cs := cli{t, map[string]string{
		"COFFER_HOME": filepath.Join(tmp, "home2"), "COFFER_VAULT": filepath.Join(tmp, "vault2"),
		"COFFER_PASSPHRASE":    testPass,
		"COFFER_VAULT_STORAGE": "azblob://coffer-e2e/vault-2",
		"AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=http;AccountName=" + storagetest.AzuriteAccount +
			";AccountKey=" + storagetest.AzuriteKey + ";BlobEndpoint=" + az.URL + ";",
	}}
	roundTrip(t, cs, small)
	noSecretIn(t, filepath.Join(tmp, "vault2"), storagetest.AzuriteKey)
}

// noSecretIn fails if a file under dir holds one of the secrets.
func noSecretIn(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a storage secret", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// s3Env is the environment of a vault on a fresh gofakes3 service.
func s3Env(t *testing.T) (storageURL string, env map[string]string) {
	t.Helper()
	endpoint := storagetest.FakeS3(t)
	return "s3://coffer-e2e/vault-1?endpoint=" + url.QueryEscape(endpoint) + "&region=us-east-1&path_style=true",
		map[string]string{"AWS_ACCESS_KEY_ID": "coffer-test", "AWS_SECRET_ACCESS_KEY": "coffer-test-secret"}
}

func TestEmbeddedVaultOnS3(t *testing.T) {
	storageURL, env := s3Env(t)
	tmp := t.TempDir()
	env["COFFER_HOME"], env["COFFER_VAULT"] = filepath.Join(tmp, "home"), filepath.Join(tmp, "vault")
	env["COFFER_PASSPHRASE"], env["COFFER_VAULT_STORAGE"] = testPass, storageURL
	roundTrip(t, cli{t, env}, goTree(t))
	noSecretIn(t, env["COFFER_VAULT"], env["AWS_SECRET_ACCESS_KEY"])
}

func TestVaultServerOnS3(t *testing.T) {
	storageURL, env := s3Env(t)
	dir := filepath.Join(t.TempDir(), "vault")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	g := newGlobals(strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	root := newRootCmd(g)
	root.SetArgs([]string{"vault", "serve", "--dir", dir, "--listen", "127.0.0.1:0", "--storage", storageURL})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	defer func() {
		if ctx.Err() == nil {
			stop()
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "TLS fingerprint") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s %s", out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := readRecord(t, dir); !strings.HasPrefix(got, "s3://coffer-e2e/vault-1?") {
		t.Errorf("vault directory records %q", got)
	}

	tmp := t.TempDir()
	op := cli{t, map[string]string{}}
	creds := filepath.Join(tmp, "v.json")
	op.must(exitOK, "vault", "credentials", "--dir", dir, "--out", creds, "--expires", "1h")
	a := cli{t, map[string]string{"COFFER_HOME": filepath.Join(tmp, "h"), "COFFER_PASSPHRASE": testPass}}
	a.must(exitOK, "register", "--credentials", creds, "--name", "web-01")
	// The Go sources (12,800 files, 150 MB) are enough to show the path
	// through the server; the whole tree goes through the drivers above.
	roundTrip(t, a, filepath.Join(goTree(t), "src"))

	// The packs are in the store, not in the vault directory.
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Errorf("a vault served from S3 made %s", filepath.Join(dir, "data"))
	}
	noSecretIn(t, dir, env["AWS_SECRET_ACCESS_KEY"])

	// Stopped, operator commands open the recorded store themselves, with
	// the credentials of their environment.
	stop()
	op.env["AWS_ACCESS_KEY_ID"], op.env["AWS_SECRET_ACCESS_KEY"] = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
	outP, _ := op.must(exitOK, "vault", "points", "--dir", dir, "--machine", "web-01")
	if !strings.Contains(outP, "web-01") {
		t.Errorf("vault points: %s", outP)
	}
	// A restart with another store is refused.
	_, errs := op.must(exitUsage, "vault", "serve", "--dir", dir, "--listen", "127.0.0.1:0", "--storage", filepath.Join(t.TempDir(), "packs"))
	if !strings.Contains(errs, "keeps its data in s3://coffer-e2e/vault-1") {
		t.Errorf("restart on another store said %q", errs)
	}
}
