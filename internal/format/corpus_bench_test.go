package format_test

import (
	"bytes"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/coffer-backup/coffer/internal/chunker"
	"github.com/coffer-backup/coffer/internal/format"
	"github.com/coffer-backup/coffer/internal/treetest"
	"github.com/coffer-backup/coffer/internal/vaultapi"
)

// corpusChunks cuts the files of $COFFER_BENCH_CORPUS (a folder; else a
// seeded source-like tree) into chunks with the chunker.
func corpusChunks(b *testing.B) (chunks [][]byte, total int64) {
	dir := os.Getenv("COFFER_BENCH_CORPUS")
	if dir == "" {
		dir = b.TempDir()
		treetest.SourceLike(b, dir, 3, 3000)
	}
	keys, err := format.NewKeys(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	table := chunker.NewTable(keys.Chunker)
	ch := chunker.New(nil, table, make([]byte, chunker.BufSize))
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		ch.Reset(bytes.NewReader(data))
		for {
			c, err := ch.Next()
			if err != nil {
				break
			}
			chunks = append(chunks, bytes.Clone(c))
			total += int64(len(c))
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return chunks, total
}

// BenchmarkCorpusCompression compresses a corpus's chunks as a backup
// would at each level: every chunk alone, or (grouped) chunks shorter
// than format.GroupMember in groups of format.GroupTarget. It reports the
// compressed bytes (stored-MB) beside the speed. BENCHMARKS.md,
// "Compression", has its figures for the linux corpus:
//
//	COFFER_BENCH_CORPUS=DIR/linux go test ./internal/format -run '^$' -bench CorpusCompression -benchtime 1x
func BenchmarkCorpusCompression(b *testing.B) {
	chunks, total := corpusChunks(b)
	keys, err := format.NewKeys(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		level   format.Level
		grouped bool
	}{
		{"fastest-alone", format.LevelFastest, false},
		{"default-alone", format.LevelDefault, false},
		{"fastest-grouped", format.LevelFastest, true},
		{"default-grouped", format.LevelDefault, true},
		{"auto", format.LevelAuto, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := format.NewSealer(keys, rand.Reader, tc.level)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(total)
			h := format.NewHasher(keys)
			chunkIDs := make([]vaultapi.ID, len(chunks))
			for i, c := range chunks {
				chunkIDs[i] = h.ID(c)
			}
			var stored int64
			for b.Loop() {
				stored = 0
				var buf, group []byte
				var lens []int
				var ids []vaultapi.ID
				seal := func() {
					if len(lens) == 0 {
						return
					}
					if len(lens) == 1 {
						buf, err = s.Frame(buf, group)
					} else {
						buf, err = s.GroupFrame(buf, format.AppendGroupTable(group, lens, ids))
					}
					if err != nil {
						b.Fatal(err)
					}
					stored += int64(len(buf))
					group, lens, ids = group[:0], lens[:0], ids[:0]
				}
				for i, c := range chunks {
					if !tc.grouped || len(c) >= format.GroupMember {
						if buf, err = s.Frame(buf, c); err != nil {
							b.Fatal(err)
						}
						stored += int64(len(buf))
						continue
					}
					group = append(group, c...)
					lens = append(lens, len(c))
					ids = append(ids, chunkIDs[i])
					if len(group) >= format.GroupTarget || len(lens) >= format.GroupMaxMembers {
						seal()
					}
				}
				seal()
			}
			b.ReportMetric(float64(stored)/1e6, "stored-MB")
		})
	}
}
