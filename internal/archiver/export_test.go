package archiver

import (
	"sync/atomic"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// CountReusedTrees turns tree reuse on or off for the backups that follow
// and counts the trees reused; call the returned function to undo.
func CountReusedTrees(reuse bool) (count func() uint64, undo func()) {
	var n atomic.Uint64
	reuseTrees = reuse
	onReuse = func(vaultapi.ID) { n.Add(1) }
	return n.Load, func() { reuseTrees, onReuse = true, nil }
}
