// Package vaulttest is the conformance suite of the agent⇄vault contract
// (vaultapi.Vault). Run checks an implementation against the semantics
// written in package vaultapi; every implementation runs it in its tests.
//
// A Harness makes a fresh vault with two registered machines, A and B, and
// hands out the contract as each sees it, with the vault's clock. The
// embedded vault gives the vault core's per-machine views directly. A
// transport puts the vault core (with a Clock's Now as its clock) behind
// its server, registers two machines, and gives two clients, one with
// each machine's credentials:
//
//	vaulttest.Run(t, vaulttest.Harness{New: func(t *testing.T) vaulttest.Env {
//		clock := vaulttest.NewClock(time.Time{})
//		core := vault.New(vault.Config{Meta: …, Storage: …, Clock: clock.Now})
//		srv := … // serve core; t.Cleanup(srv.Close)
//		return vaulttest.Env{A: client(srv, "a"), B: client(srv, "b"),
//			Now: clock.Now, Advance: clock.Advance}
//	}})
//
// The suite covers info, key slots, sessions and their leases, batched blob
// lookups, pack upload (with every way a pack can be refused), commits,
// points, blob locations, range reads of packs up to the largest pack an
// agent writes, concurrency, cancellation, and the isolation of machines:
// what one machine has is "not found" to another.
package vaulttest
