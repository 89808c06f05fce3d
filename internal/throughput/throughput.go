// Package throughput measures how fast this machine runs each stage of
// Coffer's pipeline — chunking, hashing, every compression level,
// encryption, decryption and storage writes and reads — on real or
// generated data, and suggests a compression setting. It backs
// `coffer benchmark`.
package throughput

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/coffer-backup/coffer/internal/chunker"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// Result is one measured stage.
type Result struct {
	Stage     string  `json:"stage"`
	MBps      float64 `json:"mb_per_s"`           // input megabytes (10^6) per second, one core
	Ratio     float64 `json:"ratio,omitempty"`    // compression ratio, input ÷ output
	Reference float64 `json:"reference_mb_per_s"` // the same stage on the reference machine
	Note      string  `json:"note,omitempty"`
}

// Reference figures: one core of a 2-core AMD EPYC (Zen 5) virtual
// machine, Go 1.26, on source-code-like data (see BENCHMARKS.md).
var reference = map[string]float64{
	"chunk (FastCDC)":           1742,
	"hash (keyed BLAKE3)":       2988,
	"compress zstd fastest":     315,
	"compress zstd default":     245,
	"compress zstd better":      180,
	"encrypt (AES-256-GCM)":     4876,
	"open (AES-256-GCM + zstd)": 1400,
	"storage write + fsync":     800,
	"storage read":              9000,
}

// Options of a run.
type Options struct {
	Data     []byte        // input; nil: generated mixed data
	Duration time.Duration // per stage; default 1 s
	Dir      string        // where to test storage; empty: skip
	Rand     io.Reader     // nonce prefixes
}

// GenerateData returns n bytes that compress like source code: text
// lines built from a fixed vocabulary, seeded for repeatability.
func GenerateData(n int, seed uint64) []byte {
	words := []string{"func", "return", "if", "err", "nil", "for", "range", "the", "data", "struct",
		"int", "string", "byte", "package", "import", "const", "var", "type", "case", "switch",
		"buffer", "chunk", "index", "value", "result", "context", "error", "name", "size", "offset"}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var b bytes.Buffer
	b.Grow(n)
	for b.Len() < n {
		indent := r.IntN(4)
		for range indent {
			b.WriteByte('\t')
		}
		for w := r.IntN(8) + 1; w > 0; w-- {
			b.WriteString(words[r.IntN(len(words))])
			if r.IntN(5) == 0 {
				fmt.Fprintf(&b, "%d", r.IntN(10000))
			}
			b.WriteByte(' ')
		}
		b.WriteByte('\n')
	}
	return b.Bytes()[:n]
}

// measure runs fn over data repeatedly for about d and returns MB/s.
func measure(d time.Duration, size int, fn func() error) (float64, error) {
	var n int
	start := time.Now()
	for time.Since(start) < d || n == 0 {
		if err := fn(); err != nil {
			return 0, err
		}
		n++
	}
	return float64(size*n) / 1e6 / time.Since(start).Seconds(), nil
}

