package folderindex

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "folders.idx")
	for _, entries := range [][]testEntry{severalEntries(), nil} {
		data := encode(entries)
		if err := Save(path, data); err != nil {
			t.Fatal(err)
		}
		ix, err := Load(path, testMAC)
		if err != nil {
			t.Fatal(err)
		}
		if got := reencode(t, ix, testMAC); !bytes.Equal(got, data) {
			t.Errorf("loaded index re-encodes to %x, want %x", got, data)
		}
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode = %v, want 0600", st.Mode().Perm())
		}
	}
	if n := dirLen(t, dir); n != 1 {
		t.Errorf("folder holds %d entries, want only the index (no temporary file left)", n)
	}
}

func TestSaveCreatesFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing", "deeper")
	path := filepath.Join(dir, "folders.idx")
	data := encode(severalEntries())
	if err := Save(path, data); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, testMAC); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&^0o700 != 0 {
			t.Errorf("folder mode = %v, want at most 0700", st.Mode().Perm())
		}
	}
}

func TestSaveFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// A folder where the file should be: the rename fails.
	path := filepath.Join(dir, "folders.idx")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, encode(nil)); err == nil {
		t.Fatal("Save over a non-empty folder succeeded")
	}
	if n := dirLen(t, dir); n != 1 {
		t.Errorf("folder holds %d entries after a failed Save, want 1 (no temporary file left)", n)
	}
}

func TestSaveUnderFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Save(filepath.Join(file, "folders.idx"), encode(nil)); err == nil {
		t.Error("Save under a file succeeded")
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none"), testMAC)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestLoadDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "folders.idx")
	data := encode(severalEntries())
	data[len(data)/2] ^= 1
	if err := Save(path, data); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, testMAC); !errors.Is(err, ErrIndex) {
		t.Errorf("Load of a damaged file: %v, want ErrIndex", err)
	}
}

// dirLen returns how many entries dir holds.
func dirLen(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
