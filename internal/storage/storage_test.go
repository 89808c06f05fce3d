package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/coffer-backup/coffer/internal/storage"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"packs/ab/ab12", true}, {".hidden", true}, {"a..b", true},
		{"", false}, {"/a", false}, {"a/", false}, {"a//b", false}, {".", false},
		{"a/./b", false}, {"..", false}, {"a/../b", false}, {"a\\b", false}, {"a\x00b", false},
	}
	for _, tc := range tests {
		if err := storage.CheckName(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestIsTransient(t *testing.T) {
	netErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("bad request"), false},
		{"marked", storage.Transient(errors.New("503")), true},
		{"marked-and-wrapped", fmt.Errorf("op: %w", storage.Transient(errors.New("429"))), true},
		{"network", fmt.Errorf("get: %w", netErr), true},
		{"reset", syscall.ECONNRESET, true},
		{"unexpected-eof", io.ErrUnexpectedEOF, true},
		{"not-found", storage.Transient(fmt.Errorf("x: %w", storage.ErrNotFound)), false},
		{"exists", fmt.Errorf("x: %w", storage.ErrExists), false},
		{"cancelled", storage.Transient(context.Canceled), false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false},
	}
	for _, tc := range tests {
		if got := storage.IsTransient(tc.err); got != tc.want {
			t.Errorf("IsTransient(%s: %v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
	base := errors.New("x")
	if !errors.Is(storage.Transient(base), base) {
		t.Errorf("Transient hides the error from errors.Is")
	}
}
