package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/coffer-backup/coffer/internal/storage"
)

// maxParts is the most parts S3 accepts in one upload.
const maxParts = 10000

// putMultipart streams body (exactly size bytes) as a multipart upload.
func (s *Store) putMultipart(ctx context.Context, name string, body io.Reader, size int64, opts storage.PutOptions) (err error) {
	if opts.IfAbsent {
		// Spares the upload when the object is there. The conditional
		// CompleteMultipartUpload below is what makes it race-free.
		if _, err := s.Stat(ctx, name); err == nil {
			return fmt.Errorf("s3: put %s: %w", name, storage.ErrExists)
		}
	}
	partSize := max(s.c.PartSize, (size+maxParts-1)/maxParts)
	nparts := int((size + partSize - 1) / partSize)

	created, err := s.c.Client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{
		Bucket: &s.c.Bucket, Key: &name, ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	})
	if err != nil {
		return s.opError("put", name, err)
	}
	uploadID := created.UploadId
	defer func() {
		if err == nil {
			return
		}
		// Abort even when ctx is cancelled, so no parts are left billed.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = s.c.Client.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{
			Bucket: &s.c.Bucket, Key: &name, UploadId: uploadID,
		})
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		parts    = make([]types.CompletedPart, nparts)
		free     = make(chan []byte, s.c.Concurrency)
		made     = 0
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}
	for i := range nparts {
		var buf []byte
		if made < s.c.Concurrency {
			buf, made = make([]byte, partSize), made+1
		} else {
			select {
			case buf = <-free:
			case <-ctx.Done():
			}
		}
		if buf == nil || failed() != nil {
			break
		}
		n := min(partSize, size-int64(i)*partSize)
		if _, err := io.ReadFull(body, buf[:n]); err != nil {
			fail(fmt.Errorf("s3: put %s: %w", name, err))
			break
		}
		wg.Go(func() {
			defer func() { free <- buf }()
			out, err := s.c.Client.UploadPart(ctx, &awss3.UploadPartInput{
				Bucket: &s.c.Bucket, Key: &name, UploadId: uploadID, PartNumber: aws.Int32(int32(i + 1)),
				Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(n),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
			})
			if err != nil {
				fail(s.opError("put", name, err))
				return
			}
			parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1)), ChecksumCRC32: out.ChecksumCRC32}
		})
	}
	wg.Wait()
	if err := failed(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: put %s: %w", name, err)
	}
	if err := wantEOF(body); err != nil {
		return fmt.Errorf("s3: put %s: %w", name, err)
	}
	in := &awss3.CompleteMultipartUploadInput{
		Bucket: &s.c.Bucket, Key: &name, UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	if opts.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	_, err = s.c.Client.CompleteMultipartUpload(ctx, in)
	return s.putError(name, err, opts.IfAbsent)
}
