package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/agent"
	"github.com/coffer-backup/coffer/internal/cache"
	"github.com/coffer-backup/coffer/internal/vaultapi"
	"github.com/coffer-backup/coffer/internal/vaultserver/servertest"
)

func wantCode(t *testing.T, e *cofferEnv, code int, inErr string, args ...string) string {
	t.Helper()
	out, errs, c := e.run(args...)
	if c != code || !strings.Contains(errs, inErr) {
		t.Fatalf("coffer %s: exit %d, want %d with %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), c, code, inErr, out, errs)
	}
	return out
}

// TestPolicyAtTheEmbeddedVault sets a policy on the embedded vault (the
// local user is its operator), shows it, backs up its paths with no PATH
// given, and sees retention soft-delete points as the policy says.
func TestPolicyAtTheEmbeddedVault(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o600)
	os.WriteFile(filepath.Join(src, "skip.tmp"), []byte("tmp"), 0o600)
	wantCode(t, e, exitUsage, "policy names no paths", "backup")
	wantCode(t, e, exitUsage, `unknown word "daly"`, "policy", "set", "--schedule", "daly 02:00")
	wantCode(t, e, exitUsage, "keep-daily 10000", "policy", "set", "--keep-daily", "10000", "--limit-upload", "fast")
	e.mustRun("policy", "set", "--schedule", "mon-fri 02:00", "--tz", "Europe/Berlin", "--keep-last", "2",
		"--paths", src, "--exclude", "*.tmp", "--limit-upload", "4MiB/s", "--work-hours", "mon-fri 09:00-18:00", "--work-hours-upload", "1MiB/s")
	out := e.mustRun("policy", "show")
	for _, want := range []string{"this machine's own", "mon-fri 02:00 (Europe/Berlin)", "keep-last 2", src, "*.tmp", "4MiB/s, 1MiB/s during work hours"} {
		if !strings.Contains(out, want) {
			t.Errorf("policy show lacks %q:\n%s", want, out)
		}
	}
	// Only the flags given change.
	e.mustRun("policy", "set", "--keep-daily", "7")
	var p vaultapi.Policy
	if err := json.Unmarshal([]byte(e.mustRun("policy", "show", "--json")), &p); err != nil {
		t.Fatal(err)
	}
	if p.Schedule != "mon-fri 02:00" || p.Retention.KeepLast != 2 || p.Retention.Daily != 7 || p.UploadLimit != 4<<20 {
		t.Fatalf("policy after a second set: %+v", p)
	}
	e.mustRun("policy", "set", "--keep-daily", "0")
	// preview defaults to the machine's schedule.
	out = e.mustRun("policy", "preview", "--from", "2027-03-26T00:00:00Z", "--count", "2", "--json")
	var runs []string
	json.Unmarshal([]byte(out), &runs)
	if strings.Join(runs, " ") != "2027-03-26T01:00:00Z 2027-03-29T00:00:00Z" {
		t.Fatalf("policy preview with the machine's policy: %s", out)
	}
	var ids []string
	for range 3 {
		var s summary
		lastJSON(t, e.mustRun("backup", "--json"), &s)
		ids = append(ids, s.Point)
		if s.Files != 1 {
			t.Fatalf("backup of the policy's paths: %d files, want 1 (a.txt; *.tmp excluded)", s.Files)
		}
	}
	var live []vaultapi.Point
	json.Unmarshal([]byte(e.mustRun("points", "--json")), &live)
	var del []vaultapi.Point
	json.Unmarshal([]byte(e.mustRun("points", "--deleted", "--json")), &del)
	if len(live) != 2 || len(del) != 1 || del[0].ID != ids[0] || del[0].Deleted.IsZero() || !live[0].OnDemand {
		t.Fatalf("after 3 backups with keep-last 2: live %+v, deleted %+v", live, del)
	}
	var jobs []vaultapi.Job
	json.Unmarshal([]byte(e.mustRun("jobs", "--json")), &jobs)
	if len(jobs) != 3 || jobs[0].Trigger != vaultapi.TriggerManual || jobs[0].Status != vaultapi.StatusOK || jobs[0].Point != ids[2] {
		t.Fatalf("jobs: %+v", jobs)
	}
	// The operator (here: the local user, with --dir) restores the point.
	e.mustRun("vault", "points", "undelete", ids[0], "--dir", e.vault)
	json.Unmarshal([]byte(e.mustRun("points", "--json")), &live)
	if len(live) != 3 {
		t.Fatalf("after undelete: %d points, want 3", len(live))
	}
}

