package s3_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/s3"
	"github.com/coffer-backup/coffer/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	endpoint := storagetest.FakeS3(t)
	ctx := context.Background()
	cli, err := s3.NewClient(ctx, s3.ClientConfig{
		Endpoint: endpoint, Region: "us-east-1", PathStyle: true,
		AccessKeyID: "AKIAFAKE", SecretAccessKey: "fakesecret",
	})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s, err := s3.New(ctx, s3.Config{
			Client: cli, Bucket: fmt.Sprintf("test-%d", n.Add(1)), Endpoint: endpoint,
			PartSize: 5 << 20, Concurrency: 3, PageSize: 250,
		})
		if err != nil {
			t.Fatalf("s3.New: %v", err)
		}
		return s
	})
}
