// Package vaulttest is the conformance suite of the agent⇄vault contract
// (vaultapi.Vault). Run checks an implementation against the semantics
// written in package vaultapi: the embedded vault runs it in-process, and
// the HTTPS transport runs it with the vault core behind a server and the
// client as the contract. A Harness says how to make a fresh vault with two
// machines and how to move the vault's clock.
package vaulttest
