package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/backends"
	"github.com/coffer-backup/coffer/internal/storage/local"
)

// storageRecordFile, in a vault directory, names the store that holds the
// vault's packs. It is written when the vault is first opened and checked
// at every later open, so that one vault's data cannot end up split across
// two stores. It holds no secret: storage URLs carry none (backends.Open
// refuses credentials in a URL or its endpoint).
const storageRecordFile = "storage.json"

type storageRecord struct {
	// URL is the storage URL, normalised; empty means the directory
	// "data" in the vault directory.
	URL string `json:"url"`
}

// errStorageMismatch is the refusal to open a vault with another store
// than the one it was made with.
var errStorageMismatch = errors.New("the vault keeps its data elsewhere")

func init() {
	exitMappers = append(exitMappers, func(err error) (int, bool) {
		if errors.Is(err, backends.ErrURL) || errors.Is(err, errStorageMismatch) {
			return exitUsage, true
		}
		return 0, false
	})
}

// vaultStorageURL is --vault-storage, else COFFER_VAULT_STORAGE.
func (g *globals) vaultStorageURL() string {
	if g.vaultStorage != "" {
		return g.vaultStorage
	}
	return g.getenv("COFFER_VAULT_STORAGE")
}

// openVaultStorage opens the store of the vault in dir. rawURL is the
// store asked for ("" for the one the vault records, else the directory
// DIR/data). A vault made earlier with another store is refused before
// anything is contacted; a new vault records rawURL once the store has
// answered. Credentials come from env.
func openVaultStorage(ctx context.Context, dir, rawURL string, env func(string) string) (storage.Storage, error) {
	recPath := filepath.Join(dir, storageRecordFile)
	rec, recorded, err := readStorageRecord(dir)
	if err != nil {
		return nil, err
	}
	want := ""
	if rawURL != "" {
		if want, err = normaliseStorageURL(dir, rawURL); err != nil {
			return nil, err
		}
	} else if recorded {
		want = rec.URL
	}
	if recorded && want != rec.URL {
		return nil, fmt.Errorf("vault storage: %w: the vault in %s keeps its data in %s, not %s; "+
			"give that storage URL (or none), or, if you copied all its objects to the new store, put the new URL in %s",
			errStorageMismatch, dir, describeStorage(rec.URL), describeStorage(want), recPath)
	}
	var st storage.Storage
	if want == "" {
		st, err = local.New(filepath.Join(dir, "data"))
	} else {
		st, err = backends.Open(ctx, want, env)
	}
	if err != nil {
		return nil, fmt.Errorf("vault storage: %w", err)
	}
	if !recorded {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("vault directory: %w", err)
		}
		if err := writeJSONFile(recPath, storageRecord{URL: want}, 0o600); err != nil {
			return nil, fmt.Errorf("vault storage: %w", err)
		}
	}
	return st, nil
}

// readStorageRecord reads the vault's storage record. A vault made before
// stores were recorded (it has meta.db but no record) keeps its data in
// DIR/data.
func readStorageRecord(dir string) (storageRecord, bool, error) {
	var rec storageRecord
	b, err := os.ReadFile(filepath.Join(dir, storageRecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(dir, "meta.db")); err == nil {
			return rec, true, nil
		}
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("vault storage record: %w", err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, false, fmt.Errorf("vault storage record %s: %w", filepath.Join(dir, storageRecordFile), err)
	}
	return rec, true, nil
}

// normaliseStorageURL gives one spelling to equivalent URLs: absolute
// paths, sorted query parameters, no trailing slash; the vault's own
// DIR/data is "".
func normaliseStorageURL(dir, rawURL string) (string, error) {
	if !strings.Contains(rawURL, "://") || windowsPath(rawURL) {
		p, err := filepath.Abs(rawURL)
		if err != nil {
			return "", fmt.Errorf("vault storage: %w", err)
		}
		if p == filepath.Join(dir, "data") {
			return "", nil
		}
		return p, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("vault storage: %w: malformed storage URL: %v", backends.ErrURL, err)
	}
	if u.Scheme == "file" && u.User == nil && (u.Host == "" || u.Host == "localhost") && u.RawQuery == "" {
		p := filepath.FromSlash(u.Path)
		if len(p) >= 3 && p[0] == '\\' && p[2] == ':' {
			p = p[1:] // file:///C:/dir on Windows
		}
		if p != "" {
			return normaliseStorageURL(dir, p)
		}
	}
	u.RawQuery = u.Query().Encode()
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

func windowsPath(s string) bool {
	return len(s) >= 3 && s[1] == ':' && (s[2] == '\\' || s[2] == '/')
}

func describeStorage(u string) string {
	if u == "" {
		return "its directory (data/)"
	}
	return u
}
