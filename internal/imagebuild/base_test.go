package imagebuild_test

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reevehq/reeve/internal/imagebuild"
)

// TestBuildStaticBase builds on the default base, Reeve's static base made
// without a registry: the image has the users, /tmp, the CA certificates
// and the time zone database a Go program expects, owned so that the
// program cannot write over the system's files; and a --file directory is
// copied whole.
func TestBuildStaticBase(t *testing.T) {
	t.Parallel()
	host, _ := newRegistry(t)
	conf := filepath.Join(t.TempDir(), "conf")
	for name, data := range map[string]string{"a.yaml": "a: 1\n", "sub/b.yaml": "b: 2\n"} {
		p := filepath.Join(conf, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res, err := imagebuild.Build(t.Context(), imagebuild.Options{
		Dir:   etlDir,
		Repo:  host + "/flows",
		Files: []imagebuild.File{{Src: conf, Dst: "/etc/etl"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	img := pull(t, res.Ref)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 3 {
		t.Errorf("%d layers, want 3: the static base, the program, the specs and files", len(layers))
	}
	files := extract(t, img)
	if f := files["etc/passwd"]; !strings.Contains(string(f.data), "nonroot:x:65532:65532:") || f.hdr.Uid != 0 {
		t.Errorf("etc/passwd = %q (uid %d), want the nonroot user 65532, owned by root", f.data, f.hdr.Uid)
	}
	hostCerts, err := os.ReadFile(imagebuild.CACertsPath)
	if err == nil && !bytes.Equal(files[strings.TrimPrefix(imagebuild.CACertsPath, "/")].data, hostCerts) {
		t.Errorf("%s in the image differs from this machine's", imagebuild.CACertsPath)
	}
	if f := files[strings.TrimPrefix(imagebuild.ZoneinfoPath, "/")]; len(f.data) < 100_000 {
		t.Errorf("%s holds %d bytes, want Go's time zone database", imagebuild.ZoneinfoPath, len(f.data))
	}
	for name, want := range map[string]string{"etc/etl/a.yaml": "a: 1\n", "etc/etl/sub/b.yaml": "b: 2\n"} {
		if f, ok := files[name]; !ok || string(f.data) != want || f.hdr.Mode != 0o444 || f.hdr.Uid != 0 {
			t.Errorf("%s: found %v, %q, mode %o, uid %d; want %q, root's, read-only for all", name, ok, f.data, f.hdr.Mode, f.hdr.Uid, want)
		}
	}
	dirs := dirHeaders(t, img)
	for _, tc := range []struct {
		dir  string
		uid  int
		mode int64
	}{
		{"tmp/", 0, 0o1777},
		{"etc/", 0, 0o755},
		{"etc/etl/", 0, 0o755},
		{"home/nonroot/", imagebuild.UID, 0o700},
		{"opt/reeve/", imagebuild.UID, 0o755},
		{"opt/reeve/bin/", 0, 0o755},
		{"opt/reeve/flows/", 0, 0o755},
	} {
		hs := dirs[tc.dir]
		if len(hs) == 0 {
			t.Errorf("no directory %s in the image", tc.dir)
			continue
		}
		// The last layer's entry wins.
		if h := hs[len(hs)-1]; h.Uid != tc.uid || h.Mode&0o7777 != tc.mode {
			t.Errorf("%s: uid %d mode %o, want uid %d mode %o", tc.dir, h.Uid, h.Mode&0o7777, tc.uid, tc.mode)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cf.Config.Env, "ZONEINFO="+imagebuild.ZoneinfoPath) {
		t.Errorf("image env %v lacks ZONEINFO=%s", cf.Config.Env, imagebuild.ZoneinfoPath)
	}

	// The same inputs give the same digest: the base is made the same way.
	again, err := imagebuild.Build(t.Context(), imagebuild.Options{
		Dir:   etlDir,
		Repo:  host + "/flows",
		Files: []imagebuild.File{{Src: conf, Dst: "/etc/etl"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != res.Digest {
		t.Errorf("a second build on the static base gave digest %s, want %s", again.Digest, res.Digest)
	}
}

// TestBuildFileSymlinkRefused: a --file directory holding a symbolic link
// is refused, naming it: what it points at would not be in the image.
func TestBuildFileSymlinkRefused(t *testing.T) {
	t.Parallel()
	host, up := newRegistry(t)
	conf := t.TempDir()
	if err := os.Symlink("/etc/hostname", filepath.Join(conf, "link")); err != nil {
		t.Fatal(err)
	}
	_, err := imagebuild.Build(t.Context(), imagebuild.Options{
		Dir: etlDir, Repo: host + "/flows", BaseImage: imagebuild.ScratchBase,
		Files: []imagebuild.File{{Src: conf, Dst: "/etc/etl"}},
	})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(conf, "link")) || !strings.Contains(err.Error(), "symbolic links") {
		t.Fatalf("err = %v, want one naming %s as a symbolic link", err, filepath.Join(conf, "link"))
	}
	if n, _ := up.take(); n != 0 {
		t.Errorf("a refused build made %d uploads, want none", n)
	}
}

// dirHeaders returns the directory entries of every layer of img by path,
// in layer order.
func dirHeaders(t *testing.T, img v1.Image) map[string][]*tar.Header {
	t.Helper()
	out := map[string][]*tar.Header{}
	eachEntry(t, img, func(h *tar.Header, _ io.Reader) {
		if h.Typeflag == tar.TypeDir {
			out[h.Name] = append(out[h.Name], h)
		}
	})
	return out
}
