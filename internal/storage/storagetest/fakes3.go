package storagetest

import (
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// FakeS3 starts an in-process S3 service (gofakes3, in memory) for the
// test and returns its endpoint URL. Any credentials are accepted; use
// path-style addressing.
func FakeS3(t *testing.T) string {
	t.Helper()
	fake := gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog()))
	srv := httptest.NewServer(fake.Server())
	t.Cleanup(srv.Close)
	return srv.URL
}
