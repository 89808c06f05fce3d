package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"none", nil, 0},
		{"one", []float64{3}, 3},
		{"odd", []float64{5, 1, 3}, 3},
		{"even", []float64{4, 1, 3, 2}, 2.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkFloat(t, median(tc.in), tc.want)
		})
	}
}

const runsCSV = `round,scenario,tool,step,wall_s,user_s,sys_s,maxrss_kib,repo_bytes,state_bytes
1,linux,coffer,backup_A,4.00,6.0,1.0,81920,250000000,1000
1,linux,restic,init,1.50,1.4,0.1,40960,1000,0
1,linux,restic,backup_A,12.00,20.0,2.0,138240,277000000,5000
1,linux,coffer,backup_A2,0.40,0.3,0.1,40960,250100000,1000
1,linux,restic,backup_A2,4.00,5.0,0.2,75000,277100000,5000
1,linux,coffer,backup_B,0.80,0.9,0.1,40960,251100000,1000
1,linux,restic,backup_B,4.20,5.0,0.2,75000,283100000,5000
2,linux,coffer,backup_A,6.00,6.2,1.0,81920,250000000,1000
2,linux,restic,backup_A,12.00,20.0,2.0,138240,277000000,5000
2,linux,coffer,backup_A2,0.40,0.3,0.1,40960,250100000,1000
2,linux,restic,backup_A2,4.00,5.0,0.2,75000,277100000,5000
2,linux,coffer,backup_B,0.80,0.9,0.1,40960,251100000,1000
2,linux,restic,backup_B,4.20,5.0,0.2,75000,283100000,5000
`

func TestPairedRatio(t *testing.T) {
	runs, err := parseRuns(strings.NewReader(runsCSV))
	if err != nil {
		t.Fatal(err)
	}
	tb := newTable(runs, nil)
	tests := []struct {
		step string
		f    func(run) float64
		want float64
	}{
		{"backup_A", wallOf, 2.5}, // rounds: 12/4 = 3, 12/6 = 2
		{"backup_A", cpuOf, (22.0/7 + 22.0/7.2) / 2},
		{"backup_A2", wallOf, 10},
		{"backup_A", repoOf, 277.0 / 250},
	}
	for _, tc := range tests {
		t.Run(tc.step, func(t *testing.T) {
			got, n, ok := tb.pairedRatio("linux", tc.step, "restic", "coffer", tc.f)
			if !ok || n != 2 {
				t.Fatalf("pairedRatio: ok %v n %d, want ok with 2 rounds", ok, n)
			}
			checkFloat(t, got, tc.want)
		})
	}
	if _, _, ok := tb.pairedRatio("linux", "init", "restic", "coffer", wallOf); ok {
		t.Errorf("pairedRatio of a step the reference lacks: got ok, want not ok")
	}
	g := tb.growth("linux", "restic")
	checkFloat(t, g[1], 6e6)
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	runsPath := filepath.Join(dir, "runs.csv")
	verifyPath := filepath.Join(dir, "verify.csv")
	writeFile(t, runsPath, runsCSV)
	writeFile(t, verifyPath, "round,scenario,tool,content_diffs,meta_diffs,one_file\n1,linux,coffer,0,0,ok\n1,linux,restic,0,2,ok\n")
	var out bytes.Buffer
	if err := summarize([]string{"-runs", runsPath, "-verify", verifyPath}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| coffer | 2 | — | 5.0 / 7.1 / 80 | 0.40 / 0.40 / 40 |",
		"| restic | 2 | 1.50 / 1.50 / 40 |",
		"0/2/ok",
		"| linux | backup_A | 2.50 |",
		"| speed | unchanged backup linux | < 0.5 s | 0.40 s | yes |",
		"| speed | initial backup linux vs restic | >= 3× faster | 2.50× (coffer 5.0 s, restic 12.0 s) | **no** |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q; got:\n%s", want, out.String())
		}
	}
}

func checkFloat(t *testing.T, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("got %v, want %v", got, want)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReportFloors: the floors of floor.csv appear as a table, with the
// reference tool's full restore beside the kernel's share of it.
func TestReportFloors(t *testing.T) {
	dir := t.TempDir()
	runsPath, floorPath := filepath.Join(dir, "runs.csv"), filepath.Join(dir, "floor.csv")
	writeFile(t, runsPath, runsCSV+"1,linux,coffer,restore_full,3.20,3.0,2.5,180000,250000000,1000\n"+
		"2,linux,coffer,restore_full,3.40,3.1,2.6,180000,250000000,1000\n")
	writeFile(t, floorPath, "scenario,step,files,bytes,wall_s,user_s,sys_s\n"+
		"linux,read,78579,1298700000,0.550,0.100,0.820\n"+
		"linux,mkdir,5095,0,0.120,0.000,0.120\n"+
		"linux,create,78579,1298700000,1.790,0.110,2.920\n")
	var out bytes.Buffer
	if err := summarize([]string{"-runs", runsPath, "-floor", floorPath}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"## Floors",
		"| linux | read every file (open, fstat, read, close) | 78579 | 0.55 | 0.92 |",
		"| linux | make the folders | 5095 | 0.12 | 0.12 |",
		"| linux | create, write and timestamp every file (openat O_CREAT, pwrite, futimens, close) | 78579 | 1.79 | 3.0 |",
		"- linux: coffer's full restore 3.3 s wall / 5.6 CPU s (medians); the kernel alone making its folders and files 1.91 s / 3.1 CPU s.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q; got:\n%s", want, out.String())
		}
	}
	writeFile(t, floorPath, "scenario,step,files,bytes,wall_s,user_s,sys_s\nlinux,read,x,0,1,1,1\n")
	if err := summarize([]string{"-runs", runsPath, "-floor", floorPath}, &out); err == nil || !strings.Contains(err.Error(), "floor row 2") {
		t.Errorf("bad floor.csv: got %v, want an error naming row 2", err)
	}
}
