package vaultclient_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultclient"
	"github.com/coffer-backup/coffer/internal/vaultserver/servertest"
)

func randID(t *testing.T) vaultapi.ID {
	t.Helper()
	var id vaultapi.ID
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	return id
}

// makePack builds a pack of n random blobs of the given kind.
func makePack(t *testing.T, kind vaultapi.Kind, n int) vaultapi.Pack {
	t.Helper()
	w := pack.NewWriter(nil)
	for range n {
		b := make([]byte, 100+n)
		rand.Read(b)
		w.Add(kind, randID(t), b)
	}
	return w.Finish()
}

func mustNil(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func TestContractRoundTrip(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	a := env.Machine(t, "alpha")

	info, err := a.Info(ctx)
	mustNil(t, "info", err)
	if info.MachineName != "alpha" || info.VaultID != "test-vault" || info.Embedded {
		t.Fatalf("info = %+v", info)
	}
	slots, err := a.KeySlots(ctx)
	mustNil(t, "key slots", err)
	if len(slots) != 0 {
		t.Fatalf("new machine has %d slots", len(slots))
	}
	mustNil(t, "put slot", a.PutKeySlot(ctx, vaultapi.KeySlot{ID: "passphrase", Data: []byte("opaque")}))
	slots, err = a.KeySlots(ctx)
	mustNil(t, "key slots", err)
	if len(slots) != 1 || string(slots[0].Data) != "opaque" {
		t.Fatalf("slots = %+v", slots)
	}

	s, err := a.BeginBackup(ctx)
	mustNil(t, "begin", err)
	p := makePack(t, vaultapi.KindData, 5)
	mustNil(t, "store", a.StorePack(ctx, s.ID, p))
	mustNil(t, "store again", a.StorePack(ctx, s.ID, p))

	ids := []vaultapi.ID{p.Entries[0].ID, randID(t), p.Entries[4].ID}
	has, err := a.HasBlobs(ctx, ids)
	mustNil(t, "has", err)
	if !has[0] || has[1] || !has[2] {
		t.Fatalf("has = %v, want [true false true]", has)
	}
	locs, err := a.Locate(ctx, ids)
	mustNil(t, "locate", err)
	if locs[0].Pack != p.Name || locs[0].Offset != p.Entries[0].Offset || locs[0].Length != p.Entries[0].Length ||
		locs[0].Kind != vaultapi.KindData || locs[1].Pack != "" || locs[2].ID != ids[2] {
		t.Fatalf("locations = %+v", locs)
	}
	rc, err := a.ReadPack(ctx, p.Name, int64(locs[2].Offset), int64(locs[2].Length))
	mustNil(t, "read pack", err)
	got, err := io.ReadAll(rc)
	rc.Close()
	mustNil(t, "read pack body", err)
	e := p.Entries[4]
	if !bytes.Equal(got, p.Data[e.Offset:e.Offset+uint64(e.Length)]) {
		t.Fatal("read pack: bytes differ")
	}

	missing := randID(t)
	_, err = a.Commit(ctx, s.ID, vaultapi.Commit{Info: p.Entries[0].ID, Refs: []vaultapi.ID{p.Entries[1].ID, missing}})
	var mb *vaultapi.MissingBlobsError
	if !errors.As(err, &mb) || len(mb.IDs) != 1 || mb.IDs[0] != missing {
		t.Fatalf("commit with a missing blob: %v", err)
	}
	refs := make([]vaultapi.ID, 0, 5)
	for _, e := range p.Entries {
		refs = append(refs, e.ID)
	}
	pt, err := a.Commit(ctx, s.ID, vaultapi.Commit{Info: p.Entries[0].ID, Refs: refs, Stats: vaultapi.Stats{Files: 7}})
	mustNil(t, "commit", err)
	if !pt.Time.Equal(env.Clock.Now()) || pt.Stats.Files != 7 {
		t.Fatalf("point %+v: want the vault's time %v", pt, env.Clock.Now())
	}
	_, err = a.Commit(ctx, s.ID, vaultapi.Commit{Info: p.Entries[0].ID, Refs: refs})
	wantErr(t, "commit twice", err, vaultapi.ErrNoSession)
	pts, err := a.Points(ctx)
	mustNil(t, "points", err)
	if len(pts) != 1 || pts[0].ID != pt.ID {
		t.Fatalf("points = %+v", pts)
	}
	one, err := a.Point(ctx, pt.ID)
	mustNil(t, "point", err)
	if one.ID != pt.ID || one.Info != pt.Info {
		t.Fatalf("point = %+v", one)
	}
	_, err = a.Point(ctx, "0123456789abcdef0123456789abcdef")
	wantErr(t, "unknown point", err, vaultapi.ErrNotFound)
}

func TestSessions(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	a := env.Machine(t, "alpha")
	s, err := a.BeginBackup(ctx)
	mustNil(t, "begin", err)
	env.Clock.Advance(20 * time.Minute)
	s2, err := a.RenewSession(ctx, s.ID)
	mustNil(t, "renew", err)
	if !s2.Expires.After(s.Expires) {
		t.Fatalf("renewed lease %v is not after %v", s2.Expires, s.Expires)
	}
	env.Clock.Advance(time.Hour)
	err = a.StorePack(ctx, s.ID, makePack(t, vaultapi.KindData, 1))
	wantErr(t, "store after expiry", err, vaultapi.ErrNoSession)
	_, err = a.RenewSession(ctx, s.ID)
	wantErr(t, "renew after expiry", err, vaultapi.ErrNoSession)
	s3, err := a.BeginBackup(ctx)
	mustNil(t, "begin", err)
	mustNil(t, "end", a.EndSession(ctx, s3.ID))
	_, err = a.RenewSession(ctx, s3.ID)
	wantErr(t, "renew after end", err, vaultapi.ErrNoSession)
	err = a.StorePack(ctx, "nosuchsession", makePack(t, vaultapi.KindData, 1))
	wantErr(t, "store without a session", err, vaultapi.ErrNoSession)
}

func TestBadPacks(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	a := env.Machine(t, "alpha")
	s, err := a.BeginBackup(ctx)
	mustNil(t, "begin", err)
	good := makePack(t, vaultapi.KindData, 3)
	tests := []struct {
		name string
		edit func(p *vaultapi.Pack)
	}{
		{"bytes do not match the name", func(p *vaultapi.Pack) { p.Data[10] ^= 1 }},
		{"name of other bytes", func(p *vaultapi.Pack) { p.Name = pack.Name([]byte("x")) }},
		{"entries differ from the trailer", func(p *vaultapi.Pack) { p.Entries[1].ID[0] ^= 1 }},
		{"entry missing", func(p *vaultapi.Pack) { p.Entries = p.Entries[:2] }},
		{"kind differs", func(p *vaultapi.Pack) { p.Entries[0].Kind = vaultapi.KindTree }},
		{"not a pack", func(p *vaultapi.Pack) { p.Data = []byte("hello, world, not a pack"); p.Name = pack.Name(p.Data) }},
		{"empty", func(p *vaultapi.Pack) { p.Data = nil; p.Name = pack.Name(nil) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := vaultapi.Pack{Name: good.Name, Data: bytes.Clone(good.Data), Entries: append([]vaultapi.PackEntry(nil), good.Entries...)}
			tc.edit(&p)
			err := a.StorePack(ctx, s.ID, p)
			wantErr(t, "store", err, vaultapi.ErrBadRequest)
			has, err := a.HasBlobs(ctx, []vaultapi.ID{good.Entries[0].ID})
			mustNil(t, "has", err)
			if has[0] {
				t.Fatal("a refused pack was indexed")
			}
		})
	}
}

func TestLargeBatches(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	a := env.Machine(t, "alpha")
	s, err := a.BeginBackup(ctx)
	mustNil(t, "begin", err)
	p := makePack(t, vaultapi.KindTree, 3)
	mustNil(t, "store", a.StorePack(ctx, s.ID, p))
	ids := make([]vaultapi.ID, 150000) // more than one batch
	for i := range ids {
		ids[i] = randID(t)
	}
	ids[0], ids[70000], ids[149999] = p.Entries[0].ID, p.Entries[1].ID, p.Entries[2].ID
	has, err := a.HasBlobs(ctx, ids)
	mustNil(t, "has", err)
	n := 0
	for _, h := range has {
		if h {
			n++
		}
	}
	if len(has) != len(ids) || n != 3 || !has[70000] || !has[149999] {
		t.Fatalf("has: %d answers, %d true", len(has), n)
	}
	locs, err := a.Locate(ctx, ids)
	mustNil(t, "locate", err)
	if len(locs) != len(ids) || locs[149999].Pack != p.Name || locs[149999].ID != ids[149999] {
		t.Fatalf("locate: %d answers, last %+v", len(locs), locs[len(locs)-1])
	}
}

// flaky fails the first n requests with 503, then passes them on.
type flaky struct {
	rt    http.RoundTripper
	fails atomic.Int32
	calls atomic.Int32
	code  int
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	f.calls.Add(1)
	if f.fails.Add(-1) >= 0 {
		if r.Body != nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		return &http.Response{StatusCode: f.code, Body: io.NopCloser(bytes.NewReader([]byte(`{"code":"unavailable","message":"busy"}`))),
			Header: http.Header{}, Request: r}, nil
	}
	return f.rt.RoundTrip(r)
}

func TestRetries(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	reg := env.Register(t, "alpha")
	newClient := func(fails int32, code int) (*vaultclient.Client, *flaky) {
		cfg := env.Config(reg.Token)
		f := &flaky{rt: &http.Transport{TLSClientConfig: pinned(t, env.Fingerprint)}, code: code}
		f.fails.Store(fails)
		cfg.Transport = f
		c, err := vaultclient.New(cfg)
		mustNil(t, "client", err)
		return c, f
	}
	tests := []struct {
		name      string
		fails     int32
		code      int
		call      func(c *vaultclient.Client) error
		wantErr   bool
		wantCalls int32
	}{
		{"points after two 503", 2, 503, func(c *vaultclient.Client) error { _, err := c.Points(ctx); return err }, false, 3},
		{"points after 429", 1, 429, func(c *vaultclient.Client) error { _, err := c.Points(ctx); return err }, false, 2},
		{"points gives up after 3 retries", 10, 502, func(c *vaultclient.Client) error { _, err := c.Points(ctx); return err }, true, 4},
		{"commit after 503 (not processed)", 1, 503, func(c *vaultclient.Client) error {
			_, err := c.Commit(ctx, "nosession", vaultapi.Commit{Info: randID(t)})
			if errors.Is(err, vaultapi.ErrNoSession) {
				return nil // reached the vault
			}
			return err
		}, false, 2},
		{"commit not retried after 500", 1, 500, func(c *vaultclient.Client) error {
			_, err := c.Commit(ctx, "nosession", vaultapi.Commit{Info: randID(t)})
			return err
		}, true, 1},
		{"no retry on 4xx", 0, 0, func(c *vaultclient.Client) error { _, err := c.Point(ctx, "nope"); return err }, true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, f := newClient(tc.fails, tc.code)
			err := tc.call(c)
			if (err != nil) != tc.wantErr || f.calls.Load() != tc.wantCalls {
				t.Fatalf("error %v after %d calls; want error %v after %d calls", err, f.calls.Load(), tc.wantErr, tc.wantCalls)
			}
		})
	}
}

