package vaultapi

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of the contract. Implementations wrap them; callers test with
// errors.Is. Transports map them to status codes and back.
var (
	ErrNotFound     = errors.New("not found")
	ErrBadRequest   = errors.New("bad request")
	ErrNoSession    = errors.New("no such backup session, or it expired")
	ErrUnauthorized = errors.New("not authorised")
	ErrForbidden    = errors.New("forbidden")
	ErrDamaged      = errors.New("vault data damaged")
)

// MissingBlobsError refuses a commit that references blobs the vault does
// not hold.
type MissingBlobsError struct{ IDs []ID }

func (e *MissingBlobsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "commit refused: %d referenced blob(s) are not stored", len(e.IDs))
	for i, id := range e.IDs {
		if i == 5 {
			b.WriteString(", …")
			break
		}
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(id.Short())
	}
	return b.String()
}
