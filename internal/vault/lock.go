package vault

import "sync"

// keyLock serialises work per key (here: per backup session), so that two
// commits of one session cannot both pass the session check.
type keyLock struct {
	mu   sync.Mutex
	held map[string]*keyLockEntry
}

type keyLockEntry struct {
	mu   sync.Mutex
	refs int
}

// lock locks key and returns its unlock.
func (l *keyLock) lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.held == nil {
		l.held = make(map[string]*keyLockEntry)
	}
	e := l.held[key]
	if e == nil {
		e = &keyLockEntry{}
		l.held[key] = e
	}
	e.refs++
	l.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.held, key)
		}
		l.mu.Unlock()
	}
}
