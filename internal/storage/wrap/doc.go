// Package wrap holds the storage.Storage wrappers that add cross-cutting
// behaviour to any store: Prefix (a store inside a name prefix), Retry
// (exponential backoff with jitter on transient errors), Measure (counts,
// bytes, errors and latency per operation) and Inject (faults, for tests).
// Each wrapper is a storage.Storage itself, so they stack; package backends
// stacks them for the stores it opens.
package wrap