func TestBackupLockAndCache(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o600)
	os.MkdirAll(e.home, 0o700)
	l, err := agent.TryLock(filepath.Join(e.home, agent.LockName))
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, e, exitBusy, "another Coffer backup is running", "backup", src)
	l.Unlock()
	e.mustRun("backup", src)

	var st cache.Status
	if err := json.Unmarshal([]byte(e.mustRun("cache", "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Dir != filepath.Join(e.home, "cache") || st.Free <= 0 || st.FSType == "" && isLinux() {
		t.Fatalf("cache status: %+v", st)
	}
	os.MkdirAll(filepath.Join(st.Dir, "chunks"), 0o700)
	os.WriteFile(filepath.Join(st.Dir, "chunks", "x"), []byte("chunk"), 0o600)
	dst := filepath.Join(t.TempDir(), "moved")
	e.mustRun("cache", "move", dst)
	json.Unmarshal([]byte(e.mustRun("cache", "status", "--json")), &st)
	// The chunk, and the folder index the backup left.
	ix, err := os.ReadDir(filepath.Join(dst, "folders"))
	if err != nil || len(ix) != 1 {
		t.Fatalf("folder index after the move: %v, %v", ix, err)
	}
	fi, err := ix[0].Info()
	if err != nil {
		t.Fatal(err)
	}
	if st.Dir != dst || st.Size != 5+fi.Size() {
		t.Fatalf("cache status after the move: %+v, want size %d", st, 5+fi.Size())
	}
}

func TestAgentInstallDryRun(t *testing.T) {
	e := newEnv(t)
	pf := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pf, []byte(testPass), 0o600)
	out := e.mustRun("--passphrase-file", pf, "agent", "install", "--dry-run", "--", "--limit-upload", "4MiB/s")
	for _, want := range []string{"coffer-agent.service", "[Service]", "agent run --limit-upload 4MiB/s", "--passphrase-file " + pf,
		"--home " + e.home, "WantedBy=multi-user.target", "Restart=on-failure"} {
		if !strings.Contains(out, want) {
			t.Errorf("unit lacks %q:\n%s", want, out)
		}
	}
	wantCode(t, e, exitUsage, "--store-passphrase", "agent", "install", "--dry-run")
}

// TestAgentRunAndStatus runs the real daemon in-process on the embedded
// vault until its first (catch-up) backup is reported, then checks
// coffer status and coffer jobs.
func TestAgentRunAndStatus(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o600)
	e.mustRun("policy", "set", "--schedule", "daily 02:00", "--tz", "UTC", "--paths", src, "--keep-last", "5")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr strings.Builder
	go func() {
		g := newGlobals(strings.NewReader(""), new(strings.Builder), &stderr, func(k string) string { return e.env[k] })
		cmd := newRootCmd(g)
		cmd.SetArgs([]string{"agent", "run"})
		done <- cmd.ExecuteContext(ctx)
	}()
	statePath := filepath.Join(e.home, agent.StateName)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _ := agent.LoadState(statePath)
		if st.LastJob != nil && !st.LastRun.IsZero() {
			if st.LastJob.Status != vaultapi.StatusOK || st.LastJob.Trigger != vaultapi.TriggerCatchUp {
				t.Fatalf("the agent's first job: %+v", st.LastJob)
			}
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no job after 30 s; agent log:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("agent run: %v", err)
	}
	var jobs []vaultapi.Job
	json.Unmarshal([]byte(e.mustRun("jobs", "--json")), &jobs)
	if len(jobs) != 1 || jobs[0].Status != vaultapi.StatusOK || jobs[0].Files != 1 {
		t.Fatalf("jobs: %+v", jobs)
	}
	var rep statusReport
	out, _, _ := e.run("status", "--json")
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if rep.LastPoint == nil || rep.LastPoint.ID != jobs[0].Point || rep.NextBackup.IsZero() || rep.Agent.PID != 0 {
		t.Fatalf("status: %+v", rep)
	}
	if h, m, _ := rep.NextBackup.UTC().Clock(); h != 2 || m != 0 {
		t.Fatalf("next backup %v, want 02:00 UTC", rep.NextBackup)
	}
}

