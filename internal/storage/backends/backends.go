// Package backends opens the storage a URL names. The backends are listed
// here, explicitly (no registration by init):
//
//	file:///ABS/PATH, or a plain path      a local directory (package local)
//	azblob://CONTAINER[/PREFIX][?endpoint=URL]
//	                                        Azure Blob Storage (package azure)
//	s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true]
//	                                        S3 or S3-compatible (package s3)
//
// Credentials come from the environment (see Open). Open stacks the
// wrappers every caller wants, in one place: the prefix, then retry.
package backends

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/internal/storage"
	"github.com/coffer-backup/coffer/internal/storage/azure"
	"github.com/coffer-backup/coffer/internal/storage/local"
	"github.com/coffer-backup/coffer/internal/storage/s3"
	"github.com/coffer-backup/coffer/internal/storage/wrap"
)

// Schemes are the URL schemes Open knows.
var Schemes = []string{"file", "azblob", "s3"}

// ErrURL marks a mistake in the storage URL itself (as opposed to a
// service that is unreachable or refuses the credentials); test with
// errors.Is.
var ErrURL = errors.New("bad storage URL")

// openTimeout bounds the checks Open makes when ctx has no deadline.
const openTimeout = 30 * time.Second

// Open opens the storage that rawURL names, reading credentials through env
// (os.Getenv, usually):
//
//   - azblob: AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or
//     AZURE_STORAGE_SAS_TOKEN, or AZURE_STORAGE_CONNECTION_STRING alone.
//   - s3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN,
//     AWS_REGION (or AWS_DEFAULT_REGION) and AWS_PROFILE; without keys,
//     the AWS SDK's default chain (shared files, instance roles).
//
// Open checks the storage with a real call (creating the container or
// bucket if missing, then listing one object), so that a wrong URL, missing
// or refused credentials, or an unreachable service fail here, with a
// message naming the problem. The store it returns applies the URL's
// prefix and retries transient errors (wrap.Retry with its defaults).
func Open(ctx context.Context, rawURL string, env func(string) string) (storage.Storage, error) {
	if env == nil {
		env = func(string) string { return "" }
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, openTimeout)
		defer cancel()
	}
	s, prefix, err := openDriver(ctx, rawURL, env)
	if err != nil {
		return nil, err
	}
	s, err = wrap.Prefix(s, prefix)
	if err != nil {
		return nil, fmt.Errorf("storage URL %s: %w", redact(rawURL), err)
	}
	return wrap.Retry(s, wrap.RetryPolicy{}), nil
}

// openDriver opens the driver and returns it with the URL's prefix.
func openDriver(ctx context.Context, rawURL string, env func(string) string) (storage.Storage, string, error) {
	if strings.TrimSpace(rawURL) == "" {
		return nil, "", badURL{"storage URL is empty"}
	}
	if isPath(rawURL) {
		s, err := local.New(rawURL)
		return s, "", err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", badURL{fmt.Sprintf("malformed storage URL: %v", err)}
	}
	bad := func(format string, args ...any) error {
		return badURL{fmt.Sprintf("storage URL %s: %s", redact(rawURL), fmt.Sprintf(format, args...))}
	}
	if u.User != nil {
		return nil, "", bad("credentials do not go in the URL; set them in the environment")
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, "", bad("file URLs name a local directory: file:///ABS/PATH, not host %q", u.Host)
		}
		if err := onlyParams(u); err != nil {
			return nil, "", bad("%v", err)
		}
		path := u.Path
		if runtime.GOOS == "windows" && len(path) >= 3 && path[0] == '/' && path[2] == ':' {
			path = path[1:] // file:///C:/dir
		}
		if path == "" {
			return nil, "", bad("no directory: use file:///ABS/PATH")
		}
		s, err := local.New(filepath.FromSlash(path))
		return s, "", err
	case "azblob":
		s, err := openAzure(ctx, u, env)
		if err != nil {
			var ue urlError
			if errors.As(err, &ue) {
				return nil, "", bad("%v", err)
			}
			return nil, "", err
		}
		return s, strings.Trim(u.Path, "/"), nil
	case "s3":
		s, err := openS3(ctx, u, env)
		if err != nil {
			var ue urlError
			if errors.As(err, &ue) {
				return nil, "", bad("%v", err)
			}
			return nil, "", err
		}
		return s, strings.Trim(u.Path, "/"), nil
	}
	return nil, "", bad("unknown scheme %q; known: %s, or a plain directory path", u.Scheme, strings.Join(Schemes, ", "))
}

// badURL is the error Open returns for a mistake in the URL; it is ErrURL.
type badURL struct{ msg string }

func (e badURL) Error() string        { return e.msg }
func (e badURL) Is(target error) bool { return target == ErrURL }

