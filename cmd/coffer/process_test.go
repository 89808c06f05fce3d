//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets tests run the test binary itself as the coffer command.
func TestMain(m *testing.M) {
	if os.Getenv("COFFER_TEST_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// cofferProc starts coffer as a separate process.
func (e *cofferEnv) command(args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "COFFER_TEST_AS_MAIN=1")
	for k, v := range e.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

func dirSize(t *testing.T, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// TestKilledBackupLeavesVaultConsistent kills a backup with SIGKILL while
// it stores packs, then checks that verify passes and that the next
// backup reuses what was stored.
func TestKilledBackupLeavesVaultConsistent(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "first"), []byte("committed before the crash"), 0o644)
	e.mustRun("backup", "-q", src)

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	const files, size = 48, 4 << 20 // 192 MiB of incompressible data
	buf := make([]byte, size)
	for i := range files {
		for j := 0; j < size; j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), buf, 0o644)
	}
	total := int64(files * size)

	cmd := e.command("backup", "-q", src)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	packs := filepath.Join(e.vault, "data", "packs")
	deadline := time.Now().Add(60 * time.Second)
	for dirSize(t, packs) < total/4 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("backup stored too little in 60 s; stderr: %s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("backup was not killed (it finished first?): %v; %s", err, stderr.String())
	}
	stored := dirSize(t, packs)
	t.Logf("killed after %d of %d bytes were stored", stored, total)

	e.mustRun("verify")
	var pts []json.RawMessage
	json.Unmarshal([]byte(e.mustRun("points", "--json")), &pts)
	if len(pts) != 1 {
		t.Errorf("after the kill there are %d points, want the 1 committed before", len(pts))
	}

	var s summary
	lastJSON(t, e.mustRun("backup", "--json", src), &s)
	// Packs stored before the kill are reused: the new backup adds only
	// the rest (allowing for the pack being written at the kill).
	if limit := uint64(total-stored) + 20<<20; s.BytesAdded > limit {
		t.Errorf("backup after the kill added %d bytes; want at most %d (it should reuse %d stored bytes)", s.BytesAdded, limit, stored)
	}
	e.mustRun("verify")
	target := t.TempDir()
	e.mustRun("restore", "latest", "--target", target)
	compareTrees(t, src, filepath.Join(target, src))
}

// TestUnreadableFileIsSkipped checks the exit code 3 path: an unreadable
// file is reported, the point commits with everything else.
func TestUnreadableFileIsSkipped(t *testing.T) {
	e := newEnv(t)
	base := t.TempDir()
	src := filepath.Join(base, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "ok"), []byte("fine"), 0o644)
	os.WriteFile(filepath.Join(src, "secret"), []byte("locked"), 0o000)

	cmd := e.command("backup", "--json", src)
	if os.Geteuid() == 0 {
		// Root reads anything: run the backup as an unprivileged user.
		const nobody = 65534
		for _, d := range []string{filepath.Dir(base), base, filepath.Dir(e.home)} {
			os.Chmod(d, 0o755)
		}
		exe, _ := os.Executable()
		bin := filepath.Join(base, "coffer.test")
		b, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(bin, b, 0o755)
		cmd.Path = bin
		for _, d := range []string{e.home, e.vault} {
			os.MkdirAll(d, 0o700)
			os.Chown(d, nobody, nobody)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != exitPartial {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, exitPartial, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "secret") || !strings.Contains(errb.String(), "permission denied") {
		t.Errorf("the skipped file is not reported: %s", errb.String())
	}
	var s summary
	lastJSON(t, out.String(), &s)
	if s.Skipped != 1 || s.Point == "" || s.Files != 2 {
		t.Errorf("summary %+v: want a committed point with 1 skipped file", s)
	}
}
