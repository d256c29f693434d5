package result

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"
)

// fileStoreURL returns a file:// URL for a directory that does not exist yet.
func fileStoreURL(t *testing.T) (dir, storeURL string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "results", "nested")
	return dir, (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
}

// memStoreURL returns a mem:// URL no other test uses.
func memStoreURL(t *testing.T, suffix string) string {
	t.Helper()
	return "mem://" + strings.ReplaceAll(t.Name(), "/", "-") + suffix
}

func mustOpen(t *testing.T, rawURL string) *Store {
	t.Helper()
	s, err := Open(t.Context(), rawURL)
	if err != nil {
		t.Fatalf("Open(%q): %v", rawURL, err)
	}
	return s
}

func TestFileStoreRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir, storeURL := fileStoreURL(t)

	s := mustOpen(t, storeURL)
	if got := s.URL(); got != storeURL {
		t.Errorf("URL() = %q, want %q", got, storeURL)
	}
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		t.Fatalf("Open did not create the store directory %s: %v", dir, err)
	}

	const key = "etl/0195f3a2-7c1e/extract.json"
	before := time.Now()
	if err := s.Put(ctx, key, []byte(`{"rows":3}`)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := s.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if string(got) != `{"rows":3}` {
		t.Errorf("Get = %q, want %q", got, `{"rows":3}`)
	}

	mod, ok, err := s.ModTime(ctx, key)
	if err != nil || !ok {
		t.Fatalf("ModTime = %v, %v, %v; want a time, true, nil", mod, ok, err)
	}
	// File systems may round modification times; allow a little slack.
	if mod.Before(before.Add(-2*time.Second)) || mod.After(time.Now().Add(2*time.Second)) {
		t.Errorf("ModTime = %v, want between %v and now", mod, before)
	}

	// The result is a plain file at the key's path, readable without Reeve.
	onDisk, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
	if err != nil {
		t.Fatalf("result not at its key's path: %v", err)
	}
	if string(onDisk) != `{"rows":3}` {
		t.Errorf("file content = %q", onDisk)
	}

	// Overwriting replaces the result.
	if err := s.Put(ctx, key, []byte(`{"rows":4}`)); err != nil {
		t.Fatalf("second Put: %v", err)
	}
	if got, err := s.Get(ctx, key); err != nil || string(got) != `{"rows":4}` {
		t.Errorf("Get after overwrite = %q, %v", got, err)
	}

	// Empty results are results.
	if err := s.Put(ctx, "empty", nil); err != nil {
		t.Fatalf("Put empty: %v", err)
	}
	if got, err := s.Get(ctx, "empty"); err != nil || len(got) != 0 {
		t.Errorf("Get empty = %q, %v", got, err)
	}

	// Nothing but the results: no .attrs sidecars, no stranded temp files.
	var files []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"empty", key}
	if fmt.Sprint(files) != fmt.Sprint(want) {
		t.Errorf("files in store = %q, want %q", files, want)
	}
}

func TestOpenPlainPathAndFileURLShareStore(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "plain")

	byPath := mustOpen(t, dir)
	wantURL := (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
	if byPath.URL() != wantURL {
		t.Errorf("URL() = %q, want %q", byPath.URL(), wantURL)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("plain path not created: %v", err)
	}
	if byURL := mustOpen(t, wantURL); byURL != byPath {
		t.Errorf("Open(%q) and Open(%q) returned different stores", dir, wantURL)
	}
	if other := mustOpen(t, dir+"/"); other != byPath {
		t.Errorf("a trailing slash opened a different store: %q vs %q", other.URL(), byPath.URL())
	}
}