// urlError is a mistake in the URL itself, found by a driver's opener.
type urlError struct{ msg string }

func (e urlError) Error() string { return e.msg }

func urlErrorf(format string, args ...any) error { return urlError{fmt.Sprintf(format, args...)} }

var windowsDrive = regexp.MustCompile(`^[A-Za-z]:[\\/]`)

// isPath reports whether s is a plain path rather than a URL.
func isPath(s string) bool {
	return !strings.Contains(s, "://") || windowsDrive.MatchString(s)
}

// onlyParams fails if the URL has query parameters other than allowed.
func onlyParams(u *url.URL, allowed ...string) error {
	for k := range u.Query() {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return urlErrorf("unknown parameter %q (none are known)", k)
			}
			return urlErrorf("unknown parameter %q (known: %s)", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

var containerName = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$`)

func openAzure(ctx context.Context, u *url.URL, env func(string) string) (storage.Storage, error) {
	if err := onlyParams(u, "endpoint"); err != nil {
		return nil, err
	}
	if u.Host == "" {
		return nil, urlErrorf("no container: use azblob://CONTAINER[/PREFIX]")
	}
	if !containerName.MatchString(u.Host) {
		return nil, urlErrorf("%q is not a valid container name (3 to 63 lowercase letters, digits and single hyphens)", u.Host)
	}
	endpoint := u.Query().Get("endpoint")
	if err := checkEndpoint(endpoint); err != nil {
		return nil, err
	}
	c := azure.Config{
		Container:        u.Host,
		ServiceURL:       endpoint,
		AccountName:      env("AZURE_STORAGE_ACCOUNT"),
		AccountKey:       env("AZURE_STORAGE_KEY"),
		ConnectionString: env("AZURE_STORAGE_CONNECTION_STRING"),
		SASToken:         env("AZURE_STORAGE_SAS_TOKEN"),
	}
	if c.ConnectionString != "" && endpoint != "" {
		return nil, urlErrorf("?endpoint= and AZURE_STORAGE_CONNECTION_STRING both name the service; use one")
	}
	return azure.New(ctx, c)
}

func openS3(ctx context.Context, u *url.URL, env func(string) string) (storage.Storage, error) {
	if err := onlyParams(u, "endpoint", "region", "path_style"); err != nil {
		return nil, err
	}
	if u.Host == "" {
		return nil, urlErrorf("no bucket: use s3://BUCKET[/PREFIX]")
	}
	q := u.Query()
	cc := s3.ClientConfig{
		Endpoint:        q.Get("endpoint"),
		Region:          q.Get("region"),
		AccessKeyID:     env("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: env("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    env("AWS_SESSION_TOKEN"),
		Profile:         env("AWS_PROFILE"),
	}
	if err := checkEndpoint(cc.Endpoint); err != nil {
		return nil, err
	}
	if cc.Region == "" {
		cc.Region = env("AWS_REGION")
	}
	if cc.Region == "" {
		cc.Region = env("AWS_DEFAULT_REGION")
	}
	if ps := q.Get("path_style"); ps != "" {
		v, err := strconv.ParseBool(ps)
		if err != nil {
			return nil, urlErrorf("path_style=%q is not true or false", ps)
		}
		cc.PathStyle = v
	}
	client, err := s3.NewClient(ctx, cc)
	if err != nil {
		return nil, err
	}
	return s3.New(ctx, s3.Config{Client: client, Bucket: u.Host, Endpoint: cc.Endpoint})
}

// checkEndpoint accepts an empty endpoint or an http(s) URL that carries
// no credentials (no user information, no query: a SAS token belongs in
// the environment), so that a storage URL can be shown and recorded.
func checkEndpoint(endpoint string) error {
	if endpoint == "" {
		return nil
	}
	eu, err := url.Parse(endpoint)
	if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
		return urlErrorf("endpoint %q is not an http(s) URL", redact(endpoint))
	}
	if eu.User != nil || eu.RawQuery != "" || eu.Fragment != "" {
		return urlErrorf("endpoint %q carries credentials or parameters; give only scheme, host and path, and credentials in the environment", redact(endpoint))
	}
	return nil
}

// redact hides what may be secrets in a URL: user information (credentials
// do not belong there, but may be pasted there) and the values of unknown
// query parameters (a SAS token, say).
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	changed := false
	if u.User != nil {
		u.User, changed = url.User("REDACTED"), true
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "region", "path_style":
		case "endpoint":
			if e := q.Get(k); redact(e) != e {
				q.Set(k, redact(e))
				changed = true
			}
		default:
			q.Set(k, "REDACTED")
			changed = true
		}
	}
	if !changed {
		return rawURL
	}
	u.RawQuery = q.Encode()
	return u.String()
}
