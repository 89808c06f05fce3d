package storage

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
)

// Transient marks err as transient: the operation failed for a reason that
// may go away by itself (a dropped connection, a throttled or failing
// service), so trying again is reasonable. errors.Is and errors.As still see
// err through the mark. Drivers mark what they know to be transient (HTTP
// 408, 429 and 5xx answers); IsTransient also recognizes network errors
// without a mark.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err}
}

type transientError struct{ err error }

func (e transientError) Error() string   { return e.err.Error() }
func (e transientError) Unwrap() error   { return e.err }
func (e transientError) Transient() bool { return true }

// IsTransient reports whether err is worth retrying: it was marked with
// Transient, or it is a network error (connection refused or reset, a
// timeout, a connection closed mid-response). ErrNotFound, ErrExists and
// context cancellation or expiry are never transient.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var t interface{ Transient() bool }
	if errors.As(err, &t) {
		return t.Transient()
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF)
}
