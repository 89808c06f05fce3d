package meta

// SetCompactFraction sets the share of free pages (one in n) at which
// CloseCompact copies the file, for a test; the returned func restores it.
func SetCompactFraction(n int64) (restore func()) {
	old := compactFraction
	compactFraction = n
	return func() { compactFraction = old }
}

// SetPendingMax sets how many pending entries wait before they enter the
// index, for a test; the returned func restores it.
func SetPendingMax(n int) (restore func()) {
	old := pendingMax
	pendingMax = n
	return func() { pendingMax = old }
}

// Waste is waste, for the tests outside the package.
func (s *Bolt) Waste() (free, slack, used int64, err error) { return s.waste() }
