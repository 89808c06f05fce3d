// Package storage is the vault's blob storage: a small contract over names
// and bytes, implemented by a local directory (package local), Azure Blob
// Storage (azure), S3 (s3) and an in-memory store for tests (memory).
// Package backends opens one from a URL, package wrap adds retry, metrics
// and fault injection, and package storagetest is the conformance suite
// every implementation passes. It imports nothing else of Coffer.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) by Get, Stat and Delete when no object
// has the name.
var ErrNotFound = errors.New("storage: object not found")

// ErrExists is returned (wrapped) by Put with IfAbsent when an object of
// that name already exists. The existing object is left untouched.
var ErrExists = errors.New("storage: object already exists")

// Info describes a stored object.
type Info struct {
	Name    string
	Size    int64
	ModTime time.Time // as the store reports it; informational only
}

// PutOptions tune Put.
type PutOptions struct {
	// IfAbsent makes Put fail with ErrExists when the name is taken
	// (put-if-absent). Immutable, content-named objects are written so.
	IfAbsent bool
	// Consumed, if set, is called at most once, when Put has read the
	// body for the last time, and before Put returns; the caller may then
	// reuse the body's memory while Put finishes (the local driver syncs
	// the file after calling it). A driver or wrapper that might read the
	// body again (a retry) does not call it; then the caller reuses the
	// memory once Put returns, as without it.
	Consumed func()
}

// Storage holds objects named by slash-separated names such as
// "packs/ab/ab12…". Names are relative, never empty, contain no "." or ".."
// element and no empty element (see CheckName); methods given an invalid
// name fail. A name must not be both an object and a directory-like prefix
// of another object ("a" and "a/b"): a local directory cannot hold both.
// Names that differ only in case may collide on case-insensitive file
// systems. All methods are safe for concurrent use.
//
// Errors are wrapped; test them with errors.Is (ErrNotFound, ErrExists,
// context.Canceled) and IsTransient.
type Storage interface {
	// Put stores size bytes read from r under name. The object appears
	// atomically and completely or not at all: a reader never sees a partial
	// object, and a failed or cancelled Put leaves no object behind. When Put
	// returns nil the object is durable. Put reads r once, streaming: it
	// does not hold the whole object in memory when it can avoid it (a
	// retrying wrapper may rewind an r that is an io.Seeker and read it
	// again). If r yields a byte count other than size, Put fails and
	// stores nothing.
	Put(ctx context.Context, name string, r io.Reader, size int64, opts PutOptions) error

	// Get returns the bytes [off, off+length) of the object; length < 0
	// means to the end. A range past the end (off > size, or off+length >
	// size) is an error; an empty range at the end (off == size) is not.
	// The caller closes the reader.
	Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error)

	// Stat returns the object's Info.
	Stat(ctx context.Context, name string) (Info, error)

	// List calls fn for each object whose name starts with prefix, in
	// lexical (byte) order of name, until fn returns an error, which List
	// then returns. Objects written or deleted during a List may or may not
	// be seen.
	List(ctx context.Context, prefix string, fn func(Info) error) error

	// Delete removes the object; a missing object is ErrNotFound.
	Delete(ctx context.Context, name string) error
}
