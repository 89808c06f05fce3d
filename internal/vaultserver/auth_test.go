package vaultserver_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/policy"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultclient"
	"github.com/coffer-backup/coffer/internal/vaultserver/servertest"
	"github.com/coffer-backup/coffer/internal/vaultwire"
)

func randID() vaultapi.ID {
	var id vaultapi.ID
	rand.Read(id[:])
	return id
}

// backup stores a data pack and a metadata pack and commits a point,
// returning the data pack and the point.
func backup(t *testing.T, v vaultapi.Vault) (vaultapi.Pack, vaultapi.Point) {
	t.Helper()
	ctx := context.Background()
	w := pack.NewWriter(nil)
	w.Add(vaultapi.KindData, randID(), []byte("sealed data"))
	p := w.Finish()
	w = pack.NewWriter(nil)
	w.Add(vaultapi.KindInfo, randID(), []byte("sealed manifest"))
	mp := w.Finish()
	s, err := v.BeginBackup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, pk := range []vaultapi.Pack{p, mp} {
		if err := v.StorePack(ctx, s.ID, pk); err != nil {
			t.Fatal(err)
		}
	}
	pt, err := v.Commit(ctx, s.ID, vaultapi.Commit{Info: mp.Entries[0].ID, Refs: []vaultapi.ID{p.Entries[0].ID}})
	if err != nil {
		t.Fatal(err)
	}
	return p, pt
}

// check fails unless err matches want (nil: success) and, if given,
// contains msg.
func check(t *testing.T, err, want error, msg string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("got error %v, want success", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not say %q", err, msg)
	}
}

