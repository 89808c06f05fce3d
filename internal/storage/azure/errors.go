package azure

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/coffer-backup/coffer/internal/storage"
)

// status returns the HTTP status of a service error, or 0.
func status(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// code returns the Azure error code of a service error, or "".
func code(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// opError maps an error of an operation on a blob: missing blobs to
// storage.ErrNotFound, throttling and server errors to transient ones.
func (s *Store) opError(op, name string, err error) error {
	st := status(err)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("azblob: %s %s: %w", op, name, err)
	case st == 404:
		return fmt.Errorf("azblob: %s %s: %w (%s)", op, name, storage.ErrNotFound, orStatus(code(err), st))
	case st == 408 || st == 429 || st >= 500:
		return storage.Transient(fmt.Errorf("azblob: %s %s: %w", op, name, err))
	}
	return fmt.Errorf("azblob: %s %s: %w", op, name, err)
}

// openError explains why the store could not be opened, naming the likely
// cause: the service unreachable, the credentials refused.
func (s *Store) openError(what string, err error) error {
	st, c := status(err), code(err)
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("azblob: %s at %s: %w", what, s.endpoint, err)
	case st == 0 && errors.As(err, &opErr):
		return fmt.Errorf("azblob: cannot reach endpoint %s: %v; is the service running? (%w)", s.endpoint, opErr.Err, err)
	case st == 0 && errors.As(err, &netErr):
		return fmt.Errorf("azblob: cannot reach endpoint %s; is the service running? (%w)", s.endpoint, err)
	case st == 403 || c == "AuthenticationFailed" || c == "AuthorizationFailure":
		return fmt.Errorf("azblob: %s at %s: access denied (%s): check AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, "+
			"AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_SAS_TOKEN (%w)", what, s.endpoint, orStatus(c, st), err)
	case c == "InvalidHeaderValue" || c == "InvalidQueryParameterValue":
		return fmt.Errorf("azblob: %s at %s: the service refused the request (%s); Azurite needs --skipApiVersionCheck (%w)",
			what, s.endpoint, c, err)
	}
	return fmt.Errorf("azblob: %s at %s: %w", what, s.endpoint, err)
}

func orStatus(code string, status int) string {
	if code != "" {
		return code
	}
	return fmt.Sprintf("HTTP %d", status)
}
