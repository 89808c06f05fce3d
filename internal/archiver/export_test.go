package archiver

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/coffer-backup/coffer/internal/folderindex"
	"github.com/coffer-backup/coffer/internal/repo"
)

// CountReusedTrees turns tree reuse on or off for the backups that follow
// and counts the trees reused; call the returned function to undo.
func CountReusedTrees(reuse bool) (count func() uint64, undo func()) {
	var n atomic.Uint64
	reuseTrees = reuse
	onReuse = func() { n.Add(1) }
	return n.Load, func() { reuseTrees, onReuse = true, nil }
}

// CountFoldersSame counts the folders the folder index let backups keep
// unloaded and uncompared; call the returned function to undo.
func CountFoldersSame() (count func() uint64, undo func()) {
	var n atomic.Uint64
	onFolderSame = func() { n.Add(1) }
	return n.Load, func() { onFolderSame = nil }
}

// SwapFolderTree rewrites the folder index that a backup with opts would
// use (opts.Parent the point it was written for), giving the folder at
// path the tree the index holds for the folder at other: an index that
// disagrees with the parent point, as only a bug could make one. paths
// are every folder the index may hold.
func SwapFolderTree(r *repo.Repo, opts Options, paths []string, path, other string) error {
	ru := &run{r: r, opts: opts}
	ru.openFolders()
	if ru.folders == nil || ru.folders.prev == nil {
		return errors.New("no folder index for these options")
	}
	f := ru.folders
	f.next.Discard()
	o, ok := f.prev.Get(f.key(other))
	if !ok {
		return fmt.Errorf("%s is not in the folder index", other)
	}
	b := folderindex.NewBuilder()
	for _, p := range paths {
		if e, ok := f.prev.Get(f.key(p)); ok {
			if p == path {
				e.Tree = o.Tree
			}
			b.Add(f.key(p), e)
		}
	}
	return folderindex.Save(f.file, b.Encode(f.prev.Point(), f.scope, f.mac))
}
