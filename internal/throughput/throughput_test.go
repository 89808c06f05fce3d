package throughput

import (
	"context"
	"crypto/rand"
	"testing"
	"time"
)

func TestRunMeasuresEveryStage(t *testing.T) {
	res, err := Run(context.Background(), Options{Data: GenerateData(6<<20, 3), Duration: 20 * time.Millisecond,
		Dir: t.TempDir(), Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"chunk (FastCDC)", "hash (keyed BLAKE3)", "compress zstd fastest", "compress zstd default",
		"compress zstd better", "encrypt (AES-256-GCM)", "open (AES-256-GCM + zstd)", "storage write + fsync", "storage read"}
	if len(res) != len(want) {
		t.Fatalf("got %d stages, want %d: %+v", len(res), len(want), res)
	}
	for i, r := range res {
		if r.Stage != want[i] || r.MBps <= 0 || r.Reference <= 0 {
			t.Errorf("stage %d: %+v, want %q with a speed and a reference", i, r, want[i])
		}
	}
	// Generated text compresses; better compresses at least as well as fastest.
	if res[2].Ratio < 1.5 || res[4].Ratio < res[2].Ratio {
		t.Errorf("ratios fastest %.2f, better %.2f", res[2].Ratio, res[4].Ratio)
	}
	if lv, why := Suggest(res); lv == "" || why == "" {
		t.Error("no suggestion")
	}
}

func TestSuggest(t *testing.T) {
	res := []Result{{Stage: "compress zstd default", MBps: 50}, {Stage: "compress zstd better", MBps: 10},
		{Stage: "storage write + fsync", MBps: 40}}
	if lv, _ := Suggest(res); lv != "default" && lv != "better" {
		t.Errorf("slow storage: suggested %s", lv)
	}
	res[2].MBps = 100000
	if lv, _ := Suggest(res); lv != "fastest" {
		t.Errorf("fast storage: suggested %s, want fastest", lv)
	}
	res = append(res, Result{Stage: "compress zstd fastest", MBps: 100000})
	if lv, _ := Suggest(res); lv != "auto" {
		t.Errorf("fast storage, faster compression: suggested %s, want auto", lv)
	}
}

func TestGenerateDataIsDeterministic(t *testing.T) {
	a, b := GenerateData(1<<16, 9), GenerateData(1<<16, 9)
	if string(a) != string(b) || len(a) != 1<<16 {
		t.Error("generated data differs between runs or has the wrong size")
	}
}
