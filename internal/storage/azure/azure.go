// Package azure is a storage.Storage on an Azure Blob Storage container
// (block blobs), through the azblob SDK. It works with Azurite too.
//
// Put streams the body as blocks uploaded in parallel and commits the block
// list (one Put Blob request when the object fits in one block), so the
// object appears whole or not at all. Put-if-absent sends "If-None-Match: *",
// so the service decides which concurrent writer wins. The SDK's own
// retries are turned off: wrap.Retry is the one retry layer.
package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/internal/sized"
)

// Config says which container to use, how to reach it, and how.
type Config struct {
	// Container is created if it is missing.
	Container string
	// ServiceURL is the blob service's URL: empty means
	// https://ACCOUNT.blob.core.windows.net; for Azurite,
	// http://127.0.0.1:10000/devstoreaccount1.
	ServiceURL string
	// Credentials, one of: AccountName and AccountKey (shared key);
	// ConnectionString (it names the endpoint too, and ServiceURL is then
	// ignored); SASToken with AccountName or ServiceURL.
	AccountName, AccountKey string
	ConnectionString        string
	SASToken                string
	// BlockSize: objects up to this size go in one request, larger ones in
	// blocks of this size. Zero means 8 MiB.
	BlockSize int64
	// Concurrency is the number of blocks uploaded at once. Zero means 4.
	Concurrency int
	// PageSize is the number of names asked per listing request. Zero
	// means 5000, the service's maximum.
	PageSize int32
}

// Store is a storage.Storage on an Azure Blob Storage container.
type Store struct {
	c        Config
	endpoint string // for messages
	client   *container.Client
}

var _ storage.Storage = (*Store)(nil)

// New returns the store on c.Container, creating the container if it is
// missing. It checks that the service answers and accepts the credentials
// by listing one blob, and names the problem if not.
func New(ctx context.Context, c Config) (*Store, error) {
	if c.Container == "" {
		return nil, errors.New("azblob: Config needs a Container")
	}
	if c.BlockSize <= 0 {
		c.BlockSize = 8 << 20
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.PageSize <= 0 || c.PageSize > 5000 {
		c.PageSize = 5000
	}
	client, endpoint, err := newClient(c)
	if err != nil {
		return nil, err
	}
	s := &Store{c: c, endpoint: endpoint, client: client}
	if err := s.ensureContainer(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func newClient(c Config) (*container.Client, string, error) {
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: -1}, // wrap.Retry retries
	}}
	if c.ConnectionString != "" {
		client, err := container.NewClientFromConnectionString(c.ConnectionString, c.Container, opts)
		if err != nil {
			return nil, "", fmt.Errorf("azblob: bad connection string: %w", err)
		}
		return client, strings.TrimSuffix(client.URL(), "/"+c.Container), nil
	}
	serviceURL := strings.TrimSuffix(c.ServiceURL, "/")
	if serviceURL == "" {
		if c.AccountName == "" {
			return nil, "", errors.New("azblob: no storage account: set AZURE_STORAGE_ACCOUNT (or AZURE_STORAGE_CONNECTION_STRING)")
		}
		serviceURL = "https://" + c.AccountName + ".blob.core.windows.net"
	}
	containerURL := serviceURL + "/" + c.Container
	switch {
	case c.AccountKey != "":
		if c.AccountName == "" {
			return nil, "", errors.New("azblob: an account key needs the account name: set AZURE_STORAGE_ACCOUNT")
		}
		cred, err := azblob.NewSharedKeyCredential(c.AccountName, c.AccountKey)
		if err != nil {
			return nil, "", fmt.Errorf("azblob: bad account key for %s: %w", c.AccountName, err)
		}
		client, err := container.NewClientWithSharedKeyCredential(containerURL, cred, opts)
		if err != nil {
			return nil, "", fmt.Errorf("azblob: %w", err)
		}
		return client, serviceURL, nil
	case c.SASToken != "":
		client, err := container.NewClientWithNoCredential(containerURL+"?"+strings.TrimPrefix(c.SASToken, "?"), opts)
		if err != nil {
			return nil, "", fmt.Errorf("azblob: %w", err)
		}
		return client, serviceURL, nil
	}
	return nil, "", errors.New("azblob: no credentials: set AZURE_STORAGE_KEY (with AZURE_STORAGE_ACCOUNT), " +
		"AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_SAS_TOKEN")
}