// Run measures every stage, single-threaded, and returns the results.
func Run(ctx context.Context, opts Options) ([]Result, error) {
	if opts.Duration <= 0 {
		opts.Duration = time.Second
	}
	data := opts.Data
	if data == nil {
		data = GenerateData(32<<20, 1)
	}
	var keys format.Keys
	copy(keys.Data[:], bytes.Repeat([]byte{7}, 32))
	copy(keys.ID[:], bytes.Repeat([]byte{8}, 32))
	copy(keys.Chunker[:], bytes.Repeat([]byte{9}, 32))
	table := chunker.NewTable(keys.Chunker)
	hasher := format.NewHasher(&keys)

	// Cut the data into chunks once, as a backup would.
	var chunks [][]byte
	for rest := data; len(rest) > 0; {
		n := table.Cut(rest)
		chunks = append(chunks, rest[:n])
		rest = rest[n:]
	}
	var out []Result
	add := func(stage string, mbps, ratio float64, note string) {
		out = append(out, Result{Stage: stage, MBps: mbps, Ratio: ratio, Reference: reference[stage], Note: note})
	}
	mbps, err := measure(opts.Duration, len(data), func() error {
		for rest := data; len(rest) > 0; {
			rest = rest[table.Cut(rest):]
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	add("chunk (FastCDC)", mbps, 0, "")
	mbps, _ = measure(opts.Duration, len(data), func() error {
		for _, c := range chunks {
			hasher.ID(c)
		}
		return ctx.Err()
	})
	add("hash (keyed BLAKE3)", mbps, 0, "")

	for _, lv := range []struct {
		name  string
		level format.Level
	}{{"fastest", format.LevelFastest}, {"default", format.LevelDefault}, {"better", format.LevelBetter}} {
		s, err := format.NewSealer(&keys, opts.Rand, lv.level)
		if err != nil {
			return nil, err
		}
		var dst, scratch []byte
		var stored int
		mbps, err := measure(opts.Duration, len(data), func() error {
			stored = 0
			for _, c := range chunks {
				var err error
				dst, scratch, err = s.Seal(dst[:0], vaultapi.KindData, vaultapi.ID{}, c, scratch)
				if err != nil {
					return err
				}
				stored += len(dst)
			}
			return ctx.Err()
		})
		if err != nil {
			return nil, err
		}
		ratio := float64(len(data)) / float64(stored)
		add("compress zstd "+lv.name, mbps, ratio, "includes AES-256-GCM of the output")
	}

	raw, err := format.NewSealer(&keys, opts.Rand, format.LevelNone)
	if err != nil {
		return nil, err
	}
	var dst []byte
	mbps, _ = measure(opts.Duration, len(data), func() error {
		for _, c := range chunks {
			dst, _, _ = raw.Seal(dst[:0], vaultapi.KindData, vaultapi.ID{}, c, nil)
		}
		return ctx.Err()
	})
	add("encrypt (AES-256-GCM)", mbps, 0, "no compression")

	op, err := format.NewOpener(&keys)
	if err != nil {
		return nil, err
	}
	// Open the first chunk (a full-size one unless the data is small),
	// sealed at the default level.
	fast, err := format.NewSealer(&keys, opts.Rand, format.LevelFastest)
	if err != nil {
		return nil, err
	}
	sealed, _, err := fast.Seal(nil, vaultapi.KindData, vaultapi.ID{}, chunks[0], nil)
	if err != nil {
		return nil, err
	}
	sealedCopy := make([]byte, len(sealed))
	var plain []byte
	mbps, err = measure(opts.Duration, len(chunks[0]), func() error {
		copy(sealedCopy, sealed)
		var err error
		plain, err = op.Open(plain, vaultapi.KindData, vaultapi.ID{}, sealedCopy)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	add("open (AES-256-GCM + zstd)", mbps, 0, "")

	if opts.Dir != "" {
		w, r, err := storageSpeed(opts.Dir, data)
		if err != nil {
			return nil, err
		}
		add("storage write + fsync", w, 0, opts.Dir)
		add("storage read", r, 0, "page cache warm")
	}
	return out, nil
}

func storageSpeed(dir string, data []byte) (float64, float64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, 0, err
	}
	f, err := os.CreateTemp(dir, ".coffer-benchmark-*")
	if err != nil {
		return 0, 0, fmt.Errorf("storage test: %w", err)
	}
	name := f.Name()
	defer os.Remove(name)
	start := time.Now()
	for i := 0; i < 4; i++ {
		if _, err := f.Write(data); err != nil {
			f.Close()
			return 0, 0, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, 0, err
	}
	write := float64(4*len(data)) / 1e6 / time.Since(start).Seconds()
	f.Close()
	buf := make([]byte, 1<<20)
	start = time.Now()
	rf, err := os.Open(filepath.Clean(name))
	if err != nil {
		return 0, 0, err
	}
	defer rf.Close()
	var n int64
	for {
		k, err := rf.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, err
		}
	}
	read := float64(n) / 1e6 / time.Since(start).Seconds()
	return write, read, nil
}

// Suggest picks a compression level: the strongest whose speed on all
// cores keeps up with the target rate (the storage write speed, or
// 200 MB/s when unknown). auto, the default, is picked when fastest keeps
// up and default does not: it compresses small files at fastest, in
// groups, and only larger chunks at default (very redundant ones too at
// fastest; format.LevelAuto). When not even fastest keeps
// up, the cores are the limit and fastest is picked.
func Suggest(results []Result) (string, string) {
	cores := float64(runtime.GOMAXPROCS(0))
	target := 200.0
	for _, r := range results {
		if r.Stage == "storage write + fsync" {
			target = r.MBps
		}
	}
	pick, why := "fastest", fmt.Sprintf("no level compresses at the %.0f MB/s storage takes: the cores are the limit", target)
	for _, lv := range []string{"fastest", "default", "better"} {
		for _, r := range results {
			if r.Stage == "compress zstd "+lv && r.MBps*cores >= target {
				pick = lv
				why = fmt.Sprintf("%s compresses at %.0f MB/s on %d cores, at least the %.0f MB/s storage takes", lv, r.MBps*cores, int(cores), target)
				if lv == "fastest" {
					pick = "auto"
					why += "; auto, the default, compresses small files at fastest and larger chunks at default (very redundant ones at fastest)"
				}
			}
		}
	}
	return pick, why
}