func TestAuthorisation(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	a := env.Machine(t, "alpha")
	b := env.Machine(t, "beta")
	opToken, admin := env.Operator(t)
	anon := env.Client(t, "")
	bogus := env.Client(t, "cfm_not-a-token")
	asOperator := env.Client(t, opToken)
	pA, ptA := backup(t, a)
	_, ptB := backup(t, b)
	mAdmin := func(tok string) *vaultclient.Admin {
		ad, err := vaultclient.NewAdmin(env.Config(tok))
		if err != nil {
			t.Fatal(err)
		}
		return ad
	}
	regA := env.Register(t, "alpha-2")
	anonAdmin := mAdmin("")
	machineAdmin := mAdmin(regA.Token)

	tests := []struct {
		name string
		call func() error
		want error
		msg  string
	}{
		{"A reads its points", func() error {
			ps, err := a.Points(ctx)
			if err == nil && (len(ps) != 1 || ps[0].ID != ptA.ID) {
				t.Fatalf("A sees %+v", ps)
			}
			return err
		}, nil, ""},
		{"A reads its pack", func() error { rc, err := a.ReadPack(ctx, pA.Name, 0, 8); closeRC(rc); return err }, nil, ""},
		{"B does not see A's point", func() error { _, err := b.Point(ctx, ptA.ID); return err }, vaultapi.ErrNotFound, ""},
		{"B lists only its own points", func() error {
			ps, err := b.Points(ctx)
			if err == nil && (len(ps) != 1 || ps[0].ID != ptB.ID) {
				t.Fatalf("B sees %+v", ps)
			}
			return err
		}, nil, ""},
		{"B cannot read A's pack", func() error { rc, err := b.ReadPack(ctx, pA.Name, 0, 8); closeRC(rc); return err }, vaultapi.ErrNotFound, ""},
		{"B does not hold A's blobs", func() error {
			has, err := b.HasBlobs(ctx, []vaultapi.ID{pA.Entries[0].ID})
			if err == nil && has[0] {
				t.Fatal("B holds A's blob")
			}
			locs, err := b.Locate(ctx, []vaultapi.ID{pA.Entries[0].ID})
			if err == nil && locs[0].Pack != "" {
				t.Fatal("B locates A's blob")
			}
			return err
		}, nil, ""},
		{"B cannot commit A's blobs", func() error {
			s, err := b.BeginBackup(ctx)
			if err != nil {
				return err
			}
			_, err = b.Commit(ctx, s.ID, vaultapi.Commit{Info: pA.Entries[0].ID})
			var mb *vaultapi.MissingBlobsError
			if !errors.As(err, &mb) {
				t.Fatalf("commit of A's blobs by B: %v", err)
			}
			return nil
		}, nil, ""},
		{"machine cannot delete a point", func() error { return a.DeletePoint(ctx, ptA.ID) }, vaultapi.ErrForbidden, "operator action"},
		{"machine cannot use the operator surface", func() error { _, err := machineAdmin.Machines(ctx); return err }, vaultapi.ErrForbidden, "operator token"},
		{"machine cannot set its policy", func() error {
			_, err := machineAdmin.SetPolicy(ctx, "alpha", policy.Spec{Retention: policy.RetentionSpec{KeepLast: 1}})
			return err
		}, vaultapi.ErrForbidden, "operator token"},
		{"machine cannot undelete points", func() error { return machineAdmin.UndeletePoint(ctx, "", ptA.ID) }, vaultapi.ErrForbidden, "operator token"},
		{"machine cannot run retention", func() error { _, err := machineAdmin.RunRetention(ctx); return err }, vaultapi.ErrForbidden, "operator token"},
		{"machine cannot read other machines' jobs", func() error { _, err := machineAdmin.Jobs(ctx, "beta"); return err }, vaultapi.ErrForbidden, "operator token"},
		{"operator lists machines", func() error {
			ms, err := admin.Machines(ctx)
			if err == nil && len(ms) != 3 {
				t.Fatalf("operator sees %d machines, want 3", len(ms))
			}
			return err
		}, nil, ""},
		{"operator lists a machine's points", func() error {
			ps, err := admin.MachinePoints(ctx, "beta")
			if err == nil && (len(ps) != 1 || ps[0].ID != ptB.ID) {
				t.Fatalf("operator sees %+v", ps)
			}
			return err
		}, nil, ""},
		{"operator is not a machine", func() error { _, err := asOperator.Points(ctx); return err }, vaultapi.ErrForbidden, ""},
		{"anonymous machine call", func() error { _, err := anon.Points(ctx); return err }, vaultapi.ErrUnauthorized, "no credentials"},
		{"anonymous operator call", func() error { _, err := anonAdmin.Machines(ctx); return err }, vaultapi.ErrUnauthorized, ""},
		{"unknown token", func() error { _, err := bogus.Info(ctx); return err }, vaultapi.ErrUnauthorized, "unknown token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.call(), tc.want, tc.msg) })
	}
}

func closeRC(rc interface{ Close() error }) {
	if rc != nil {
		rc.Close()
	}
}

func TestCredentials(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	cfg := env.Config("")
	register := func(secret, name string) (vaultwire.RegisterResponse, error) {
		return vaultclient.Register(ctx, cfg, vaultwire.RegisterRequest{Secret: secret, Name: name})
	}

	expiring := env.Enrolment(t, time.Hour)
	revoked := env.Enrolment(t, time.Hour)
	if err := env.Authority.RevokeEnrolment(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	good := env.Enrolment(t, 240*time.Hour)

	// A machine token that expires, and one that is revoked.
	reg, err := register(good.Secret, "old")
	check(t, err, nil, "")
	expTok := "cfm_expiring-token"
	sum := sha256.Sum256([]byte(expTok))
	err = env.Meta.PutToken(ctx, meta.Token{ID: "exp", Hash: hex.EncodeToString(sum[:]), Kind: meta.TokenMachine, Machine: reg.MachineID,
		Created: env.Clock.Now(), Expires: env.Clock.Now().Add(time.Minute)})
	check(t, err, nil, "")
	revReg, err := register(good.Secret, "revoked-machine")
	check(t, err, nil, "")
	p, err := env.Authority.Authenticate(ctx, revReg.Token)
	check(t, err, nil, "")
	check(t, env.Authority.RevokeToken(ctx, p.TokenID), nil, "")

	env.Clock.Advance(2 * time.Hour)

	tests := []struct {
		name string
		call func() error
		want error
		msg  string
	}{
		{"valid credentials register", func() error { _, err := register(good.Secret, "new"); return err }, nil, ""},
		{"expired credentials file", func() error { _, err := register(expiring.Secret, "x1"); return err }, vaultapi.ErrUnauthorized, "expired"},
		{"revoked credentials file", func() error { _, err := register(revoked.Secret, "x2"); return err }, vaultapi.ErrUnauthorized, "revoked"},
		{"unknown credentials file", func() error { _, err := register("cfe_nope", "x3"); return err }, vaultapi.ErrUnauthorized, "not known"},
		{"duplicate name", func() error { _, err := register(good.Secret, "old"); return err }, vaultapi.ErrForbidden, "already registered"},
		{"bad name", func() error { _, err := register(good.Secret, "a/b"); return err }, vaultapi.ErrBadRequest, "machine name"},
		{"expired machine token", func() error { _, err := env.Client(t, expTok).Points(ctx); return err }, vaultapi.ErrUnauthorized, "expired"},
		{"revoked machine token", func() error { _, err := env.Client(t, revReg.Token).Points(ctx); return err }, vaultapi.ErrUnauthorized, "revoked"},
		{"valid machine token", func() error { _, err := env.Client(t, reg.Token).Points(ctx); return err }, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.call(), tc.want, tc.msg) })
	}
}

