package vaulttest

import (
	"time"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// testIsolation: machine B sees nothing of machine A; what A has is "not
// found" to B, never "forbidden", so B learns nothing of it.
func testIsolation(f *fixture) {
	if err := f.A.PutKeySlot(f.ctx, vaultapi.KeySlot{ID: "passphrase", Data: []byte("a's slot")}); err != nil {
		f.t.Fatalf("PutKeySlot: %v", err)
	}
	data := f.pack(vaultapi.KindData, 20, 300)
	manifest := f.pack(vaultapi.KindInfo, 1, 50)
	pa := f.backup(f.A, data, manifest)

	f.wantSlots(f.B, map[string]string{})
	f.wantPoints(f.B)
	_, err := f.B.Point(f.ctx, pa.ID)
	f.wantErr("B reads A's point", err, vaultapi.ErrNotFound)
	f.wantAbsent(f.B, data)
	f.wantAbsent(f.B, manifest)
	_, err = f.B.ReadPack(f.ctx, data.Name, 0, int64(len(data.Data)))
	f.wantErr("B reads A's pack", err, vaultapi.ErrNotFound)

	// B cannot commit a point over A's blobs.
	s := f.begin(f.B)
	refs := append(packIDs(data), manifest.Entries[0].ID)
	_, err = f.B.Commit(f.ctx, s.ID, vaultapi.Commit{Info: manifest.Entries[0].ID, Refs: refs})
	f.wantMissing("B commits A's blobs", err, refs)
	f.wantPoints(f.B)

	// B's own backup stays B's.
	pb := f.backup(f.B, f.pack(vaultapi.KindData, 5, 100), f.pack(vaultapi.KindInfo, 1, 50))
	_, err = f.A.Point(f.ctx, pb.ID)
	f.wantErr("A reads B's point", err, vaultapi.ErrNotFound)
	f.wantPoints(f.A, pa)
	f.wantPoints(f.B, pb)
	f.wantSlots(f.A, map[string]string{"passphrase": "a's slot"})
}

// testIsolationSessions: a machine cannot use, renew or end another
// machine's session.
func testIsolationSessions(f *fixture) {
	sa := f.begin(f.A)
	sb := f.begin(f.B)
	p := f.pack(vaultapi.KindData, 4, 100)
	f.wantErr("A stores in B's session", f.A.StorePack(f.ctx, sb.ID, p), vaultapi.ErrNoSession)
	f.wantErr("B stores in A's session", f.B.StorePack(f.ctx, sa.ID, p), vaultapi.ErrNoSession)
	f.wantAbsent(f.A, p)
	f.wantAbsent(f.B, p)
	_, err := f.A.RenewSession(f.ctx, sb.ID)
	f.wantErr("A renews B's session", err, vaultapi.ErrNoSession)
	_, err = f.A.Commit(f.ctx, sb.ID, vaultapi.Commit{Info: f.id()})
	f.wantErr("A commits B's session", err, vaultapi.ErrNoSession)

	// B ending A's session leaves it open.
	_ = f.B.EndSession(f.ctx, sa.ID)
	f.store(f.A, sa.ID, p)
	f.wantAbsent(f.B, p)
	pa := f.commit(f.A, sa.ID, p.Entries[0].ID, packIDs(p))
	f.wantPoints(f.A, pa)
	f.wantPoints(f.B)

	// B's session was never touched by A's attempts.
	f.Advance(time.Second)
	if _, err := f.B.RenewSession(f.ctx, sb.ID); err != nil {
		f.t.Fatalf("B renews its own session: %v", err)
	}
}

// testIsolationSamePack: both machines store the same pack; each has its
// own copy, and neither's blobs show up for the other before it stores.
func testIsolationSamePack(f *fixture) {
	p := f.pack(vaultapi.KindData, 10, 400)
	f.backup(f.A, p)
	f.wantAbsent(f.B, p)
	f.backup(f.B, p)
	f.wantStored(f.A, p)
	f.wantStored(f.B, p)
	f.wantRead(f.B, p.Name, 0, int64(len(p.Data)), p.Data)
}
