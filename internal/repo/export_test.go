package repo

// CachedTrees is how many trees r's cache holds or is loading.
func CachedTrees(r *Repo) int {
	r.treeMu.Lock()
	defer r.treeMu.Unlock()
	return len(r.trees)
}
