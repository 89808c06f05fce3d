package backends_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/backends"
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

func needAzurite(t *testing.T) *storagetest.Azurite {
	t.Helper()
	if azuriteErr != nil {
		t.Fatalf("these tests need Azurite: %v", azuriteErr)
	}
	return azurite
}

// envOf returns an env function reading from m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var azuriteEnv = map[string]string{
	"AZURE_STORAGE_ACCOUNT": storagetest.AzuriteAccount,
	"AZURE_STORAGE_KEY":     storagetest.AzuriteKey,
}

var fakeAWSEnv = map[string]string{"AWS_ACCESS_KEY_ID": "AKIAFAKE", "AWS_SECRET_ACCESS_KEY": "fakesecret"}

func open(t *testing.T, rawURL string, env map[string]string) storage.Storage {
	t.Helper()
	s, err := backends.Open(context.Background(), rawURL, envOf(env))
	if err != nil {
		t.Fatalf("Open(%s): %v", rawURL, err)
	}
	return s
}

func putString(t *testing.T, s storage.Storage, name, data string) {
	t.Helper()
	if err := s.Put(context.Background(), name, strings.NewReader(data), int64(len(data)), storage.PutOptions{}); err != nil {
		t.Fatalf("Put(%s): %v", name, err)
	}
}

func getString(t *testing.T, s storage.Storage, name string) string {
	t.Helper()
	rc, err := s.Get(context.Background(), name, 0, -1)
	if err != nil {
		t.Fatalf("Get(%s): %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%s): %v", name, err)
	}
	return string(b)
}

func TestFileConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return open(t, "file://"+filepath.ToSlash(t.TempDir()), nil)
	})
}

func TestS3Conformance(t *testing.T) {
	endpoint := storagetest.FakeS3(t)
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return open(t, "s3://conformance/"+strings.ReplaceAll(t.Name(), "/", "-")+"?path_style=true&region=us-east-1&endpoint="+endpoint, fakeAWSEnv)
	})
}

func TestPlainPathAndPrefixes(t *testing.T) {
	dir := t.TempDir()
	// A plain path is a local directory.
	putString(t, open(t, dir, nil), "a/b", "plain")
	if b, err := os.ReadFile(filepath.Join(dir, "a", "b")); err != nil || string(b) != "plain" {
		t.Errorf("object of a plain-path store: got %q, %v", b, err)
	}

	// A prefix puts objects under it, in the cloud stores.
	endpoint := storagetest.FakeS3(t)
	s3URL := "s3://bucket%s?endpoint=" + endpoint + "&path_style=true&region=eu-west-1"
	putString(t, open(t, strings.Replace(s3URL, "%s", "/vaults/one", 1), fakeAWSEnv), "x", "in prefix")
	if got := getString(t, open(t, strings.Replace(s3URL, "%s", "", 1), fakeAWSEnv), "vaults/one/x"); got != "in prefix" {
		t.Errorf("s3 object under prefix: got %q", got)
	}

	az := needAzurite(t)
	azURL := "azblob://prefixes%s?endpoint=" + az.URL
	putString(t, open(t, strings.Replace(azURL, "%s", "/vaults/two/", 1), azuriteEnv), "y", "in azure prefix")
	if got := getString(t, open(t, strings.Replace(azURL, "%s", "", 1), azuriteEnv), "vaults/two/y"); got != "in azure prefix" {
		t.Errorf("azblob object under prefix: got %q", got)
	}

	// A connection string names the endpoint and the credentials.
	cs := "DefaultEndpointsProtocol=http;AccountName=" + storagetest.AzuriteAccount + ";AccountKey=" +
		storagetest.AzuriteKey + ";BlobEndpoint=" + az.URL + ";"
	s := open(t, "azblob://prefixes/vaults/two", map[string]string{"AZURE_STORAGE_CONNECTION_STRING": cs})
	if got := getString(t, s, "y"); got != "in azure prefix" {
		t.Errorf("azblob through a connection string: got %q", got)
	}
}

