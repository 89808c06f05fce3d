package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// Exit codes, documented in doc/CLI.md and in `coffer --help`.
const (
	exitOK         = 0
	exitError      = 1
	exitUsage      = 2
	exitPartial    = 3
	exitPassphrase = 4
	exitDamaged    = 5
	exitRefused    = 6
	exitNoSpace    = 7 // the cache folder is short of free space
	exitBusy       = 8 // another backup holds the backup lock
)

// usageError marks a mistake in the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// errPartial is returned when the command finished but skipped something it
// already reported.
var errPartial = errors.New("finished with problems; see the report above")

// partialError is a partial result (exit code 3) with a message of its own.
type partialError struct{ msg string }

func (e partialError) Error() string        { return e.msg }
func (e partialError) Is(target error) bool { return target == errPartial }

func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errPartial):
		return exitPartial
	case errors.As(err, &ue):
		return exitUsage
	}
	for _, m := range exitMappers {
		if c, ok := m(err); ok {
			return c
		}
	}
	return exitError
}

// exitMappers map errors of internal packages to exit codes; each file that
// wires a package adds its mapping here, so the mapping lives in one place.
var exitMappers []func(error) (int, bool)

// argCount accepts between lo and hi arguments (hi < 0: no upper bound),
// and otherwise fails as bad usage with msg, which should show an example.
func argCount(lo, hi int, msg string) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < lo || hi >= 0 && len(args) > hi {
			return usageError{errors.New(msg)}
		}
		return nil
	}
}