func TestReplace(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	cfg := env.Config("")
	en := env.Enrolment(t, time.Hour)
	reg, err := vaultclient.Register(ctx, cfg, vaultwire.RegisterRequest{Secret: en.Secret, Name: "host"})
	check(t, err, nil, "")
	old := env.Client(t, reg.Token)
	_, pt := backup(t, old)
	check(t, old.PutKeySlot(ctx, vaultapi.KeySlot{ID: "passphrase", Data: []byte("wrapped keys")}), nil, "")
	proof := [32]byte{1, 2, 3}
	check(t, old.SetVerifier(ctx, sha256.Sum256(proof[:])), nil, "")
	check(t, old.SetVerifier(ctx, sha256.Sum256(proof[:])), nil, "")                          // same again: no-op
	check(t, old.SetVerifier(ctx, sha256.Sum256([]byte("other"))), vaultapi.ErrForbidden, "") // set once

	slots, err := vaultclient.ReplaceSlots(ctx, cfg, vaultwire.SlotsRequest{Secret: en.Secret, Name: "host"})
	check(t, err, nil, "")
	if len(slots.Slots) != 1 || string(slots.Slots[0].Data) != "wrapped keys" || slots.MachineID != reg.MachineID {
		t.Fatalf("replace slots = %+v", slots)
	}
	_, err = vaultclient.ReplaceSlots(ctx, cfg, vaultwire.SlotsRequest{Secret: "cfe_wrong", Name: "host"})
	check(t, err, vaultapi.ErrUnauthorized, "")

	replace := func(name string, proof []byte) (vaultwire.RegisterResponse, error) {
		return vaultclient.Register(ctx, cfg, vaultwire.RegisterRequest{Secret: en.Secret, Name: name, Replace: true, Proof: proof})
	}
	_, err = replace("host", []byte("wrong proof of 32 bytes........."))
	check(t, err, vaultapi.ErrForbidden, "wrong passphrase")
	_, err = replace("host", nil)
	check(t, err, vaultapi.ErrForbidden, "wrong passphrase")
	_, err = replace("nobody", proof[:])
	check(t, err, vaultapi.ErrNotFound, "no machine named")
	// The old credentials still work after failed attempts.
	_, err = old.Points(ctx)
	check(t, err, nil, "")

	rr, err := replace("host", proof[:])
	check(t, err, nil, "")
	if rr.MachineID != reg.MachineID || !rr.Replaced {
		t.Fatalf("replace: %+v, want machine %s", rr, reg.MachineID)
	}
	fresh := env.Client(t, rr.Token)
	ps, err := fresh.Points(ctx)
	check(t, err, nil, "")
	if len(ps) != 1 || ps[0].ID != pt.ID {
		t.Fatalf("replaced machine sees %+v, want its old point", ps)
	}
	_, err = old.Points(ctx)
	check(t, err, vaultapi.ErrUnauthorized, "revoked")
}

func TestWrongFingerprint(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	reg := env.Register(t, "alpha")
	cfg := env.Config(reg.Token)
	cfg.Fingerprint = strings.Repeat("ab", 32)
	slept := 0
	cfg.Sleep = func(context.Context, time.Duration) error { slept++; return nil }
	c, err := vaultclient.New(cfg)
	check(t, err, nil, "")
	_, err = c.Points(context.Background())
	check(t, err, vaultclient.ErrFingerprint, "not the vault you registered with")
	if slept != 0 {
		t.Errorf("a wrong fingerprint was retried %d times", slept)
	}
	_, err = vaultclient.Register(context.Background(), cfg, vaultwire.RegisterRequest{Secret: "x", Name: "y"})
	check(t, err, vaultclient.ErrFingerprint, "")
}