func TestCanonicalURL(t *testing.T) {
	t.Parallel()
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	fileURLOf := func(path string) string {
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()
	}
	tests := []struct {
		in, want string
	}{
		{"./results", fileURLOf(filepath.Join(cwd, "results"))},
		{"results", fileURLOf(filepath.Join(cwd, "results"))},
		{"../up/results", fileURLOf(filepath.Join(filepath.Dir(cwd), "up", "results"))},
		{"/tmp/r", "file:///tmp/r"},
		{"/tmp/r/../s/", "file:///tmp/s"},
		{"/tmp/with space", "file:///tmp/with%20space"},
		{"file:///tmp/r", "file:///tmp/r"},
		{"file:///tmp/r/", "file:///tmp/r"},
		{"file://localhost/tmp/r", "file:///tmp/r"},
		{"file://./rel", fileURLOf(filepath.Join(cwd, "rel"))},
		{"file:///tmp/r?metadata=", "file:///tmp/r?metadata="},
		{"mem://", "mem://"},
		{"mem://x", "mem://x"},
		{"mem://x/", "mem://x/"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, u, err := canonicalURL(tt.in)
			if err != nil {
				t.Fatalf("canonicalURL(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("canonicalURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if u == nil {
				t.Errorf("canonicalURL(%q) returned no parsed URL", tt.in)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	regular := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(regular, []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		url  string
		want []string // substrings of the error
	}{
		{"empty", "", []string{"result store URL is empty", "./results", "s3://bucket"}},
		{"blank", "  ", []string{"result store URL is empty"}},
		{"s3", "s3://bucket", []string{
			"result store \"s3://bucket\": the s3 driver is not linked into this program; add `import _ \"gocloud.dev/blob/s3blob\"` to your main package",
		}},
		{"gs", "gs://bucket/prefix", []string{"the gs driver is not linked", "`import _ \"gocloud.dev/blob/gcsblob\"`"}},
		{"azblob", "azblob://container", []string{"the azblob driver is not linked", "`import _ \"gocloud.dev/blob/azureblob\"`"}},
		{"unknown scheme", "ftp://host/dir", []string{`"ftp://host/dir"`, `no driver for scheme "ftp"`, "this program links file, mem", `gocloud.dev/blob/s3blob`}},
		{"scheme without slashes", "s3:bucket", []string{`"s3:bucket"`, `without "//"`, "s3://"}},
		{"file URL with host", "file://results", []string{`a file URL has no host (got "results")`, "file:///abs/dir", "./results"}},
		{"file URL without path", "file://", []string{"the file URL has no path"}},
		{"file is not a directory", regular, []string{"open result store", "is not a directory"}},
		{"bad fileblob parameter", "file:///tmp/x?bogus=1", []string{`invalid query parameter "bogus"`}},
		{"bad mem parameter", "mem://x?bogus=1", []string{`invalid query parameter "bogus"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(t.Context(), tt.url)
			if err == nil {
				t.Fatalf("Open(%q) = %q, want an error", tt.url, s.URL())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open(%q) error\n  %v\nwant it to contain\n  %s", tt.url, err, w)
				}
			}
		})
	}
}

func TestMemStoreSharing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	urlA, urlB := memStoreURL(t, "-a"), memStoreURL(t, "-b")

	a1, a2, b := mustOpen(t, urlA), mustOpen(t, urlA), mustOpen(t, urlB)
	if err := a1.Put(ctx, "k", []byte("from a1")); err != nil {
		t.Fatal(err)
	}
	if got, err := a2.Get(ctx, "k"); err != nil || string(got) != "from a1" {
		t.Errorf("second Open of %s: Get = %q, %v; want the data the first wrote", urlA, got, err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Errorf("%s sees data written to %s: Get err = %v", urlB, urlA, err)
	}
}

func TestOpenConcurrentReturnsOneStore(t *testing.T) {
	t.Parallel()
	u := memStoreURL(t, "")
	const n = 16
	got := make([]*Store, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := Open(t.Context(), u)
			if err != nil {
				t.Error(err)
			}
			got[i] = s
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("Open #%d returned a different store", i)
		}
	}
}

func TestRegistryFailedOpenIsRetried(t *testing.T) {
	t.Parallel()
	calls := 0
	r := &registry{byURL: map[string]*openCall{}, opener: func(ctx context.Context, canonical string, u *url.URL) (*blob.Bucket, error) {
		calls++
		if calls == 1 {
			return nil, errors.New("transient")
		}
		return blob.DefaultURLMux().OpenBucket(ctx, canonical)
	}}
	u, _ := url.Parse("mem://retry")
	if _, err := r.open(t.Context(), "mem://retry", u); err == nil || !strings.Contains(err.Error(), `open result store "mem://retry": transient`) {
		t.Fatalf("first open err = %v, want the transient error with the store URL", err)
	}
	if _, err := r.open(t.Context(), "mem://retry", u); err != nil {
		t.Fatalf("second open: %v (a failed open must not be memoized)", err)
	}
	if calls != 2 {
		t.Errorf("opener called %d times, want 2", calls)
	}
}

func TestRegistryWaiterHonoursContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{})
	r := &registry{byURL: map[string]*openCall{}, opener: func(ctx context.Context, canonical string, u *url.URL) (*blob.Bucket, error) {
		close(started)
		<-release
		return blob.DefaultURLMux().OpenBucket(ctx, canonical)
	}}
	u, _ := url.Parse("mem://slow")
	first := make(chan error, 1)
	go func() {
		_, err := r.open(context.Background(), "mem://slow", u)
		first <- err
	}()
	<-started

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.open(ctx, "mem://slow", u); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting open with a cancelled context: err = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first open: %v", err)
	}
}

func TestMissingKey(t *testing.T) {
	t.Parallel()
	_, fileURL := fileStoreURL(t)
	for _, storeURL := range []string{fileURL, memStoreURL(t, "")} {
		t.Run(strings.SplitN(storeURL, ":", 2)[0], func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := mustOpen(t, storeURL)

			_, err := s.Get(ctx, "flow/run/missing.json")
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
			}
			for _, w := range []string{s.URL(), "flow/run/missing.json", "result not found"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Get missing error %q does not name %q", err, w)
				}
			}

			mod, ok, err := s.ModTime(ctx, "flow/run/missing.json")
			if err != nil || ok || !mod.IsZero() {
				t.Errorf("ModTime missing = %v, %v, %v; want zero, false, nil", mod, ok, err)
			}

			// A "directory" holding results is not itself a result.
			if err := s.Put(ctx, "flow/run/present.json", []byte("1")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "flow/run"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get of a key prefix: err = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	bad := []struct {
		key, reason string
	}{
		{"", "it is empty"},
		{"/abs/x", "it is absolute"},
		{"../x", `".." segment`},
		{"..", `".." segment`},
		{"a/../../x", `".." segment`},
		{"a/..", `".." segment`},
		{"./x", `"." segment`},
		{"a//b", "empty segment"},
		{"a/", "empty segment"},
		{`..\x`, "backslash"},
		{"x.json.attrs", `".attrs"`},
		{"a\x00b", "control character"},
		{"a\nb", "control character"},
		{"\xff", "not valid UTF-8"},
	}
	good := []string{"x", "etl/0195f3a2/extract.json", "a..b/c..", ".hidden/x", "a b/ü.json", "...", "a/.../b"}

	parent := t.TempDir()
	dir := filepath.Join(parent, "store")
	fileStore := mustOpen(t, dir)
	memStore := mustOpen(t, memStoreURL(t, ""))

	for _, s := range []*Store{fileStore, memStore} {
		for _, tt := range bad {
			t.Run("bad/"+s.URL()[:4]+"/"+tt.key, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				check := func(op string, err error) {
					t.Helper()
					if !errors.Is(err, ErrInvalidKey) {
						t.Errorf("%s(%q): err = %v, want ErrInvalidKey", op, tt.key, err)
						return
					}
					for _, w := range []string{tt.reason, s.URL(), fmt.Sprintf("%q", tt.key)} {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("%s(%q) error %q does not contain %q", op, tt.key, err, w)
						}
					}
				}
				check("Put", s.Put(ctx, tt.key, []byte("escape")))
				_, err := s.Get(ctx, tt.key)
				check("Get", err)
				_, _, err = s.ModTime(ctx, tt.key)
				check("ModTime", err)
			})
		}
		for _, key := range good {
			t.Run("good/"+s.URL()[:4]+"/"+key, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				if err := s.Put(ctx, key, []byte(key)); err != nil {
					t.Fatalf("Put(%q): %v", key, err)
				}
				if got, err := s.Get(ctx, key); err != nil || string(got) != key {
					t.Errorf("Get(%q) = %q, %v", key, got, err)
				}
			})
		}
	}

	t.Cleanup(func() {
		// No key, good or bad, wrote outside the store's directory.
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "store" {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("files outside the store directory: %q", names)
		}
	})
}

// TestConcurrentPutsAreAtomic has writers replace one key while readers read
// it: every read sees a whole payload, never a mix or a torn write.
func TestConcurrentPutsAreAtomic(t *testing.T) {
	t.Parallel()
	_, fileURL := fileStoreURL(t)
	for _, storeURL := range []string{fileURL, memStoreURL(t, "")} {
		t.Run(strings.SplitN(storeURL, ":", 2)[0], func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := mustOpen(t, storeURL)
			const (
				key     = "flow/run/big.bin"
				writers = 8
				rounds  = 10
				size    = 256 << 10
			)
			var wg sync.WaitGroup
			for w := range writers {
				payload := bytes.Repeat([]byte{byte('a' + w)}, size)
				wg.Go(func() {
					for range rounds {
						if err := s.Put(ctx, key, payload); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			done := make(chan struct{})
			var readers sync.WaitGroup
			for range 4 {
				readers.Go(func() {
					for {
						select {
						case <-done:
							return
						default:
						}
						data, err := s.Get(ctx, key)
						if errors.Is(err, ErrNotFound) {
							continue
						}
						if err != nil {
							t.Error(err)
							return
						}
						if len(data) != size || bytes.Count(data, data[:1]) != size {
							t.Errorf("read a torn result: %d bytes, first %q", len(data), data[:min(1, len(data))])
							return
						}
					}
				})
			}
			wg.Wait()
			close(done)
			readers.Wait()
		})
	}
}
