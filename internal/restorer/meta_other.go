//go:build !unix

package restorer

import (
	"fmt"
	"os"
	"time"

	"github.com/coffer-backup/coffer/internal/format"
)

func setMeta(path string, n *format.Node, owners bool) error {
	if n.Type == format.TypeSymlink {
		return nil
	}
	if err := os.Chmod(path, os.FileMode(n.Mode&0o777)); err != nil {
		return fmt.Errorf("set mode: %w", err)
	}
	return os.Chtimes(path, time.Unix(0, n.ATime), time.Unix(0, n.MTime))
}

func makeSpecial(path string, n *format.Node) error {
	return fmt.Errorf("cannot restore a %s on this system", n.Type)
}
