package vaultwire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/coffer-backup/coffer/internal/vaultapi"
)

func FuzzDecodeCommit(f *testing.F) {
	f.Add(EncodeCommit(vaultapi.Commit{Info: vaultapi.ID{1}, Refs: []vaultapi.ID{{2}, {3}}, Stats: vaultapi.Stats{Files: 4}}))
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommit(b)
		if err != nil {
			if !errors.Is(err, vaultapi.ErrBadRequest) {
				t.Fatalf("error %v is not a bad request", err)
			}
			return
		}
		// What decodes re-encodes to an equivalent commit.
		c2, err := DecodeCommit(EncodeCommit(c))
		if err != nil || c2.Info != c.Info || c2.Stats != c.Stats || len(c2.Refs) != len(c.Refs) {
			t.Fatalf("round trip: %+v, %v; want %+v", c2, err, c)
		}
	})
}

func FuzzDecodeIDs(f *testing.F) {
	f.Add(make([]byte, 64), 10)
	f.Add(make([]byte, 33), 10)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		ids, err := DecodeIDs(b, max)
		if err != nil {
			if !errors.Is(err, vaultapi.ErrBadRequest) {
				t.Fatalf("error %v is not a bad request", err)
			}
			return
		}
		if !bytes.Equal(AppendIDs(nil, ids), b) {
			t.Fatal("IDs do not round-trip")
		}
		bits := make([]bool, len(ids))
		for i := range bits {
			bits[i] = ids[i][0]&1 == 1
		}
		got, err := DecodeBits(EncodeBits(bits), len(bits))
		if err != nil || len(got) != len(bits) {
			t.Fatalf("bits: %v", err)
		}
		for i := range got {
			if got[i] != bits[i] {
				t.Fatal("bits do not round-trip")
			}
		}
	})
}

func FuzzDecodeLocations(f *testing.F) {
	f.Add(make([]byte, LocationSize*2), 2)
	f.Add(make([]byte, 5), 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		ids := make([]vaultapi.ID, n)
		locs, err := DecodeLocations(b, ids)
		if err != nil {
			return
		}
		again, err := AppendLocations(nil, locs)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		// Pack names decode to hex and re-encode to the same bytes.
		if !bytes.Equal(again, b) {
			t.Fatal("locations do not round-trip")
		}
	})
}

func FuzzToError(f *testing.F) {
	f.Add(400, []byte(`{"code":"bad_request","message":"x"}`))
	f.Add(409, []byte(`{"code":"missing_blobs","message":"x","missing":["`+vaultapi.ID{1}.String()+`"]}`))
	f.Add(502, []byte(`<html>proxy</html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := ToError(status, body)
		if err == nil || err.Error() == "" {
			t.Fatal("no error")
		}
	})
}

func TestErrorMapping(t *testing.T) {
	tests := []error{vaultapi.ErrNotFound, vaultapi.ErrBadRequest, vaultapi.ErrNoSession, vaultapi.ErrUnauthorized,
		vaultapi.ErrForbidden, vaultapi.ErrDamaged, ErrTooLarge, ErrUnavailable}
	for _, want := range tests {
		status, body := FromError(want)
		js, _ := jsonMarshal(body)
		got := ToError(status, js)
		if !errors.Is(got, want) {
			t.Errorf("%v: status %d came back as %v", want, status, got)
		}
	}
	mb := &vaultapi.MissingBlobsError{IDs: []vaultapi.ID{{7}}}
	status, body := FromError(mb)
	js, _ := jsonMarshal(body)
	var got *vaultapi.MissingBlobsError
	if err := ToError(status, js); !errors.As(err, &got) || len(got.IDs) != 1 || got.IDs[0] != mb.IDs[0] {
		t.Errorf("missing blobs came back as %v", err)
	}
	if status, body := FromError(errors.New("disk on fire")); status != 500 || body.Message != "internal error" {
		t.Errorf("internal error: %d %+v (must not leak details)", status, body)
	}
}
