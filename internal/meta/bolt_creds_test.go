package meta

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func openTest(t *testing.T) *Bolt {
	t.Helper()
	s, err := OpenBolt(filepath.Join(t.TempDir(), "meta.db"), func() string { return "v" })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestCredentials(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.CreateMachine(ctx, Machine{ID: "m1", Name: "one", Created: now}); err != nil {
		t.Fatal(err)
	}

	// Enrolments: by hash, listed, revoked by ID.
	if _, err := s.EnrolmentByHash(ctx, "h1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing enrolment: %v", err)
	}
	e := Enrolment{ID: "e1", Hash: "h1", Created: now, Expires: now.Add(time.Hour)}
	if err := s.PutEnrolment(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeEnrolment(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	got, err := s.EnrolmentByHash(ctx, "h1")
	if err != nil || !got.Revoked || !got.Expires.Equal(e.Expires) {
		t.Fatalf("enrolment = %+v, %v; want revoked", got, err)
	}
	if err := s.RevokeEnrolment(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown enrolment: %v", err)
	}

	// Tokens: replacing a machine's tokens revokes the old ones only.
	for _, tk := range []Token{
		{ID: "t1", Hash: "a", Kind: TokenMachine, Machine: "m1"},
		{ID: "t2", Hash: "b", Kind: TokenMachine, Machine: "m2"},
		{ID: "t3", Hash: "c", Kind: TokenOperator},
	} {
		if err := s.PutToken(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ReplaceMachineTokens(ctx, "m1", Token{ID: "t4", Hash: "d", Kind: TokenMachine, Machine: "m1"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"a": true, "b": false, "c": false, "d": false}
	for h, revoked := range want {
		tk, err := s.TokenByHash(ctx, h)
		if err != nil || tk.Revoked != revoked {
			t.Errorf("token %s: revoked %v, %v; want %v", h, tk.Revoked, err, revoked)
		}
	}
	if err := s.ReplaceMachineTokens(ctx, "nosuch", Token{ID: "t5", Hash: "e"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("replace tokens of an unknown machine: %v", err)
	}
	if err := s.RevokeToken(ctx, "t3"); err != nil {
		t.Fatal(err)
	}
	all, err := s.Tokens(ctx)
	if err != nil || len(all) != 4 {
		t.Fatalf("tokens: %d, %v", len(all), err)
	}

	// Verifier: set once.
	if v, err := s.Verifier(ctx, "m1"); err != nil || v != nil {
		t.Fatalf("new machine's verifier: %x, %v", v, err)
	}
	if err := s.SetVerifier(ctx, "m1", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVerifier(ctx, "m1", []byte("v1")); err != nil {
		t.Fatalf("same verifier again: %v", err)
	}
	if err := s.SetVerifier(ctx, "m1", []byte("v2")); !errors.Is(err, ErrExists) {
		t.Fatalf("another verifier: %v, want ErrExists", err)
	}
	if v, _ := s.Verifier(ctx, "m1"); string(v) != "v1" {
		t.Fatalf("verifier = %q", v)
	}
	// The machine's own data is untouched by the verifier key.
	if ms, err := s.Machines(ctx); err != nil || len(ms) != 1 {
		t.Fatalf("machines: %v, %v", ms, err)
	}
}
