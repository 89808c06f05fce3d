// Package vaultclient is the agent's side of the vault over HTTPS: Client
// implements vaultapi.Vault for a registered machine, Admin the operator
// surface, and Register and ReplaceSlots the registration calls. The vault
// is authenticated by pinning the SHA-256 fingerprint of its certificate
// (no CA); transient failures are retried with exponential backoff where a
// retry is safe; error answers come back as the vaultapi errors, so
// errors.Is works across the wire.
package vaultclient
