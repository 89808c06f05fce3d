package format

import (
	"strings"
	"testing"
)

func TestDecodeManifestRejects(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"not json", "{", "manifest"},
		{"version 0", `{"root":"` + strings.Repeat("ab", 32) + `"}`, "version 0"},
		{"version 2", `{"v":2,"root":"` + strings.Repeat("ab", 32) + `"}`, "version 2"},
		{"no root", `{"v":1}`, "no root"},
		{"short root", `{"v":1,"root":"abcd"}`, "64 hex"},
		{"paths not base64", `{"v":1,"root":"` + strings.Repeat("ab", 32) + `","paths":["%%"]}`, "manifest"},
	} {
		_, err := DecodeManifest([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

func TestDecodeManifestIgnoresNewMembers(t *testing.T) {
	in := `{"v":1,"root":"` + strings.Repeat("ab", 32) + `","host":"h","added_later":{"x":[1,2]}}`
	m, err := DecodeManifest([]byte(in))
	if err != nil || m.Host != "h" {
		t.Fatalf("got %+v, %v", m, err)
	}
}

func TestEncodeManifestSetsVersion(t *testing.T) {
	m := goldenManifest(t)
	m.Version = 7
	b, err := EncodeManifest(m)
	if err != nil || !strings.HasPrefix(string(b), `{"v":1,`) {
		t.Fatalf("got %s, %v", b, err)
	}
}
