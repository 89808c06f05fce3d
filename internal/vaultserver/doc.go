// Package vaultserver serves the vault over HTTPS: the agent⇄vault
// contract (vaultapi) for machines holding a machine token, registration
// with an enrolment secret, and a small operator surface for operator
// tokens. Authority holds the credential logic (enrolment secrets, machine
// and operator tokens, revocation, the replace verifier) over the metadata
// store; Server maps HTTP requests onto the vault core; Serve runs it with
// TLS, timeouts and graceful shutdown. The wire format is in vaultwire and
// doc/PROTOCOL.md.
package vaultserver
