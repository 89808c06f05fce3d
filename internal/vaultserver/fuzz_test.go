package vaultserver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/meta"
	"github.com/coffer-backup/coffer/internal/storage/memory"
	"github.com/coffer-backup/coffer/internal/vault"
	"github.com/coffer-backup/coffer/internal/vaultserver"
	"github.com/coffer-backup/coffer/internal/vaultwire"
)

// FuzzHandler sends arbitrary requests to the server's handler, as a
// registered machine, and checks that every one gets an answer below 500
// and that error answers are JSON.
func FuzzHandler(f *testing.F) {
	m, err := meta.OpenBolt(filepath.Join(f.TempDir(), "meta.db"), func() string { return "fuzz" })
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Close() })
	v := vault.New(vault.Config{Meta: m, Storage: memory.New(nil)})
	auth, err := vaultserver.NewAuthority(v, nil, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	en, _ := auth.CreateEnrolment(ctx, vaultserver.DefaultEnrolmentTTL)
	reg, err := auth.Register(ctx, vaultwire.RegisterRequest{Secret: en.Secret, Name: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	srv := vaultserver.New(vaultserver.Config{Vault: v, Authority: auth, MaxPack: 1 << 20, MaxCommit: 1 << 20, MaxJSON: 16 << 10})
	mv, _ := v.ForMachine(ctx, reg.MachineID)
	sess, _ := mv.BeginBackup(ctx)

	p := makePack(2)
	f.Add("PUT", "/v1/sessions/SESSION/packs/"+p.Name, p.Data, trailerHash(p.Entries))
	f.Add("POST", "/v1/blobs/has", make([]byte, 64), "")
	f.Add("POST", "/v1/blobs/locate", make([]byte, 32), "")
	f.Add("POST", "/v1/sessions/SESSION/commit", []byte{0, 0, 0, 2, '{', '}'}, "")
	f.Add("POST", "/v1/register", []byte(`{"secret":"x","name":"y"}`), "")
	f.Add("PUT", "/v1/verifier", []byte(`{"verifier":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`), "")
	f.Add("GET", "/v1/packs/"+p.Name+"?offset=0&length=10", []byte(nil), "")
	f.Add("PUT", "/v1/keyslots/x", []byte("slot"), "")
	f.Fuzz(func(t *testing.T, method, path string, body []byte, trailer string) {
		path = strings.ReplaceAll(path, "SESSION", sess.ID)
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "https://vault"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		req.Header.Set("Authorization", "Bearer "+reg.Token)
		if trailer != "" {
			req.Header.Set(vaultwire.HeaderTrailerHash, trailer)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: status %d: %s", method, path, rec.Code, rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			var e vaultwire.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" {
				t.Fatalf("%s %s: status %d with a body that is no JSON error: %q", method, path, rec.Code, rec.Body.Bytes())
			}
		}
	})
}
