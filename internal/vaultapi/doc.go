// Package vaultapi is the contract between the agent and the vault: the Go
// interface the archiver, restorer and mount see, the types that cross it,
// and the errors it returns. The embedded vault (package vault) implements
// it in-process; the HTTPS transport carries the same interface. The
// conformance suite in vaulttest runs against every implementation.
//
// The vault sees only what it needs to manage data without keys: blob IDs
// (keyed hashes), kinds, sizes, which pack holds which blob, recovery-point
// times and stats, and the set of blob IDs each recovery point references.
package vaultapi
