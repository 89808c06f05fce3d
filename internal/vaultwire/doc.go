// Package vaultwire is the wire protocol of the vault over HTTPS, shared by
// vaultserver and vaultclient: request paths, the binary encodings of ID
// batches, locations and commits, the JSON bodies of registration and
// operator calls, error bodies, and the one table mapping vaultapi errors
// to HTTP status codes and back. doc/PROTOCOL.md specifies it in prose.
package vaultwire
