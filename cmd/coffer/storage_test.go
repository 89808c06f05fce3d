package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readRecord returns the storage URL a vault directory records.
func readRecord(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, storageRecordFile))
	if err != nil {
		t.Fatalf("storage record: %v", err)
	}
	var rec storageRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("storage record %s: %v", b, err)
	}
	return rec.URL
}

func TestVaultStorageRecordedAndChecked(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeTree(t, src, map[string]string{"a.txt": "hello", "d/b.txt": strings.Repeat("coffer ", 1000)})
	store := filepath.Join(tmp, "store")
	vaultDir := filepath.Join(tmp, "vault")
	c := cli{t, map[string]string{"COFFER_HOME": filepath.Join(tmp, "home"), "COFFER_VAULT": vaultDir,
		"COFFER_PASSPHRASE": testPass}}

	// The first use records the store; the packs go there, not to DIR/data.
	c.must(exitOK, "backup", "--quiet", "--vault-storage", "file://"+filepath.ToSlash(store)+"/", src)
	if got := readRecord(t, vaultDir); got != store {
		t.Errorf("recorded %q, want %q", got, store)
	}
	if fi, err := os.Stat(filepath.Join(vaultDir, storageRecordFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("storage record: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(vaultDir, "data")); err == nil {
		t.Errorf("a vault on %s made %s", store, filepath.Join(vaultDir, "data"))
	}
	if n := countFiles(t, store); n == 0 {
		t.Errorf("no objects in %s", store)
	}

	// Later commands use the recorded store without being told; the same
	// store spelled differently is the same store.
	c.must(exitOK, "verify")
	c.must(exitOK, "points", "--vault-storage", store)
	c.env["COFFER_VAULT_STORAGE"] = store + "/"
	c.must(exitOK, "restore", "latest", "--quiet", "--target", filepath.Join(tmp, "r"))
	delete(c.env, "COFFER_VAULT_STORAGE")

	// Another store is refused, before anything is contacted.
	_, errs := c.must(exitUsage, "points", "--vault-storage", filepath.Join(tmp, "other"))
	if !strings.Contains(errs, "keeps its data in "+store) || !strings.Contains(errs, storageRecordFile) {
		t.Errorf("another store said %q", errs)
	}
	_, errs = c.must(exitUsage, "points", "--vault-storage", "s3://bucket?endpoint=http://"+closedAddr(t))
	if !strings.Contains(errs, "keeps its data in") {
		t.Errorf("another store said %q", errs)
	}

	// A vault made on its own directory refuses another store too.
	plain := cli{t, map[string]string{"COFFER_HOME": filepath.Join(tmp, "home2"), "COFFER_VAULT": filepath.Join(tmp, "vault2"),
		"COFFER_PASSPHRASE": testPass}}
	plain.must(exitOK, "backup", "--quiet", src)
	if got := readRecord(t, filepath.Join(tmp, "vault2")); got != "" {
		t.Errorf("default store recorded as %q, want \"\"", got)
	}
	plain.must(exitOK, "points", "--vault-storage", filepath.Join(tmp, "vault2", "data"))
	_, errs = plain.must(exitUsage, "points", "--vault-storage", store)
	if !strings.Contains(errs, "keeps its data in its directory") {
		t.Errorf("another store said %q", errs)
	}
	// So does one made before stores were recorded.
	os.Remove(filepath.Join(tmp, "vault2", storageRecordFile))
	plain.must(exitUsage, "points", "--vault-storage", store)
	plain.must(exitOK, "points")
}

func TestVaultStorageFailsAtStart(t *testing.T) {
	nowhere := "http://" + closedAddr(t)
	aws := map[string]string{"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "key"}
	tests := []struct {
		url  string
		env  map[string]string
		code int
		want string
	}{
		{"ftp://host/dir", nil, exitUsage, `unknown scheme "ftp"`},
		{"s3://bucket?regoin=x", aws, exitUsage, `unknown parameter "regoin"`},
		{"azblob://Bad_Name", nil, exitUsage, "not a valid container name"},
		{"s3://bucket?endpoint=" + nowhere + "&path_style=true", aws, exitError, "cannot reach endpoint " + nowhere},
		{"azblob://vault?endpoint=" + nowhere + "/devstoreaccount1", nil, exitError, "azblob: no credentials"},
		{"s3://bucket?endpoint=" + nowhere, map[string]string{"AWS_ACCESS_KEY_ID": "id"}, exitError, "both an access key ID and a secret"},
	}
	for _, tc := range tests {
		tmp := t.TempDir()
		env := map[string]string{"COFFER_HOME": filepath.Join(tmp, "home"), "COFFER_VAULT": filepath.Join(tmp, "vault"),
			"COFFER_PASSPHRASE": testPass, "COFFER_VAULT_STORAGE": tc.url}
		for k, v := range tc.env {
			env[k] = v
		}
		_, errs, code := cli{t, env}.run("backup", "--quiet", tmp)
		if code != tc.code || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "vault storage: ") {
			t.Errorf("backup with %s: exit %d, %q; want exit %d and an error containing %q", tc.url, code, errs, tc.code, tc.want)
		}
		if _, err := os.Stat(filepath.Join(tmp, "vault", storageRecordFile)); err == nil {
			t.Errorf("backup with %s recorded a store that failed", tc.url)
		}
		// The server refuses to start the same way, before it listens.
		out, errs, code := cli{t, tc.env}.run("vault", "serve", "--dir", filepath.Join(tmp, "served"),
			"--listen", "127.0.0.1:0", "--storage", tc.url)
		if code != tc.code || !strings.Contains(errs, tc.want) || strings.Contains(out, "serving") {
			t.Errorf("vault serve --storage %s: exit %d, %q %q; want exit %d and an error containing %q", tc.url, code, out, errs, tc.code, tc.want)
		}
	}
}

// closedAddr is a local address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}
