package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runPolicy runs coffer in-process with args and stdin, returning stdout,
// stderr and the exit code main would use.
func runPolicy(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	g := newGlobals(strings.NewReader(stdin), &out, &errb, func(string) string { return "" })
	root := newRootCmd(g)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString("coffer: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), exitCode(err)
}

func TestPolicyPreviewText(t *testing.T) {
	out, _, code := runPolicy(t, "", "policy", "preview", "--schedule", "daily 02:30", "--tz", "America/New_York",
		"--from", "2027-03-13T07:30:00Z", "--count", "3")
	want := `Sat 2027-03-13 02:30 EST -05:00  2027-03-13T07:30:00Z
Sun 2027-03-14 03:00 EDT -04:00  2027-03-14T07:00:00Z  (clock jump)
Mon 2027-03-15 02:30 EDT -04:00  2027-03-15T06:30:00Z
`
	if code != exitOK || out != want {
		t.Errorf("exit %d, output:\n%s\nwant:\n%s", code, out, want)
	}
}

func TestPolicyPreviewJSON(t *testing.T) {
	out, _, code := runPolicy(t, "", "policy", "preview", "--schedule", "daily 01:30", "--tz", "America/New_York",
		"--from", "2027-11-06T12:00:00Z", "--count", "2", "--json")
	var got []string
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitOK {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	want := []string{"2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestPolicyUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no schedule", []string{"policy", "preview", "--from", "2027-01-01T00:00:00Z"}, "--schedule and --tz are required"},
		{"no zone", []string{"policy", "preview", "--schedule", "daily 02:00", "--from", "2027-01-01T00:00:00Z"}, "--schedule and --tz are required"},
		{"bad schedule", []string{"policy", "preview", "--schedule", "daly 02:00", "--tz", "UTC", "--from", "2027-01-01T00:00:00Z"}, `unknown word "daly"`},
		{"bad zone", []string{"policy", "preview", "--schedule", "daily 02:00", "--tz", "Mars/Olympus", "--from", "2027-01-01T00:00:00Z"}, `time zone "Mars/Olympus": unknown`},
		{"no from", []string{"policy", "preview", "--schedule", "daily 02:00", "--tz", "UTC"}, "--from is required"},
		{"bad from", []string{"policy", "preview", "--schedule", "daily 02:00", "--tz", "UTC", "--from", "2027-01-01"}, `--from "2027-01-01": not an RFC 3339 instant`},
		{"bad count", []string{"policy", "preview", "--schedule", "daily 02:00", "--tz", "UTC", "--from", "2027-01-01T00:00:00Z", "--count", "0"}, "--count 0"},
		{"unknown flag", []string{"policy", "preview", "--bogus"}, "unknown flag: --bogus"},
		{"extra argument", []string{"policy", "preview", "x"}, "takes no arguments"},
		{"no times", []string{"policy", "retention-preview", "--keep-last", "1"}, "--times FILE is required"},
		{"keeps nothing", []string{"policy", "retention-preview", "--times", "-"}, "retention: keeps nothing"},
		{"daily too large", []string{"policy", "retention-preview", "--times", "-", "--keep-daily", "10000"}, "keep-daily 10000: must be between 0 and 9999"},
		{"bad now", []string{"policy", "retention-preview", "--times", "-", "--keep-last", "1", "--now", "yesterday"}, `--now "yesterday"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runPolicy(t, "", tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d (want %d), stderr %q, want it to contain %q", code, exitUsage, stderr, tt.want)
			}
		})
	}
}

const pointsFile = `# recovery points, one RFC 3339 instant a line
2027-03-12T07:30:00Z
2027-03-13T07:30:00Z

2027-03-14T07:00:00Z   # 03:00 EDT, the morning the clocks jump
2027-03-14T15:00:00Z on-demand
2027-03-15T06:30:00Z
`

func TestRetentionPreviewText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "points.txt")
	if err := os.WriteFile(path, []byte(pointsFile), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runPolicy(t, "", "policy", "retention-preview", "--times", path,
		"--keep-last", "1", "--keep-daily", "2", "--tz", "America/New_York")
	want := `keep    2027-03-15T06:30:00Z  Mon 2027-03-15 02:30 EDT -04:00  last,daily
keep    2027-03-14T15:00:00Z  Sun 2027-03-14 11:00 EDT -04:00  daily (on-demand point)
delete  2027-03-14T07:00:00Z  Sun 2027-03-14 03:00 EDT -04:00  -
delete  2027-03-13T07:30:00Z  Sat 2027-03-13 02:30 EST -05:00  -
delete  2027-03-12T07:30:00Z  Fri 2027-03-12 02:30 EST -05:00  -
5 points: 2 kept, 3 deleted (days in America/New_York, now 2027-03-15T06:30:00Z)
`
	if code != exitOK || out != want {
		t.Errorf("exit %d, stderr %q, output:\n%s\nwant:\n%s", code, stderr, out, want)
	}
}

func TestRetentionPreviewJSONStdin(t *testing.T) {
	out, stderr, code := runPolicy(t, pointsFile, "policy", "retention-preview", "--times", "-",
		"--keep-daily", "1", "--keep-on-demand-days", "1", "--now", "2027-03-15T12:00:00Z", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got []struct {
		Time     string   `json:"time"`
		Keep     bool     `json:"keep"`
		Reasons  []string `json:"reasons"`
		OnDemand bool     `json:"on_demand"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got) != 5 {
		t.Fatalf("got %d decisions, want 5: %s", len(got), out)
	}
	if g := got[0]; g.Time != "2027-03-15T06:30:00Z" || !g.Keep || strings.Join(g.Reasons, ",") != "daily" {
		t.Errorf("newest: %+v", g)
	}
	if g := got[1]; g.Time != "2027-03-14T15:00:00Z" || !g.Keep || !g.OnDemand || strings.Join(g.Reasons, ",") != "on-demand" {
		t.Errorf("on-demand point: %+v", g)
	}
	if g := got[4]; g.Keep || g.Reasons == nil || len(g.Reasons) != 0 {
		t.Errorf("oldest: %+v (reasons must be an empty array)", g)
	}
	if !strings.Contains(out, `"reasons": []`) {
		t.Errorf("deleted points must have \"reasons\": [], got %s", out)
	}
}

func TestRetentionPreviewBadLine(t *testing.T) {
	_, stderr, code := runPolicy(t, "2027-03-12T07:30:00Z\n\n2027-03-13 07:30\n", "policy", "retention-preview", "--times", "-", "--keep-last", "1")
	want := `--times standard input line 3: "2027-03-13 07:30": not an RFC 3339 instant`
	if code != exitUsage || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q, want %q", code, stderr, want)
	}
	_, stderr, code = runPolicy(t, "2027-03-12T07:30:00Z manual\n", "policy", "retention-preview", "--times", "-", "--keep-last", "1")
	if code != exitUsage || !strings.Contains(stderr, `line 1: "2027-03-12T07:30:00Z manual": expected an instant, optionally followed by "on-demand"`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestRetentionPreviewMissingFile(t *testing.T) {
	_, stderr, code := runPolicy(t, "", "policy", "retention-preview", "--times", filepath.Join(t.TempDir(), "none"), "--keep-last", "1")
	if code != exitError || !strings.Contains(stderr, "none") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestRetentionPreviewEmpty(t *testing.T) {
	out, _, code := runPolicy(t, "# nothing yet\n", "policy", "retention-preview", "--times", "-", "--keep-last", "1")
	if code != exitOK || out != "no recovery points\n" {
		t.Errorf("exit %d, output %q", code, out)
	}
	out, _, _ = runPolicy(t, "", "policy", "retention-preview", "--times", "-", "--keep-last", "1", "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("JSON output %q, want []", out)
	}
}
