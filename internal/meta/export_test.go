package meta

// SetCompactFraction sets the share of free pages (one in n) at which
// CloseCompact copies the file, for a test; the returned func restores it.
func SetCompactFraction(n int64) (restore func()) {
	old := compactFraction
	compactFraction = n
	return func() { compactFraction = old }
}
