// Package s3 is a storage.Storage on an Amazon S3 bucket, or on any
// S3-compatible service, through aws-sdk-go-v2.
//
// Objects up to PartSize are sent with one PutObject; larger ones stream as
// a multipart upload holding at most Concurrency parts in memory, aborted
// if anything fails. Put-if-absent sends "If-None-Match: *" (on PutObject,
// or on CompleteMultipartUpload after a HeadObject check), so the service
// decides which concurrent writer wins. The SDK's own retries are turned
// off: wrap.Retry is the one retry layer.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/internal/sized"
)

// Config says which bucket to use and how.
type Config struct {
	// Client talks to the service; NewClient makes one.
	Client *awss3.Client
	// Bucket is created if it is missing.
	Bucket string
	// Region is where a missing bucket is created; empty means the
	// client's region.
	Region string
	// Endpoint is named in error messages; empty means AWS.
	Endpoint string
	// PartSize: objects up to this size go in one request, larger ones in
	// parts of this size (at least 5 MiB). Zero means 16 MiB.
	PartSize int64
	// Concurrency is the number of parts uploaded at once. Zero means 4.
	Concurrency int
	// PageSize is the number of names asked per ListObjectsV2 request.
	// Zero means 1000, the service's maximum.
	PageSize int32
}

// Store is a storage.Storage on an S3 bucket.
type Store struct {
	c Config
}

var _ storage.Storage = (*Store)(nil)

const minPartSize = 5 << 20

// New returns the store on c.Bucket, creating the bucket if it is missing.
// It checks that the service answers and accepts the credentials by
// listing one object, and names the problem if not.
func New(ctx context.Context, c Config) (*Store, error) {
	if c.Client == nil || c.Bucket == "" {
		return nil, errors.New("s3: Config needs a Client and a Bucket")
	}
	if c.PartSize == 0 {
		c.PartSize = 16 << 20
	}
	c.PartSize = max(c.PartSize, minPartSize)
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.PageSize <= 0 || c.PageSize > 1000 {
		c.PageSize = 1000
	}
	if c.Region == "" {
		c.Region = c.Client.Options().Region
	}
	s := &Store{c: c}
	if err := s.ensureBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// ensureBucket creates the bucket if needed, then lists one object.
func (s *Store) ensureBucket(ctx context.Context) error {
	_, err := s.c.Client.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &s.c.Bucket})
	if status(err) == 404 {
		in := &awss3.CreateBucketInput{Bucket: &s.c.Bucket}
		if s.c.Region != "" && s.c.Region != "us-east-1" {
			in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
				LocationConstraint: types.BucketLocationConstraint(s.c.Region),
			}
		}
		_, err = s.c.Client.CreateBucket(ctx, in)
		if code(err) == "BucketAlreadyOwnedByYou" || code(err) == "BucketAlreadyExists" {
			err = nil
		}
		if err != nil {
			return s.openError("create bucket "+s.c.Bucket, err)
		}
	}
	if err != nil {
		return s.openError("bucket "+s.c.Bucket, err)
	}
	_, err = s.c.Client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: &s.c.Bucket, MaxKeys: aws.Int32(1)})
	if err != nil {
		return s.openError("list bucket "+s.c.Bucket, err)
	}
	return nil
}

// Put implements storage.Storage.
func (s *Store) Put(ctx context.Context, name string, r io.Reader, size int64, opts storage.PutOptions) error {
	if err := storage.CheckName(name); err != nil {
		return fmt.Errorf("s3: put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: put %s: %w", name, err)
	}
	if size < 0 {
		return fmt.Errorf("s3: put %s: negative size %d", name, size)
	}
	body := sized.Reader(ctx, r, size)
	if size > s.c.PartSize {
		return s.putMultipart(ctx, name, body, size, opts)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(body, buf); err != nil {
		return fmt.Errorf("s3: put %s: %w", name, err)
	}
	if err := wantEOF(body); err != nil {
		return fmt.Errorf("s3: put %s: %w", name, err)
	}
	in := &awss3.PutObjectInput{
		Bucket: &s.c.Bucket, Key: &name, Body: bytes.NewReader(buf), ContentLength: aws.Int64(size),
	}
	if opts.IfAbsent {
		in.IfNoneMatch = aws.String("*")
	}
	_, err := s.c.Client.PutObject(ctx, in)
	return s.putError(name, err, opts.IfAbsent)
}

// wantEOF checks that a sized reader has nothing left.
func wantEOF(r io.Reader) error {
	var one [1]byte
	if _, err := r.Read(one[:]); err != io.EOF {
		if err == nil {
			err = sized.ErrSize
		}
		return err
	}
	return nil
}

// Get implements storage.Storage.
func (s *Store) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := storage.CheckName(name); err != nil {
		return nil, fmt.Errorf("s3: get: %w", err)
	}
	if length == 0 || off < 0 {
		return s.emptyRange(ctx, name, off, length)
	}
	in := &awss3.GetObjectInput{Bucket: &s.c.Bucket, Key: &name}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1))
	case off > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	var optFns []func(*awss3.Options)
	if in.Range != nil {
		// A checksum covers the whole object, not a range of it.
		optFns = append(optFns, func(o *awss3.Options) {
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		})
	}
	out, err := s.c.Client.GetObject(ctx, in, optFns...)
	if status(err) == 416 {
		return s.emptyRange(ctx, name, off, length)
	}
	if err != nil {
		return nil, s.opError("get", name, err)
	}
	if length > 0 && aws.ToInt64(out.ContentLength) != length {
		out.Body.Close()
		return nil, fmt.Errorf("s3: get %s: range [%d, %d) past the end of the object", name, off, off+length)
	}
	return out.Body, nil
}

// emptyRange answers a Get whose range may be empty, or past the end.
func (s *Store) emptyRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	info, err := s.Stat(ctx, name)
	if err != nil {
		return nil, err
	}
	n, err := sized.Range(off, length, info.Size)
	if err != nil {
		return nil, fmt.Errorf("s3: get %s: %w", name, err)
	}
	if n != 0 {
		return nil, fmt.Errorf("s3: get %s: the service refused range [%d, %d) of %d bytes", name, off, off+n, info.Size)
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// Stat implements storage.Storage.
func (s *Store) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := storage.CheckName(name); err != nil {
		return storage.Info{}, fmt.Errorf("s3: stat: %w", err)
	}
	out, err := s.c.Client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &s.c.Bucket, Key: &name})
	if err != nil {
		return storage.Info{}, s.opError("stat", name, err)
	}
	return storage.Info{Name: name, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// List implements storage.Storage. S3 lists keys in UTF-8 byte order.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	p := awss3.NewListObjectsV2Paginator(s.c.Client, &awss3.ListObjectsV2Input{
		Bucket: &s.c.Bucket, Prefix: aws.String(prefix), MaxKeys: aws.Int32(s.c.PageSize),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.opError("list", prefix, err)
		}
		for _, o := range page.Contents {
			info := storage.Info{Name: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete implements storage.Storage. S3 deletes missing keys without
// complaint, so Delete asks first: a missing object is ErrNotFound.
func (s *Store) Delete(ctx context.Context, name string) error {
	if _, err := s.Stat(ctx, name); err != nil {
		return err
	}
	_, err := s.c.Client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &s.c.Bucket, Key: &name})
	if err != nil {
		return s.opError("delete", name, err)
	}
	return nil
}
