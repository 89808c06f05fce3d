package restorer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/restorer"
	"github.com/coffer-backup/coffer/internal/treetest"
)

// TestProgress: progress reports come while the restore plans and
// fetches (run under -race, they must not race with either), and the last
// one has the final counts.
func TestProgress(t *testing.T) {
	src := t.TempDir()
	n := treetest.SourceLike(t, src, 2, 600)
	r := newRepo(t)
	root := backup(t, r, src)
	var mu sync.Mutex
	var reports []restorer.Progress
	res, err := restorer.Restore(context.Background(), r, root, restorer.Options{Target: t.TempDir(),
		ProgressEvery: time.Millisecond,
		Progress: func(p restorer.Progress) {
			mu.Lock()
			reports = append(reports, p)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) == 0 {
		t.Fatal("no progress reported")
	}
	last := reports[len(reports)-1]
	if last.Files != res.Files || last.Files != 600 || last.FilesDone != 600 ||
		last.Bytes != uint64(n) || last.TotalBytes != uint64(n) {
		t.Errorf("last progress %+v; want 600 files done, %d bytes of %d", last, n, n)
	}
	for i := 1; i < len(reports); i++ {
		if reports[i].Bytes < reports[i-1].Bytes || reports[i].FilesDone < reports[i-1].FilesDone {
			t.Fatalf("progress went backwards: %+v then %+v", reports[i-1], reports[i])
		}
	}
}