// TestThrottledBackup backs up 4 MiB of new, incompressible data with
// --limit-upload 2MiB/s: the pack bytes over the time from the first
// pack's upload to the last one's end stay within 10 % of the limit.
func TestThrottledBackup(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	r := rand.New(rand.NewPCG(7, 9))
	fresh := func() {
		b := make([]byte, 4<<20)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		os.WriteFile(filepath.Join(src, "random.bin"), b, 0o600)
	}
	fresh()
	e.mustRun("backup", src) // makes the keys
	var mu sync.Mutex
	var bytes int
	var first, last time.Time
	uploadMeter = func(n int, began, ended time.Time) {
		mu.Lock()
		defer mu.Unlock()
		bytes += n
		if first.IsZero() || began.Before(first) {
			first = began
		}
		if ended.After(last) {
			last = ended
		}
	}
	defer func() { uploadMeter = nil }()
	fresh()
	var s summary
	lastJSON(t, e.mustRun("backup", "--json", "--limit-upload", "2MiB/s", src), &s)
	rate := float64(bytes) / last.Sub(first).Seconds()
	t.Logf("%d pack bytes in %v: %.0f B/s (limit %d)", bytes, last.Sub(first), rate, 2<<20)
	if s.BytesAdded < 4<<20 || rate < 0.9*(2<<20) || rate > 1.1*(2<<20) {
		t.Fatalf("throttled backup: %d bytes added, %d pack bytes in %v (%.0f B/s); want 4 MiB or more within 10%% of 2 MiB/s",
			s.BytesAdded, bytes, last.Sub(first), rate)
	}
}

// TestPolicyThroughServer: the operator sets a machine's policy over
// HTTPS; the machine reads it and backs up its paths, cannot set it (exit
// 6), and its backups are reported as jobs the operator lists; retention
// at the server soft-deletes and the operator undeletes.
func TestPolicyThroughServer(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	opToken, _ := env.Operator(t)
	tmp := t.TempDir()
	op := cli{t, map[string]string{"COFFER_OPERATOR_TOKEN": opToken}}
	remote := []string{"--remote", env.URL, "--fingerprint", env.Fingerprint}
	creds := filepath.Join(tmp, "vault.json")
	op.must(exitOK, append([]string{"vault", "credentials", "--out", creds}, remote...)...)
	a := cli{t, map[string]string{"COFFER_HOME": filepath.Join(tmp, "home"), "COFFER_PASSPHRASE": testPass}}
	a.must(exitOK, "register", "--credentials", creds, "--name", "alpha")
	src := filepath.Join(tmp, "src")
	writeTree(t, src, map[string]string{"a.txt": "hello"})

	_, errs := a.must(exitRefused, "policy", "set", "--keep-last", "1")
	if !strings.Contains(errs, "set by the vault's operator") {
		t.Errorf("policy set on a machine said %q", errs)
	}
	op.must(exitUsage, append([]string{"policy", "set", "--machine", "alpha", "--keep-weekly", "9999"}, remote...)...)
	op.must(exitOK, append([]string{"policy", "set", "--machine", "alpha", "--paths", src, "--keep-last", "1", "--tz", "UTC"}, remote...)...)
	out, _ := a.must(exitOK, "policy", "show")
	if !strings.Contains(out, "this machine's own") || !strings.Contains(out, src) {
		t.Fatalf("policy show on the machine: %s", out)
	}
	a.must(exitOK, "backup", "--quiet")
	a.must(exitOK, "backup", "--quiet")
	out, _ = a.must(exitOK, "points", "--deleted", "--json")
	var del []vaultapi.Point
	if err := json.Unmarshal([]byte(out), &del); err != nil || len(del) != 1 {
		t.Fatalf("points --deleted: %v %s", err, out)
	}
	out, _ = op.must(exitOK, append([]string{"vault", "jobs", "--json"}, remote...)...)
	var jobs []vaultapi.Job
	if err := json.Unmarshal([]byte(out), &jobs); err != nil || len(jobs) != 2 || jobs[0].Status != vaultapi.StatusOK {
		t.Fatalf("vault jobs: %v %s", err, out)
	}
	op.must(exitOK, append([]string{"vault", "points", "undelete", del[0].ID, "--machine", "alpha"}, remote...)...)
	out, _ = op.must(exitOK, append([]string{"vault", "points", "--json"}, remote...)...)
	var live []vaultapi.Point
	if err := json.Unmarshal([]byte(out), &live); err != nil || len(live) != 2 {
		t.Fatalf("vault points after undelete: %v %s", err, out)
	}
}
