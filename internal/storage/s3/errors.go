package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/coffer-backup/coffer/internal/storage"
)

// status returns the HTTP status of a service error, or 0.
func status(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// code returns the S3 error code of a service error, or "".
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// opError maps an error of an operation on an object: missing objects to
// storage.ErrNotFound, throttling and server errors to transient ones.
func (s *Store) opError(op, name string, err error) error {
	st, c := status(err), code(err)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("s3: %s %s: %w", op, name, err)
	case st == 404 || c == "NoSuchKey" || c == "NotFound":
		return fmt.Errorf("s3: %s %s: %w", op, name, storage.ErrNotFound)
	case st == 408 || st == 429 || st >= 500 || c == "SlowDown" || c == "RequestTimeout" ||
		c == "ConditionalRequestConflict" || c == "RequestTimeTooSkewed":
		return storage.Transient(fmt.Errorf("s3: %s %s: %w", op, name, err))
	}
	if st == 0 && isNetwork(err) {
		return fmt.Errorf("s3: %s %s: %w", op, name, err) // transient by storage.IsTransient
	}
	return fmt.Errorf("s3: %s %s: %w", op, name, err)
}

// putError maps an error of a Put; with put-if-absent a failed
// precondition means the object exists.
func (s *Store) putError(name string, err error, ifAbsent bool) error {
	if err == nil {
		return nil
	}
	if ifAbsent && (status(err) == 412 || code(err) == "PreconditionFailed") {
		return fmt.Errorf("s3: put %s: %w", name, storage.ErrExists)
	}
	return s.opError("put", name, err)
}

func isNetwork(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// openError explains why the store could not be opened, naming the likely
// cause: the service unreachable, the credentials missing or refused.
func (s *Store) openError(what string, err error) error {
	endpoint := s.c.Endpoint
	if endpoint == "" {
		endpoint = "AWS S3 (region " + s.c.Region + ")"
	}
	st, c := status(err), code(err)
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("s3: %s at %s: %w", what, endpoint, err)
	case strings.Contains(err.Error(), "get identity") || strings.Contains(err.Error(), "failed to retrieve credentials"):
		// Finding credentials failed before any request was sent.
		return fmt.Errorf("s3: no usable credentials for %s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (%w)", endpoint, err)
	case st == 0 && errors.As(err, &opErr):
		return fmt.Errorf("s3: cannot reach endpoint %s: %v; is the service running? (%w)", endpoint, opErr.Err, err)
	case st == 0 && isNetwork(err):
		return fmt.Errorf("s3: cannot reach endpoint %s; is the service running? (%w)", endpoint, err)
	case st == 403 || c == "InvalidAccessKeyId" || c == "SignatureDoesNotMatch" || c == "AccessDenied":
		return fmt.Errorf("s3: %s at %s: access denied (%s): check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the bucket policy (%w)",
			what, endpoint, orStatus(c, st), err)
	case st == 301 || c == "PermanentRedirect" || c == "AuthorizationHeaderMalformed":
		return fmt.Errorf("s3: %s at %s: wrong region (%s): set ?region= to the bucket's region (%w)", what, endpoint, orStatus(c, st), err)
	}
	return fmt.Errorf("s3: %s at %s: %w", what, endpoint, err)
}

func orStatus(code string, status int) string {
	if code != "" {
		return code
	}
	return fmt.Sprintf("HTTP %d", status)
}
