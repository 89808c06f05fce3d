// Package metatest is the conformance suite of the vault's metadata store
// contract (meta.Store): Run checks any implementation against the
// semantics written in package meta. The embedded bbolt store runs it in
// its tests; a PostgreSQL store runs the same suite.
package metatest
