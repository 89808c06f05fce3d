package vaulttest

import (
	"strings"
	"time"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func testInfo(f *fixture) {
	a, err := f.A.Info(f.ctx)
	if err != nil {
		f.t.Fatalf("Info of A: %v", err)
	}
	b, err := f.B.Info(f.ctx)
	if err != nil {
		f.t.Fatalf("Info of B: %v", err)
	}
	if a.VaultID == "" || a.MachineID == "" || a.MachineName == "" || a.Version == "" {
		f.t.Fatalf("Info of A: got %+v, want vault ID, machine ID and name, and version", a)
	}
	if a.VaultID != b.VaultID {
		f.t.Fatalf("Info: vault ID of A %q and of B %q differ; they share one vault", a.VaultID, b.VaultID)
	}
	if a.MachineID == b.MachineID || a.MachineName == b.MachineName {
		f.t.Fatalf("Info: A %+v and B %+v should be different machines", a, b)
	}
	again, err := f.A.Info(f.ctx)
	if err != nil || again != a {
		f.t.Fatalf("Info of A again: got %+v, %v; want %+v", again, err, a)
	}
}

func (f *fixture) wantSlots(v vaultapi.Vault, want map[string]string) {
	f.t.Helper()
	got, err := v.KeySlots(f.ctx)
	if err != nil {
		f.t.Fatalf("KeySlots: %v", err)
	}
	g := map[string]string{}
	for _, s := range got {
		g[s.ID] = string(s.Data)
	}
	if len(g) != len(got) || len(g) != len(want) {
		f.t.Fatalf("KeySlots: got %q, want %q", g, want)
	}
	for id, data := range want {
		if g[id] != data {
			f.t.Fatalf("KeySlots: slot %q: got %q, want %q", id, g[id], data)
		}
	}
}

func testKeySlots(f *fixture) {
	f.wantSlots(f.A, map[string]string{})
	put := func(id, data string) {
		f.t.Helper()
		if err := f.A.PutKeySlot(f.ctx, vaultapi.KeySlot{ID: id, Data: []byte(data)}); err != nil {
			f.t.Fatalf("PutKeySlot(%q): %v", id, err)
		}
	}
	put("passphrase", "slot one")
	put("recovery-1", "recovery slot")
	f.wantSlots(f.A, map[string]string{"passphrase": "slot one", "recovery-1": "recovery slot"})
	// Replacing a slot (a passphrase change) keeps the others.
	put("passphrase", "slot two")
	f.wantSlots(f.A, map[string]string{"passphrase": "slot two", "recovery-1": "recovery slot"})
	big := strings.Repeat("k", 64<<10)
	put("A.z_0-9", big)
	f.wantSlots(f.A, map[string]string{"passphrase": "slot two", "recovery-1": "recovery slot", "A.z_0-9": big})
}

func testKeySlotsRefused(f *fixture) {
	f.wantSlots(f.A, map[string]string{})
	bad := []struct {
		what string
		slot vaultapi.KeySlot
	}{
		{"empty ID", vaultapi.KeySlot{ID: "", Data: []byte("x")}},
		{"ID of 65 bytes", vaultapi.KeySlot{ID: strings.Repeat("a", 65), Data: []byte("x")}},
		{"ID with a slash", vaultapi.KeySlot{ID: "a/b", Data: []byte("x")}},
		{"ID with a space", vaultapi.KeySlot{ID: "a b", Data: []byte("x")}},
		{"ID with a NUL", vaultapi.KeySlot{ID: "a\x00", Data: []byte("x")}},
		{"ID not UTF-8", vaultapi.KeySlot{ID: "a\xff", Data: []byte("x")}},
		{"ID of dots", vaultapi.KeySlot{ID: "..", Data: []byte("x")}},
		{"no data", vaultapi.KeySlot{ID: "passphrase"}},
		{"data over 64 KiB", vaultapi.KeySlot{ID: "passphrase", Data: make([]byte, 64<<10+1)}},
	}
	for _, b := range bad {
		f.wantErr("PutKeySlot with "+b.what, f.A.PutKeySlot(f.ctx, b.slot), vaultapi.ErrBadRequest)
	}
	f.wantSlots(f.A, map[string]string{})
}

func testSessions(f *fixture) {
	s1 := f.begin(f.A)
	s2 := f.begin(f.A)
	if s1.ID == s2.ID {
		f.t.Fatalf("two BeginBackup calls returned the same session %q", s1.ID)
	}
	now := f.Now()
	if !s1.Expires.After(now) {
		f.t.Fatalf("BeginBackup: session expires %v, not after the vault's now %v", s1.Expires, now)
	}
	lease := s1.Expires.Sub(now)

	// Renewing moves the expiry; the session outlives its first lease.
	f.Advance(lease / 2)
	r, err := f.A.RenewSession(f.ctx, s1.ID)
	if err != nil {
		f.t.Fatalf("RenewSession: %v", err)
	}
	if r.ID != s1.ID || !r.Expires.After(s1.Expires) {
		f.t.Fatalf("RenewSession: got %+v, want %q expiring after %v", r, s1.ID, s1.Expires)
	}
	f.Advance(lease/2 + time.Second)
	p := f.pack(vaultapi.KindData, 3, 100)
	f.store(f.A, s1.ID, p)

	// s2 was not renewed: its lease is over.
	f.wantErr("StorePack in a session whose lease ran out", f.A.StorePack(f.ctx, s2.ID, p), vaultapi.ErrNoSession)

	// Ending a session ends it; ending it again is no error.
	if err := f.A.EndSession(f.ctx, s1.ID); err != nil {
		f.t.Fatalf("EndSession: %v", err)
	}
	if err := f.A.EndSession(f.ctx, s1.ID); err != nil {
		f.t.Fatalf("EndSession of an ended session: got %v, want nil", err)
	}
	f.wantErr("StorePack after EndSession", f.A.StorePack(f.ctx, s1.ID, p), vaultapi.ErrNoSession)
	_, err = f.A.Commit(f.ctx, s1.ID, vaultapi.Commit{Info: p.Entries[0].ID, Refs: packIDs(p)})
	f.wantErr("Commit after EndSession", err, vaultapi.ErrNoSession)
	_, err = f.A.RenewSession(f.ctx, s1.ID)
	f.wantErr("RenewSession after EndSession", err, vaultapi.ErrNoSession)

	// A commit ends its session.
	s3 := f.begin(f.A)
	f.commit(f.A, s3.ID, p.Entries[0].ID, packIDs(p))
	_, err = f.A.Commit(f.ctx, s3.ID, vaultapi.Commit{Info: p.Entries[0].ID, Refs: packIDs(p)})
	f.wantErr("second Commit of one session", err, vaultapi.ErrNoSession)
	f.wantErr("StorePack after Commit", f.A.StorePack(f.ctx, s3.ID, p), vaultapi.ErrNoSession)
}

func testSessionExpiry(f *fixture) {
	p := f.pack(vaultapi.KindData, 5, 200)
	s := f.begin(f.A)
	f.store(f.A, s.ID, p)
	f.Advance(s.Expires.Sub(f.Now()) + time.Second)

	q := f.pack(vaultapi.KindData, 5, 200)
	f.wantErr("StorePack in an expired session", f.A.StorePack(f.ctx, s.ID, q), vaultapi.ErrNoSession)
	f.wantAbsent(f.A, q)
	_, err := f.A.Commit(f.ctx, s.ID, vaultapi.Commit{Info: p.Entries[0].ID, Refs: packIDs(p)})
	f.wantErr("Commit in an expired session", err, vaultapi.ErrNoSession)
	_, err = f.A.RenewSession(f.ctx, s.ID)
	f.wantErr("RenewSession of an expired session", err, vaultapi.ErrNoSession)
	f.wantPoints(f.A)

	// What the expired session stored stays, and a new session can use it.
	f.wantStored(f.A, p)
	s2 := f.begin(f.A)
	f.commit(f.A, s2.ID, p.Entries[0].ID, packIDs(p))
}

func testSessionUnknown(f *fixture) {
	p := f.pack(vaultapi.KindData, 1, 10)
	for _, id := range []string{"", "nope", strings.Repeat("0", 32), "../x"} {
		f.wantErr("StorePack in session "+id, f.A.StorePack(f.ctx, id, p), vaultapi.ErrNoSession)
		_, err := f.A.Commit(f.ctx, id, vaultapi.Commit{Info: p.Entries[0].ID})
		f.wantErr("Commit in session "+id, err, vaultapi.ErrNoSession)
		_, err = f.A.RenewSession(f.ctx, id)
		f.wantErr("RenewSession of session "+id, err, vaultapi.ErrNoSession)
	}
	f.wantAbsent(f.A, p)
}
