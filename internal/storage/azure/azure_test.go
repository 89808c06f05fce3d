package azure_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/azure"
	"github.com/coffer-backup/coffer/internal/storage/storagetest"
)

var (
	azurite    *storagetest.Azurite
	azuriteErr error
)

func TestMain(m *testing.M) {
	azurite, azuriteErr = storagetest.StartAzurite()
	code := m.Run()
	if azurite != nil {
		azurite.Stop()
	}
	os.Exit(code)
}

// needAzurite fails the test when Azurite could not be started.
func needAzurite(t *testing.T) *storagetest.Azurite {
	t.Helper()
	if azuriteErr != nil {
		t.Fatalf("the Azure tests need Azurite: %v", azuriteErr)
	}
	return azurite
}

var containers atomic.Int32

func TestConformance(t *testing.T) {
	az := needAzurite(t)
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s, err := azure.New(context.Background(), azure.Config{
			Container:  fmt.Sprintf("test-%d", containers.Add(1)),
			ServiceURL: az.URL, AccountName: storagetest.AzuriteAccount, AccountKey: storagetest.AzuriteKey,
			BlockSize: 2 << 20, Concurrency: 3, PageSize: 250,
		})
		if err != nil {
			t.Fatalf("azure.New: %v", err)
		}
		return s
	})
}
