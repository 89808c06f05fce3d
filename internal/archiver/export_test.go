package archiver

import "sync/atomic"

// CountReusedTrees turns tree reuse on or off for the backups that follow
// and counts the trees reused; call the returned function to undo.
func CountReusedTrees(reuse bool) (count func() uint64, undo func()) {
	var n atomic.Uint64
	reuseTrees = reuse
	onReuse = func() { n.Add(1) }
	return n.Load, func() { reuseTrees, onReuse = true, nil }
}
