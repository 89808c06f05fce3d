package vaultserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/pack"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultclient"
	"github.com/coffer-backup/coffer/internal/vaultserver"
	"github.com/coffer-backup/coffer/internal/vaultserver/servertest"
	"github.com/coffer-backup/coffer/internal/vaultwire"
)

// TestHostileRequests sends malformed and oversized requests and checks
// that each gets a 4xx answer with a JSON error body, and that nothing
// changed in the vault.
func TestHostileRequests(t *testing.T) {
	env := servertest.Start(t, servertest.Options{Server: vaultserver.Config{MaxPack: 1 << 20, MaxCommit: 1 << 20, MaxJSON: 4 << 10}})
	ctx := context.Background()
	reg := env.Register(t, "alpha")
	a := env.Client(t, reg.Token)
	sess, err := a.BeginBackup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := vaultwire.ParseFingerprint(env.Fingerprint)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: vaultclient.PinnedTLS(fp)}}
	good := makePack(3)
	goodTrailer := trailerHash(good.Entries)
	stored := makePack(2)
	if err := a.StorePack(ctx, sess.ID, stored); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{1}, 2<<20)
	auth := "Bearer " + reg.Token

	tests := []struct {
		name   string
		method string
		path   string
		body   []byte
		header map[string]string
		status int
	}{
		{"unknown path", "GET", "/v1/nothing", nil, nil, 404},
		{"unversioned path", "GET", "/info", nil, nil, 404},
		{"wrong method", "DELETE", "/v1/info", nil, nil, 405},
		{"no token", "GET", "/v1/points", nil, map[string]string{"Authorization": ""}, 401},
		{"garbage token", "GET", "/v1/points", nil, map[string]string{"Authorization": "Bearer ü\u00ff"}, 401},
		{"basic auth", "GET", "/v1/points", nil, map[string]string{"Authorization": "Basic YTpi"}, 401},
		{"huge token", "GET", "/v1/points", nil, map[string]string{"Authorization": "Bearer " + strings.Repeat("x", 1000)}, 401},
		{"ID batch not a multiple of 32", "POST", "/v1/blobs/has", make([]byte, 33), nil, 400},
		{"ID batch too large", "POST", "/v1/blobs/has", make([]byte, 32*(vaultwire.MaxBatch+1)), nil, 413},
		{"locate batch malformed", "POST", "/v1/blobs/locate", make([]byte, 31), nil, 400},
		{"pack name not hex", "PUT", "/v1/sessions/" + sess.ID + "/packs/xyz", good.Data, map[string]string{vaultwire.HeaderTrailerHash: goodTrailer}, 400},
		{"pack without trailer header", "PUT", "/v1/sessions/" + sess.ID + "/packs/" + good.Name, good.Data, nil, 400},
		{"pack with a wrong trailer header", "PUT", "/v1/sessions/" + sess.ID + "/packs/" + good.Name, good.Data,
			map[string]string{vaultwire.HeaderTrailerHash: pack.Name(nil)}, 400},
		{"pack over the limit", "PUT", "/v1/sessions/" + sess.ID + "/packs/" + pack.Name(big), big,
			map[string]string{vaultwire.HeaderTrailerHash: goodTrailer}, 413},
		{"pack bytes not matching the name", "PUT", "/v1/sessions/" + sess.ID + "/packs/" + pack.Name([]byte("other")), good.Data,
			map[string]string{vaultwire.HeaderTrailerHash: goodTrailer}, 400},
		{"pack with an unknown session", "PUT", "/v1/sessions/nosuch/packs/" + good.Name, good.Data,
			map[string]string{vaultwire.HeaderTrailerHash: goodTrailer}, 410},
		{"commit body empty", "POST", "/v1/sessions/" + sess.ID + "/commit", nil, nil, 400},
		{"commit head length lies", "POST", "/v1/sessions/" + sess.ID + "/commit", []byte{0xff, 0xff, 0xff, 0xff, '{', '}'}, nil, 400},
		{"commit head not JSON", "POST", "/v1/sessions/" + sess.ID + "/commit", []byte{0, 0, 0, 2, 'x', 'y'}, nil, 400},
		{"commit refs ragged", "POST", "/v1/sessions/" + sess.ID + "/commit", append([]byte{0, 0, 0, 2, '{', '}'}, 1, 2, 3), nil, 400},
		{"commit names no manifest", "POST", "/v1/sessions/" + sess.ID + "/commit", []byte{0, 0, 0, 2, '{', '}'}, nil, 400},
		{"commit over the limit", "POST", "/v1/sessions/" + sess.ID + "/commit", big, nil, 413},
		{"read pack without range", "GET", "/v1/packs/" + good.Name, nil, nil, 400},
		{"read pack negative range", "GET", "/v1/packs/" + good.Name + "?offset=-1&length=5", nil, nil, 400},
		{"read past the end of a pack", "GET", "/v1/packs/" + stored.Name + "?offset=10&length=100000", nil, nil, 400},
		{"read from beyond a pack", "GET", "/v1/packs/" + stored.Name + "?offset=9223372036854775807&length=1", nil, nil, 400},
		{"read unknown pack", "GET", "/v1/packs/" + good.Name + "?offset=0&length=5", nil, nil, 404},
		{"key slot too large", "PUT", "/v1/keyslots/passphrase", bytes.Repeat([]byte{'x'}, 70<<10), nil, 413},
		{"key slot empty", "PUT", "/v1/keyslots/passphrase", []byte{}, nil, 400},
		{"verifier not JSON", "PUT", "/v1/verifier", []byte("{"), nil, 400},
		{"verifier wrong size", "PUT", "/v1/verifier", []byte(`{"verifier":"AAAA"}`), nil, 400},
		{"register unknown field", "POST", "/v1/register", []byte(`{"secret":"x","name":"y","admin":true}`), map[string]string{"Authorization": ""}, 400},
		{"register trailing data", "POST", "/v1/register", []byte(`{"secret":"x","name":"y"} {}`), map[string]string{"Authorization": ""}, 400},
		{"register too large", "POST", "/v1/register", append([]byte(`{"secret":"`), bytes.Repeat([]byte{'a'}, 8<<10)...), map[string]string{"Authorization": ""}, 413},
		{"register bad secret", "POST", "/v1/register", []byte(`{"secret":"cfe_x","name":"y"}`), map[string]string{"Authorization": ""}, 401},
		{"delete point", "DELETE", "/v1/points/abc", nil, nil, 403},
		{"admin as machine", "POST", "/v1/admin/tokens", []byte(`{"name":"me"}`), nil, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = bytes.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, env.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", auth)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e vaultwire.Error
			if resp.StatusCode != tc.status || json.Unmarshal(b, &e) != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("status %d, body %q; want status %d with a JSON error", resp.StatusCode, b, tc.status)
			}
		})
	}

	// Nothing changed: no point, no pack, no blob, no key slot, one machine.
	ps, err := a.Points(ctx)
	if err != nil || len(ps) != 0 {
		t.Errorf("points after hostile requests: %v, %v", ps, err)
	}
	has, err := a.HasBlobs(ctx, []vaultapi.ID{good.Entries[0].ID})
	if err != nil || has[0] {
		t.Errorf("blob indexed after hostile requests: %v, %v", has, err)
	}
	slots, err := a.KeySlots(ctx)
	if err != nil || len(slots) != 0 {
		t.Errorf("key slots after hostile requests: %v, %v", slots, err)
	}
	ms, err := env.Meta.Machines(ctx)
	if err != nil || len(ms) != 1 {
		t.Errorf("machines after hostile requests: %v, %v", ms, err)
	}
	if ok, _ := env.Meta.HasPack(ctx, ms[0].ID, good.Name); ok {
		t.Errorf("pack stored after hostile requests")
	}
}

func makePack(n int) vaultapi.Pack {
	w := pack.NewWriter(nil)
	for i := range n {
		w.Add(vaultapi.KindData, randID(), []byte(fmt.Sprintf("sealed blob %d", i)))
	}
	return w.Finish()
}

func trailerHash(entries []vaultapi.PackEntry) string {
	return pack.Name(pack.AppendTrailer(nil, entries))
}
