package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

const testPass = "correct horse battery staple"

// cofferEnv is an isolated home and embedded vault for one test.
type cofferEnv struct {
	t     *testing.T
	home  string
	vault string
	env   map[string]string
}

func newEnv(t *testing.T) *cofferEnv {
	t.Helper()
	d := t.TempDir()
	e := &cofferEnv{t: t, home: filepath.Join(d, "home"), vault: filepath.Join(d, "vault")}
	e.env = map[string]string{"COFFER_HOME": e.home, "COFFER_VAULT": e.vault, "COFFER_PASSPHRASE": testPass}
	return e
}

// run runs coffer in-process and returns stdout, stderr and the exit code.
func (e *cofferEnv) run(args ...string) (string, string, int) {
	e.t.Helper()
	var out, errb bytes.Buffer
	g := newGlobals(strings.NewReader(""), &out, &errb, func(k string) string { return e.env[k] })
	cmd := newRootCmd(g)
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err != nil && err != errPartial { // as main does
		fmt.Fprintf(&errb, "coffer: %v\n", err)
	}
	return out.String(), errb.String(), exitCode(err)
}

func errorsIsPartial(err error) bool { return exitCode(err) == exitPartial }

func (e *cofferEnv) mustRun(args ...string) string {
	e.t.Helper()
	out, errs, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("coffer %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

type summary struct {
	Point      string `json:"point"`
	Files      uint64 `json:"files"`
	Bytes      uint64 `json:"bytes"`
	BytesRead  uint64 `json:"bytes_read"`
	BytesAdded uint64 `json:"bytes_added"`
	Skipped    uint64 `json:"skipped"`
}

func lastJSON(t *testing.T, out string, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("last line of output is not JSON: %v\n%s", err, out)
	}
}