// closedPort returns a local address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestOpenErrors(t *testing.T) {
	az := needAzurite(t)
	fakeS3 := storagetest.FakeS3(t)
	nowhere := "http://" + closedPort(t)
	badKey := map[string]string{"AZURE_STORAGE_ACCOUNT": storagetest.AzuriteAccount,
		"AZURE_STORAGE_KEY": "d3JvbmcKd3JvbmcKd3JvbmcKd3JvbmcKd3JvbmcKd3Jvbmc="}
	tests := []struct {
		url  string
		env  map[string]string
		want string
	}{
		{"", nil, "storage URL is empty"},
		{"ftp://host/dir", nil, `unknown scheme "ftp"`},
		{"s3://bucket/%zz", nil, "malformed storage URL"},
		{"file://otherhost/dir", nil, "file URLs name a local directory"},
		{"file:///tmp/x?mode=1", nil, `unknown parameter "mode"`},
		{"azblob:///prefix", azuriteEnv, "no container"},
		{"azblob://Bad_Name", azuriteEnv, "not a valid container name"},
		{"azblob://c0ntainer?endpont=x", azuriteEnv, `unknown parameter "endpont"`},
		{"azblob://c0ntainer?endpoint=127.0.0.1:10000", azuriteEnv, "not an http(s) URL"},
		{"azblob://c0ntainer?endpoint=" + az.URL, nil, "azblob: no credentials"},
		{"azblob://c0ntainer?endpoint=" + az.URL, map[string]string{"AZURE_STORAGE_KEY": "x"}, "set AZURE_STORAGE_ACCOUNT"},
		{"azblob://c0ntainer?endpoint=" + nowhere + "/devstoreaccount1", azuriteEnv,
			"azblob: cannot reach endpoint " + nowhere + "/devstoreaccount1: connect: connection refused; is the service running?"},
		{"azblob://c0ntainer?endpoint=" + az.URL, badKey, "access denied"},
		{"azblob://user:pw@c0ntainer", azuriteEnv, "credentials do not go in the URL"},
		{"s3://", fakeAWSEnv, "no bucket"},
		{"s3://bucket?path_style=maybe&endpoint=" + fakeS3, fakeAWSEnv, "path_style"},
		{"s3://bucket?path_style=true&endpoint=" + nowhere, fakeAWSEnv,
			"s3: cannot reach endpoint " + nowhere + ": connect: connection refused; is the service running?"},
		{"s3://bucket?endpoint=" + fakeS3, map[string]string{"AWS_ACCESS_KEY_ID": "only-the-id"}, "both an access key ID and a secret"},
		{"s3://bucket?endpoint=" + url.QueryEscape("http://key:s3cr3tvalue@127.0.0.1:9"), fakeAWSEnv, "carries credentials"},
		{"azblob://c0ntainer?endpoint=" + url.QueryEscape(az.URL+"?sv=1&sig=s3cr3tvalue"), azuriteEnv, "carries credentials"},
	}
	for _, tc := range tests {
		_, err := backends.Open(context.Background(), tc.url, envOf(tc.env))
		t.Logf("Open(%q): %v", tc.url, err)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q):\n got error %v\nwant one containing %q", tc.url, err, tc.want)
		}
		if strings.Contains(err.Error(), "s3cr3tvalue") {
			t.Errorf("Open(%q): the error shows a secret: %v", tc.url, err)
		}
		// Mistakes in the URL are ErrURL; missing or refused credentials
		// and a service that cannot be reached are not.
		service := strings.Contains(tc.want, "cannot reach") || strings.Contains(tc.want, "access denied") ||
			strings.Contains(tc.want, "no credentials") || strings.Contains(tc.want, "set AZURE_STORAGE_ACCOUNT") ||
			strings.Contains(tc.want, "access key ID")
		if got := errors.Is(err, backends.ErrURL); got == service {
			t.Errorf("Open(%q): errors.Is(err, ErrURL) = %v, want %v", tc.url, got, !service)
		}
	}
}
