// Package result holds the stores where tasks checkpoint and cache their
// results, and the serializers that turn results into bytes and back.
//
// A store is addressed by URL and sits on [gocloud.dev/blob]:
//
//   - a plain directory such as "./results" or "/var/lib/reeve/results",
//     turned into a file:// URL with an absolute path;
//   - file:///abs/dir, created if missing;
//   - mem://name, kept in process memory and shared by every Open of the same
//     URL, for tests and local runs;
//   - s3://, gs://, azblob:// and any other scheme whose gocloud driver the
//     program links.
//
// Only the file and mem drivers are linked by this package. The cloud drivers
// pull in large SDKs, so a flow program opts into one by importing it in its
// main package, for example:
//
//	import _ "gocloud.dev/blob/s3blob"
//
// Opening a URL whose driver is missing fails with an error naming that
// import.
//
// # File stores
//
// File stores write each result to a temporary file next to its final path
// and rename it into place, so a reader sees the old bytes or the new ones,
// never a torn write, and the rename never crosses file systems. They write
// no ".attrs" metadata sidecar files unless the URL asks for them with
// "?metadata=" (empty value); other fileblob query parameters
// (dir_file_mode, no_tmp_dir, ...) are passed through.
package result

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/memblob" // registers mem://
	"gocloud.dev/gcerrors"
)

// ErrNotFound is returned, wrapped, by [Store.Get] when a key holds no result.
var ErrNotFound = errors.New("result not found")

// Store is an opened result store. It is safe for concurrent use.
type Store struct {
	url    string
	bucket *blob.Bucket
}

// cloudDrivers maps the schemes of gocloud's cloud blob drivers to the import
// that links each one.
var cloudDrivers = map[string]string{
	"s3":     "gocloud.dev/blob/s3blob",
	"gs":     "gocloud.dev/blob/gcsblob",
	"azblob": "gocloud.dev/blob/azureblob",
}

// Open opens the store at rawURL, or returns the store already opened for the
// same canonical URL in this process. See the package documentation for the
// URLs it accepts; [Store.URL] reports the canonical form.
//
// Opening a store does no I/O for mem://, creates the directory for file
// stores, and for cloud stores only sets up a client (credentials are
// usually resolved on first use).
func Open(ctx context.Context, rawURL string) (*Store, error) {
	canonical, u, err := canonicalURL(rawURL)
	if err != nil {
		return nil, err
	}
	return stores.open(ctx, canonical, u)
}

// URL returns the store's canonical URL: plain paths and relative file URLs
// are turned into file:// URLs with an absolute path; other URLs are returned
// as given.
func (s *Store) URL() string { return s.url }

// String returns the store's canonical URL.
func (s *Store) String() string { return s.url }

// Put stores data under key, replacing any previous result.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := CheckKey(key); err != nil {
		return fmt.Errorf("write result to store %q: %w", s.url, err)
	}
	if err := s.bucket.WriteAll(ctx, key, data, nil); err != nil {
		return fmt.Errorf("write result %q to store %q: %w", key, s.url, err)
	}
	return nil
}

// Get returns the bytes stored under key. A missing key is an error wrapping
// [ErrNotFound].
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := CheckKey(key); err != nil {
		return nil, fmt.Errorf("read result from store %q: %w", s.url, err)
	}
	data, err := s.bucket.ReadAll(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, fmt.Errorf("read result %q from store %q: %w", key, s.url, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read result %q from store %q: %w", key, s.url, err)
	}
	return data, nil
}

// ModTime returns when the result under key was last written. ok is false,
// with a nil error, when the key holds no result.
func (s *Store) ModTime(ctx context.Context, key string) (t time.Time, ok bool, err error) {
	if err := CheckKey(key); err != nil {
		return time.Time{}, false, fmt.Errorf("stat result in store %q: %w", s.url, err)
	}
	attrs, err := s.bucket.Attributes(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("stat result %q in store %q: %w", key, s.url, err)
	}
	return attrs.ModTime, true, nil
}

// registry memoizes opened stores by canonical URL for the whole process.
type registry struct {
	mu     sync.Mutex
	byURL  map[string]*openCall
	opener func(ctx context.Context, canonical string, u *url.URL) (*blob.Bucket, error)
}

// openCall is one store being opened, or opened. done is closed when s or err
// is set.
type openCall struct {
	done chan struct{}
	s    *Store
	err  error
}

var stores = &registry{byURL: map[string]*openCall{}, opener: openBucket}