func TestBlobFilter(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	ctx := context.Background()
	reg := env.Register(t, "alpha")
	counter := &flaky{rt: &http.Transport{TLSClientConfig: pinned(t, env.Fingerprint)}}
	cfg := env.Config(reg.Token)
	cfg.Transport = counter
	a, err := vaultclient.New(cfg)
	mustNil(t, "client", err)
	other := env.Client(t, reg.Token) // a second client of the same machine

	s0, err := other.BeginBackup(ctx)
	mustNil(t, "begin", err)
	old := makePack(t, vaultapi.KindData, 3)
	mustNil(t, "store", other.StorePack(ctx, s0.ID, old))

	s, err := a.BeginBackup(ctx)
	mustNil(t, "begin", err)
	p := makePack(t, vaultapi.KindData, 2)
	mustNil(t, "store", a.StorePack(ctx, s.ID, p))
	ids := make([]vaultapi.ID, 0, 1000)
	for range 1000 {
		ids = append(ids, randID(t))
	}
	ids = append(ids, old.Entries[0].ID, p.Entries[1].ID)
	before := counter.calls.Load()
	has, err := a.HasBlobs(ctx, ids)
	mustNil(t, "has", err)
	for i, h := range has {
		if want := i >= 1000; h != want {
			t.Fatalf("has[%d] = %v, want %v", i, h, want)
		}
	}
	if n := counter.calls.Load() - before; n > 1 {
		t.Errorf("%d requests for one HasBlobs call", n)
	}
	// New blobs the filter rules out cost no request, even after this
	// client stored many blobs.
	w := pack.NewWriter(nil)
	for range 5000 {
		w.Add(vaultapi.KindTree, randID(t), []byte("small sealed tree"))
	}
	mustNil(t, "store many", a.StorePack(ctx, s.ID, w.Finish()))
	before = counter.calls.Load()
	for range 50 {
		has, err := a.HasBlobs(ctx, []vaultapi.ID{randID(t)})
		mustNil(t, "has", err)
		if has[0] {
			t.Fatal("a random blob is held")
		}
	}
	if n := counter.calls.Load() - before; n > 5 {
		t.Errorf("%d requests for 50 new blobs: the filter is not used", n)
	}
	// After the session, every call asks the vault again.
	mustNil(t, "end", a.EndSession(ctx, s.ID))
	before = counter.calls.Load()
	_, err = a.HasBlobs(ctx, []vaultapi.ID{randID(t)})
	mustNil(t, "has", err)
	if counter.calls.Load() == before {
		t.Error("no request after the session ended")
	}
}
