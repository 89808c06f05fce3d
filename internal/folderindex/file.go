package folderindex

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/coffer-backup/coffer/internal/atomicfile"
)

// Load reads and decodes the folder index at path. When the file is
// missing, errors.Is(err, fs.ErrNotExist) holds; when it is damaged or
// foreign, errors.Is(err, ErrIndex) does.
func Load(path string, mac MAC) (*Index, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load folder index: %w", err)
	}
	ix, err := Decode(b, mac)
	if err != nil {
		return nil, fmt.Errorf("load folder index %s: %w", path, err)
	}
	return ix, nil
}

// Save writes data to path atomically, with mode 0600: a temporary file in
// the same folder, renamed over path, and removed on any failure. The
// folder is created (0700) if missing.
func Save(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save folder index: %w", err)
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("save folder index: %w", err)
	}
	return nil
}