// ensureContainer creates the container if needed, then lists one blob.
func (s *Store) ensureContainer(ctx context.Context) error {
	_, err := s.client.GetProperties(ctx, nil)
	if status(err) == 404 {
		_, err = s.client.Create(ctx, nil)
		if code(err) == "ContainerAlreadyExists" {
			err = nil
		}
		if err != nil {
			return s.openError("create container "+s.c.Container, err)
		}
	}
	if err != nil {
		return s.openError("container "+s.c.Container, err)
	}
	_, err = s.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{MaxResults: to.Ptr(int32(1))}).NextPage(ctx)
	if err != nil {
		return s.openError("list container "+s.c.Container, err)
	}
	return nil
}

// Put implements storage.Storage.
func (s *Store) Put(ctx context.Context, name string, r io.Reader, size int64, opts storage.PutOptions) error {
	if err := storage.CheckName(name); err != nil {
		return fmt.Errorf("azblob: put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("azblob: put %s: %w", name, err)
	}
	if size < 0 {
		return fmt.Errorf("azblob: put %s: negative size %d", name, size)
	}
	o := &blockblob.UploadStreamOptions{
		// A smaller block for small objects keeps memory in proportion.
		BlockSize:   max(min(s.c.BlockSize, size+1), 1<<20),
		Concurrency: s.c.Concurrency,
	}
	if opts.IfAbsent {
		o.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{
			IfNoneMatch: to.Ptr(azcore.ETagAny),
		}}
	}
	_, err := s.client.NewBlockBlobClient(name).UploadStream(ctx, sized.Reader(ctx, r, size), o)
	if err == nil {
		return nil
	}
	if opts.IfAbsent && (code(err) == "BlobAlreadyExists" || status(err) == 412 || code(err) == "ConditionNotMet") {
		return fmt.Errorf("azblob: put %s: %w", name, storage.ErrExists)
	}
	return s.opError("put", name, err)
}

// Get implements storage.Storage.
func (s *Store) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := storage.CheckName(name); err != nil {
		return nil, fmt.Errorf("azblob: get: %w", err)
	}
	if length == 0 || off < 0 {
		return s.emptyRange(ctx, name, off, length)
	}
	rng := blob.HTTPRange{Offset: off}
	if length > 0 {
		rng.Count = length
	}
	resp, err := s.client.NewBlobClient(name).DownloadStream(ctx, &blob.DownloadStreamOptions{Range: rng})
	if status(err) == 416 {
		return s.emptyRange(ctx, name, off, length)
	}
	if err != nil {
		return nil, s.opError("get", name, err)
	}
	if length > 0 && deref(resp.ContentLength) != length {
		resp.Body.Close()
		return nil, fmt.Errorf("azblob: get %s: range [%d, %d) past the end of the object", name, off, off+length)
	}
	return resp.Body, nil
}

// emptyRange answers a Get whose range may be empty, or past the end.
func (s *Store) emptyRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	info, err := s.Stat(ctx, name)
	if err != nil {
		return nil, err
	}
	n, err := sized.Range(off, length, info.Size)
	if err != nil {
		return nil, fmt.Errorf("azblob: get %s: %w", name, err)
	}
	if n != 0 {
		return nil, fmt.Errorf("azblob: get %s: the service refused range [%d, %d) of %d bytes", name, off, off+n, info.Size)
	}
	return io.NopCloser(strings.NewReader("")), nil
}

// Stat implements storage.Storage.
func (s *Store) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := storage.CheckName(name); err != nil {
		return storage.Info{}, fmt.Errorf("azblob: stat: %w", err)
	}
	p, err := s.client.NewBlobClient(name).GetProperties(ctx, nil)
	if err != nil {
		return storage.Info{}, s.opError("stat", name, err)
	}
	return storage.Info{Name: name, Size: deref(p.ContentLength), ModTime: deref(p.LastModified)}, nil
}

// List implements storage.Storage. The service lists names in lexical
// order.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	o := &container.ListBlobsFlatOptions{MaxResults: to.Ptr(s.c.PageSize)}
	if prefix != "" {
		o.Prefix = to.Ptr(prefix)
	}
	pager := s.client.NewListBlobsFlatPager(o)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return s.opError("list", prefix, err)
		}
		for _, b := range page.Segment.BlobItems {
			info := storage.Info{Name: deref(b.Name)}
			if b.Properties != nil {
				info.Size = deref(b.Properties.ContentLength)
				info.ModTime = deref(b.Properties.LastModified)
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete implements storage.Storage.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := storage.CheckName(name); err != nil {
		return fmt.Errorf("azblob: delete: %w", err)
	}
	if _, err := s.client.NewBlobClient(name).Delete(ctx, nil); err != nil {
		return s.opError("delete", name, err)
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