// open returns the memoized store for canonical, opening it once. Callers that
// arrive while it is being opened wait for that open. A failed open is not
// memoized, so a later call tries again.
func (r *registry) open(ctx context.Context, canonical string, u *url.URL) (*Store, error) {
	r.mu.Lock()
	c, ok := r.byURL[canonical]
	if !ok {
		c = &openCall{done: make(chan struct{})}
		r.byURL[canonical] = c
		r.mu.Unlock()

		b, err := r.opener(ctx, canonical, u)
		if err != nil {
			c.err = fmt.Errorf("open result store %q: %w", canonical, err)
			r.mu.Lock()
			delete(r.byURL, canonical)
			r.mu.Unlock()
		} else {
			c.s = &Store{url: canonical, bucket: b}
		}
		close(c.done)
		return c.s, c.err
	}
	r.mu.Unlock()

	select {
	case <-c.done:
		return c.s, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("open result store %q: %w", canonical, ctx.Err())
	}
}

// fileDefaults are the options of file stores unless the URL overrides them.
var fileDefaults = fileblob.Options{
	CreateDir: true,
	// A temporary file in os.TempDir cannot be renamed into a directory on
	// another file system (a tmpfs /tmp, a mounted volume); next to the
	// final path it always can.
	NoTempDir: true,
	Metadata:  fileblob.MetadataDontWrite,
}

func openBucket(ctx context.Context, canonical string, u *url.URL) (*blob.Bucket, error) {
	if u.Scheme == fileblob.Scheme {
		opener := &fileblob.URLOpener{Options: fileDefaults}
		return opener.OpenBucketURL(ctx, u)
	}
	return blob.DefaultURLMux().OpenBucket(ctx, canonical)
}

// canonicalURL checks rawURL and returns its canonical form and parse.
func canonicalURL(rawURL string) (string, *url.URL, error) {
	if strings.TrimSpace(rawURL) == "" {
		return "", nil, errors.New("result store URL is empty: use a directory such as ./results, or a URL such as file:///abs/dir, mem://name, s3://bucket, gs://bucket or azblob://container")
	}
	if !strings.Contains(rawURL, "://") {
		// A URL that lost its slashes ("s3:bucket") would otherwise become a
		// directory named "s3:bucket". One-letter schemes are Windows drives.
		if u, err := url.Parse(rawURL); err == nil && len(u.Scheme) > 1 {
			return "", nil, fmt.Errorf("result store %q: looks like a %s URL without \"//\"; write %s://... for a URL, or ./%s for a directory", rawURL, u.Scheme, u.Scheme, rawURL)
		}
		return fileURL(rawURL, rawURL, "")
	}

	u, err := url.Parse(rawURL)
	if err != nil {
		return "", nil, fmt.Errorf("result store %q: %w", rawURL, err)
	}
	if u.Scheme == fileblob.Scheme {
		var path string
		switch u.Host {
		case "", "localhost":
			path = filepath.FromSlash(u.Path)
		case ".": // file://./rel, fileblob's spelling of a relative path
			path = filepath.FromSlash(strings.TrimPrefix(u.Path, "/"))
		default:
			// fileblob ignores any other host, so "file://results" would
			// silently open the working directory.
			return "", nil, fmt.Errorf("result store %q: a file URL has no host (got %q); write file:///abs/dir for an absolute path or a plain path such as ./%s%s", rawURL, u.Host, u.Host, u.Path)
		}
		if path == "" {
			return "", nil, fmt.Errorf("result store %q: the file URL has no path; write file:///abs/dir", rawURL)
		}
		return fileURL(rawURL, path, u.RawQuery)
	}

	if !blob.DefaultURLMux().ValidBucketScheme(u.Scheme) {
		return "", nil, schemeError(rawURL, u.Scheme)
	}
	return rawURL, u, nil
}

// fileURL returns the file:// URL of the directory at path, made absolute.
func fileURL(rawURL, path, rawQuery string) (string, *url.URL, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, fmt.Errorf("result store %q: %w", rawURL, err)
	}
	slashed := filepath.ToSlash(abs)
	if !strings.HasPrefix(slashed, "/") { // Windows: C:/dir -> /C:/dir
		slashed = "/" + slashed
	}
	u := &url.URL{Scheme: fileblob.Scheme, Path: slashed, RawQuery: rawQuery}
	return u.String(), u, nil
}

// schemeError explains that no driver is linked for scheme, and what to do.
func schemeError(rawURL, scheme string) error {
	if scheme == "reeve" { // internal/result/apiblob, registered by the runner
		return fmt.Errorf("result store %q: the server's result store works in server runs only, where the runner connects it to the server; locally, give the flow a result store such as ./results or mem://name", rawURL)
	}
	if imp, ok := cloudDrivers[scheme]; ok {
		return fmt.Errorf("result store %q: the %s driver is not linked into this program; add `import _ %q` to your main package", rawURL, scheme, imp)
	}
	linked := blob.DefaultURLMux().BucketSchemes()
	slices.Sort(linked)
	var known []string
	for s := range cloudDrivers {
		known = append(known, s+" (import _ \""+cloudDrivers[s]+"\")")
	}
	slices.Sort(known)
	return fmt.Errorf("result store %q: no driver for scheme %q; this program links %s; a plain directory path also works; cloud drivers: %s",
		rawURL, scheme, strings.Join(linked, ", "), strings.Join(known, ", "))
}
