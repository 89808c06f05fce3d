package vaultwire

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Error is the JSON body of every error answer.
type Error struct {
	Code    string        `json:"code"`              // one of the codes of the table
	Message string        `json:"message"`           // for people
	Missing []vaultapi.ID `json:"missing,omitempty"` // code "missing_blobs"
}

// ErrTooLarge is returned (wrapped) for a request body over the limit; it
// is a kind of bad request.
var ErrTooLarge = fmt.Errorf("%w: request too large", vaultapi.ErrBadRequest)

// ErrUnavailable is returned (wrapped) when the vault is overloaded or
// shutting down; clients retry it.
var ErrUnavailable = errors.New("vault unavailable, try again later")

// mapping is the one table from error to wire code and status. Order
// matters: the first sentinel that matches wins.
var mapping = []struct {
	code   string
	status int
	err    error
}{
	{"too_large", http.StatusRequestEntityTooLarge, ErrTooLarge},
	{"bad_request", http.StatusBadRequest, vaultapi.ErrBadRequest},
	{"unauthorized", http.StatusUnauthorized, vaultapi.ErrUnauthorized},
	{"forbidden", http.StatusForbidden, vaultapi.ErrForbidden},
	{"not_found", http.StatusNotFound, vaultapi.ErrNotFound},
	{"no_session", http.StatusGone, vaultapi.ErrNoSession},
	{"damaged", http.StatusUnprocessableEntity, vaultapi.ErrDamaged},
	{"unavailable", http.StatusServiceUnavailable, ErrUnavailable},
}

const (
	codeMissing  = "missing_blobs"
	codeInternal = "internal"
)

// FromError returns the status and body that carry err.
func FromError(err error) (int, Error) {
	var mb *vaultapi.MissingBlobsError
	if errors.As(err, &mb) {
		return http.StatusConflict, Error{Code: codeMissing, Message: err.Error(), Missing: mb.IDs}
	}
	for _, m := range mapping {
		if errors.Is(err, m.err) {
			return m.status, Error{Code: m.code, Message: err.Error()}
		}
	}
	return http.StatusInternalServerError, Error{Code: codeInternal, Message: "internal error"}
}

// RemoteError is an error answer of the vault. errors.Is matches the
// vaultapi sentinel its code names.
type RemoteError struct {
	Status int
	Body   Error
	err    error // sentinel, or nil
}

func (e *RemoteError) Error() string {
	msg := e.Body.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return "vault: " + msg
}

func (e *RemoteError) Unwrap() error { return e.err }

// Transient reports whether trying again may succeed.
func (e *RemoteError) Transient() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 && e.Status != http.StatusNotImplemented
}

// ToError rebuilds the error of an answer with status and body (the raw
// body; it may not be JSON when a proxy answered).
func ToError(status int, body []byte) error {
	var e Error
	if json.Unmarshal(body, &e) != nil || e.Code == "" {
		e = Error{Code: "", Message: fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))}
	}
	if e.Code == codeMissing {
		return &vaultapi.MissingBlobsError{IDs: e.Missing}
	}
	re := &RemoteError{Status: status, Body: e}
	for _, m := range mapping {
		if m.code == e.Code {
			re.err = m.err
			return re
		}
	}
	// Unknown code: fall back on the status.
	for _, m := range mapping {
		if m.status == status {
			re.err = m.err
			break
		}
	}
	return re
}
