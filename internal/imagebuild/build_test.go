package imagebuild_test

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reevehq/reeve/internal/imagebuild"
)

// etlDir is the example program the tests build.
var etlDir = filepath.Join("..", "..", "examples", "etl")

// uploads counts the blob upload requests a registry serves (uploads and
// cross-repository mounts) and records the digests of the blobs uploaded.
type uploads struct {
	mu       sync.Mutex
	requests int
	digests  map[string]bool
}

func (u *uploads) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/") && strings.Contains(r.URL.Path, "/blobs/uploads/") &&
			(r.Method == http.MethodPost || r.Method == http.MethodPatch || r.Method == http.MethodPut) {
			u.mu.Lock()
			u.requests++
			if d := r.URL.Query().Get("digest"); d != "" && r.Method == http.MethodPut {
				u.digests[d] = true // an upload completed
			}
			u.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// take returns what was counted since the last call, and resets it.
func (u *uploads) take() (int, map[string]bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n, d := u.requests, u.digests
	u.requests, u.digests = 0, map[string]bool{}
	return n, d
}

// newRegistry starts an in-memory OCI registry on loopback over real HTTP.
func newRegistry(t *testing.T) (host string, u *uploads) {
	t.Helper()
	u = &uploads{digests: map[string]bool{}}
	srv := httptest.NewServer(u.wrap(registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), u
}

func TestBuildEtl(t *testing.T) {
	t.Parallel()
	host, up := newRegistry(t)
	opts := imagebuild.Options{
		Dir:      etlDir,
		Repo:     host + "/flows/etl",
		Env:      []string{"ETL_MODE=test"},
		Source:   "https://example.com/reeve",
		Revision: "abc123",
	}
	first, err := imagebuild.Build(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := up.take(); n == 0 {
		t.Errorf("first push: no blob upload requests counted; the counter is broken")
	}
	if !strings.HasPrefix(first.Ref, host+"/flows/etl@sha256:") || first.Ref != host+"/flows/etl@"+first.Digest {
		t.Errorf("Ref = %q, want %s/flows/etl@%s", first.Ref, host, first.Digest)
	}
	if want := host + "/flows/etl:" + strings.TrimPrefix(first.Digest, "sha256:")[:12]; first.Tag != want {
		t.Errorf("Tag = %q, want the content hash %q", first.Tag, want)
	}
	if len(first.Flows) != 1 || first.Flows[0].Name != "etl" || !strings.HasPrefix(first.Flows[0].Hash, "sha256:") {
		t.Fatalf("Flows = %+v, want the one flow etl with its spec hash", first.Flows)
	}
	t.Logf("image %s: %d bytes compressed", first.Ref, first.Size)

	// What the registry holds is what was built.
	img := pull(t, first.Ref)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if got := strings.Join(c.Entrypoint, " "); got != "/opt/reeve/bin/etl" {
		t.Errorf("Entrypoint = %q, want /opt/reeve/bin/etl", got)
	}
	if c.User != "65532:65532" || c.WorkingDir != "/opt/reeve" {
		t.Errorf("User, WorkingDir = %q, %q; want 65532:65532, /opt/reeve", c.User, c.WorkingDir)
	}
	if !contains(c.Env, "ETL_MODE=test") {
		t.Errorf("Env = %q, want ETL_MODE=test in it", c.Env)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform = %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if c.Labels[imagebuild.LabelSource] != opts.Source || c.Labels[imagebuild.LabelRevision] != opts.Revision {
		t.Errorf("labels = %v, want source %s and revision %s", c.Labels, opts.Source, opts.Revision)
	}
	var flows map[string]string
	if err := json.Unmarshal([]byte(c.Labels[imagebuild.LabelFlows]), &flows); err != nil {
		t.Fatalf("label %s = %q: %v", imagebuild.LabelFlows, c.Labels[imagebuild.LabelFlows], err)
	}
	if flows["etl"] != first.Flows[0].Hash || len(flows) != 1 {
		t.Errorf("label %s = %v, want etl → %s", imagebuild.LabelFlows, flows, first.Flows[0].Hash)
	}

	files := extract(t, img)
	bin, ok := files["opt/reeve/bin/etl"]
	if !ok {
		t.Fatalf("no opt/reeve/bin/etl in the image; it has %v", keys(files))
	}
	if bin.hdr.Mode != 0o555 || bin.hdr.Uid != 0 || bin.hdr.Gid != 0 || bin.hdr.ModTime.Unix() != 0 {
		t.Errorf("opt/reeve/bin/etl: mode %o uid %d gid %d mtime %v; want 555, 0, 0 (the program cannot change itself), the epoch",
			bin.hdr.Mode, bin.hdr.Uid, bin.hdr.Gid, bin.hdr.ModTime)
	}
	specFile, ok := files["opt/reeve/flows/etl.json"]
	if !ok {
		t.Fatalf("no opt/reeve/flows/etl.json in the image; it has %v", keys(files))
	}
	if !strings.Contains(string(specFile.data), `"etl.transform"`) {
		t.Errorf("opt/reeve/flows/etl.json does not name the task etl.transform:\n%s", specFile.data)
	}

	// The binary in the image runs here when the platforms match.
	if runtime.GOOS == "linux" {
		exe := filepath.Join(t.TempDir(), "etl")
		if err := os.WriteFile(exe, bin.data, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(t.Context(), exe, "list").CombinedOutput()
		if err != nil {
			t.Fatalf("etl list: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "etl") || !strings.Contains(string(out), first.Flows[0].Hash) {
			t.Errorf("etl list printed no etl flow with hash %s:\n%s", first.Flows[0].Hash, out)
		}
	}

	// The same inputs give the same digest, and pushing it again uploads nothing.
	second, err := imagebuild.Build(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if second.Digest != first.Digest {
		t.Errorf("second build: digest %s, want the first's %s: the build is not reproducible", second.Digest, first.Digest)
	}
	if n, d := up.take(); n != 0 {
		t.Errorf("pushing the unchanged image made %d blob upload requests (%v), want none", n, keys(d))
	}

	// Another env variable: another digest (only the config changed), no layer uploaded.
	opts.Env = append(opts.Env, "ETL_EXTRA=1")
	third, err := imagebuild.Build(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if third.Digest == first.Digest {
		t.Errorf("a changed --env gave the same digest %s", third.Digest)
	}
	_, uploaded := up.take()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if uploaded[d.String()] {
			t.Errorf("a changed --env uploaded the unchanged layer %s again", d)
		}
	}
	if len(uploaded) != 1 {
		t.Errorf("a changed --env uploaded %d blobs (%v), want only the config", len(uploaded), keys(uploaded))
	}
}

func TestBuildExtraFileAndOtherPlatform(t *testing.T) {
	t.Parallel()
	host, _ := newRegistry(t)
	other := "linux/arm64"
	if runtime.GOARCH == "arm64" {
		other = "linux/amd64"
	}
	extra := filepath.Join(t.TempDir(), "extra.txt")
	if err := os.WriteFile(extra, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := imagebuild.Build(t.Context(), imagebuild.Options{
		Dir:      etlDir,
		Repo:     host + "/flows",
		Platform: other,
		Files:    []imagebuild.File{{Src: extra, Dst: "/etc/etl/extra.txt"}},
		Tag:      "v1",
		// This machine may run other platforms' images in Docker or not.
		HealthCheck: imagebuild.HealthCheckSkip,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Tag != host+"/flows:v1" || res.Platform != other {
		t.Errorf("Tag, Platform = %s, %s; want %s/flows:v1, %s", res.Tag, res.Platform, host, other)
	}
	img := pull(t, host+"/flows:v1")
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Platform().String() != other {
		t.Errorf("image platform %s, want %s", cf.Platform(), other)
	}
	files := extract(t, img)
	f, ok := files["etc/etl/extra.txt"]
	if !ok || string(f.data) != "hello\n" || f.hdr.Mode&0o444 != 0o444 {
		t.Errorf("etc/etl/extra.txt: found %v, %q, mode %o; want hello, readable by all", ok, f.data, f.hdr.Mode)
	}
	if _, ok := files["opt/reeve/flows/etl.json"]; !ok {
		t.Errorf("no opt/reeve/flows/etl.json in the %s image (saved by a host binary)", other)
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	notMain := filepath.Join("..", "spec")
	for _, tc := range []struct {
		name string
		opts imagebuild.Options
		want string
	}{
		{"no dir", imagebuild.Options{Repo: "localhost:5000/x"}, "Dir is empty"},
		{"no repo", imagebuild.Options{Dir: etlDir}, "Repo is empty"},
		{"bad platform", imagebuild.Options{Dir: etlDir, Repo: "localhost:5000/x", Platform: "windows/amd64"}, "give one linux platform"},
		{"bad platform in a list", imagebuild.Options{Dir: etlDir, Repo: "localhost:5000/x", Platform: "linux/amd64,windows/arm64"}, "windows/arm64: give one linux platform"},
		{"empty platform in a list", imagebuild.Options{Dir: etlDir, Repo: "localhost:5000/x", Platform: "linux/amd64,"}, "an empty platform in the list"},
		{"duplicate platform", imagebuild.Options{Dir: etlDir, Repo: "localhost:5000/x", Platform: "linux/amd64,linux/arm64, linux/amd64"}, "linux/amd64 is given twice"},
		{"file over the specs", imagebuild.Options{Dir: etlDir, Repo: "localhost:5000/x", Files: []imagebuild.File{{Src: "x", Dst: "/opt/reeve/flows/etl.json"}}}, "put the file elsewhere"},
		{"bad env", imagebuild.Options{Dir: etlDir, Repo: "localhost:5000/x", Env: []string{"NOVALUE"}}, "not NAME=VALUE"},
		{"bad health check mode", imagebuild.Options{Dir: etlDir, Repo: "localhost:5000/x", HealthCheck: "maybe"}, "HealthCheck \"maybe\": use auto, docker, binary or skip"},
		{"bad run platform", imagebuild.Options{Dir: etlDir, Repo: "localhost:5000/x", RunPlatform: "arm64"}, "RunPlatform \"arm64\": give one linux platform"},
		{"not main", imagebuild.Options{Dir: notMain, Repo: "localhost:5000/x"}, "is not a main package"},
		{"no package", imagebuild.Options{Dir: t.TempDir(), Repo: "localhost:5000/x"}, "no Go package there"},
		{"unreachable registry", imagebuild.Options{Dir: etlDir, Repo: "127.0.0.1:1/x"}, "check that the registry 127.0.0.1:1 is reachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := imagebuild.Build(t.Context(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func pull(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}

type file struct {
	hdr  *tar.Header
	data []byte
}

// extract returns the regular files of every layer of img by path.
func extract(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	files := map[string]file{}
	eachEntry(t, img, func(h *tar.Header, tr io.Reader) {
		if h.Typeflag != tar.TypeReg {
			return
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = file{hdr: h, data: data}
	})
	return files
}

// eachEntry calls fn with every entry of every layer of img, in order.
func eachEntry(t *testing.T, img v1.Image, fn func(h *tar.Header, r io.Reader)) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			fn(h, tr)
		}
		rc.Close()
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestBuildBaseImageWithCredentials builds on a base image from a registry
// that wants a password, found in the Docker config file as docker login
// writes it. It sets DOCKER_CONFIG, so it does not run in parallel.
func TestBuildBaseImageWithCredentials(t *testing.T) {
	up := &uploads{digests: map[string]bool{}}
	reg := up.wrap(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "builder" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	auth := &authn.Basic{Username: "builder", Password: "s3cret"}

	// A base image with one file, pushed with the password.
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tool := []byte("#!/bin/sh\necho tool\n")
	if err := tw.WriteHeader(&tar.Header{Name: "usr/bin/tool", Mode: 0o755, Size: int64(len(tool)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(tool)
	tw.Close()
	baseLayer, err := tarball.LayerFromReader(bytes.NewReader(tb.Bytes()), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	base, err := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), baseLayer)
	if err != nil {
		t.Fatal(err)
	}
	base, err = mutate.Config(base, v1.Config{Env: []string{"PATH=/usr/bin", "MODE=base"}})
	if err != nil {
		t.Fatal(err)
	}
	base, err = mutate.ConfigFile(base, func() *v1.ConfigFile {
		cf, _ := base.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", runtime.GOARCH
		return cf
	}())
	if err != nil {
		t.Fatal(err)
	}
	baseRef, err := name.NewTag(host + "/base:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(baseRef, base, remote.WithAuth(auth), remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	baseDigest, _ := baseLayer.Digest()
	up.take()

	// Without credentials: an error that says to log in.
	dockerConfig := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dockerConfig)
	opts := imagebuild.Options{Dir: etlDir, Repo: host + "/flows", BaseImage: baseRef.String(), Env: []string{"MODE=flows"}}
	if _, err := imagebuild.Build(t.Context(), opts); err == nil || !strings.Contains(err.Error(), "logged in") {
		t.Fatalf("Build without credentials: %v, want an error that says to log in", err)
	}

	// With them in the config file.
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, base64.StdEncoding.EncodeToString([]byte("builder:s3cret")))
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := imagebuild.Build(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, uploaded := up.take(); uploaded[baseDigest.String()] {
		t.Errorf("the base image's layer %s was uploaded again (%v)", baseDigest, keys(uploaded))
	}
	r, _ := name.ParseReference(res.Ref)
	img, err := remote.Image(r, remote.WithAuth(auth), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := layers[0].Digest(); len(layers) != 3 || d != baseDigest {
		t.Errorf("image has %d layers, the first %v; want 3, the base's %s first", len(layers), d, baseDigest)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cf.Config.Env, " "); got != "PATH=/usr/bin MODE=flows" {
		t.Errorf("Env = %q, want the base's PATH and MODE replaced by --env", got)
	}
	files := extract(t, img)
	for _, f := range []string{"usr/bin/tool", "opt/reeve/bin/etl", "opt/reeve/flows/etl.json"} {
		if _, ok := files[f]; !ok {
			t.Errorf("no %s in the image; it has %v", f, keys(files))
		}
	}
}

// TestBuildMultiPlatform builds examples/etl for two platforms into an OCI
// image index.
func TestBuildMultiPlatform(t *testing.T) {
	t.Parallel()
	host, up := newRegistry(t)
	opts := imagebuild.Options{Dir: etlDir, Repo: host + "/flows/etl", Platform: "linux/amd64,linux/arm64"}
	first, err := imagebuild.Build(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	up.take()
	if !first.Index || first.Platform != "linux/amd64,linux/arm64" || len(first.Images) != 2 ||
		strings.Join(first.Platforms, " ") != "linux/amd64 linux/arm64" {
		t.Fatalf("Result = %+v, want an index of two images, linux/amd64 and linux/arm64", first)
	}
	if first.Ref != host+"/flows/etl@"+first.Digest {
		t.Errorf("Ref = %q, want %s/flows/etl@%s", first.Ref, host, first.Digest)
	}
	if want := host + "/flows/etl:" + strings.TrimPrefix(first.Digest, "sha256:")[:12]; first.Tag != want {
		t.Errorf("Tag = %q, want the index's content hash %q", first.Tag, want)
	}
	if len(first.Flows) != 1 || first.Flows[0].Name != "etl" {
		t.Errorf("Flows = %+v, want the one flow etl", first.Flows)
	}

	// The tag and the pinned reference name the index, and it holds the two images.
	for _, ref := range []string{first.Ref, first.Tag} {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Get(r, remote.WithContext(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		if desc.MediaType != types.OCIImageIndex || desc.Digest.String() != first.Digest {
			t.Errorf("%s: %s %s, want an OCI image index %s", ref, desc.MediaType, desc.Digest, first.Digest)
		}
	}
	r, _ := name.ParseReference(first.Ref)
	idx, err := remote.Index(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("the index has %d manifests, want 2", len(im.Manifests))
	}
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	var specLayers []v1.Hash
	for i, m := range im.Manifests {
		want := first.Images[i]
		if m.Platform == nil || m.Platform.String() != want.Platform || m.Digest.String() != want.Digest {
			t.Errorf("manifest %d: platform %v digest %s, want %s %s", i, m.Platform, m.Digest, want.Platform, want.Digest)
			continue
		}
		if m.MediaType != types.OCIManifestSchema1 {
			t.Errorf("manifest %d: media type %s, want %s", i, m.MediaType, types.OCIManifestSchema1)
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Platform().String() != want.Platform {
			t.Errorf("image %s: config platform %s, want %s", m.Digest, cf.Platform(), want.Platform)
		}
		files := extract(t, img)
		bin, ok := files["opt/reeve/bin/etl"]
		if !ok {
			t.Fatalf("%s image: no opt/reeve/bin/etl; it has %v", want.Platform, keys(files))
		}
		ef, err := elf.NewFile(bytes.NewReader(bin.data))
		if err != nil {
			t.Fatalf("%s image: opt/reeve/bin/etl is not ELF: %v", want.Platform, err)
		}
		if w := machines[m.Platform.Architecture]; ef.Machine != w {
			t.Errorf("%s image: the program is for %v, want %v", want.Platform, ef.Machine, w)
		}
		if _, ok := files["opt/reeve/flows/etl.json"]; !ok {
			t.Errorf("%s image: no opt/reeve/flows/etl.json", want.Platform)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		d, err := layers[len(layers)-1].Digest()
		if err != nil {
			t.Fatal(err)
		}
		specLayers = append(specLayers, d)
	}
	if len(specLayers) == 2 && specLayers[0] != specLayers[1] {
		t.Errorf("the specs layers differ (%s, %s); want the same layer in every image", specLayers[0], specLayers[1])
	}

	// The same inputs give the same index, and pushing it again uploads nothing.
	second, err := imagebuild.Build(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if second.Digest != first.Digest {
		t.Errorf("second build: index digest %s, want the first's %s: the build is not reproducible", second.Digest, first.Digest)
	}
	if n, d := up.take(); n != 0 {
		t.Errorf("pushing the unchanged index made %d blob upload requests (%v), want none", n, keys(d))
	}
}

// TestBuildMultiPlatformBaseImage builds two platforms on a base image
// index: each image is built on the base image of its platform.
func TestBuildMultiPlatformBaseImage(t *testing.T) {
	t.Parallel()
	host, _ := newRegistry(t)
	baseIdx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	baseLayers := map[string]v1.Hash{}
	for _, arch := range []string{"amd64", "arm64"} {
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		data := []byte("base for " + arch + "\n")
		if err := tw.WriteHeader(&tar.Header{Name: "etc/base-arch", Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
		tw.Close()
		layer, err := tarball.LayerFromReader(bytes.NewReader(tb.Bytes()), tarball.WithMediaType(types.OCILayer))
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), layer)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		baseIdx = mutate.AppendManifests(baseIdx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
		if baseLayers["linux/"+arch], err = layer.Digest(); err != nil {
			t.Fatal(err)
		}
	}
	baseRef, err := name.NewTag(host + "/base:multi")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(baseRef, baseIdx, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}

	res, err := imagebuild.Build(t.Context(), imagebuild.Options{
		Dir: etlDir, Repo: host + "/flows", BaseImage: baseRef.String(), Platform: "linux/arm64,linux/amd64",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 {
		t.Fatalf("Images = %+v, want two", res.Images)
	}
	for _, im := range res.Images {
		img := pull(t, host+"/flows@"+im.Digest)
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := layers[0].Digest(); len(layers) != 3 || d != baseLayers[im.Platform] {
			t.Errorf("%s image: %d layers, the first %v; want 3, the %s base's %s first", im.Platform, len(layers), d, im.Platform, baseLayers[im.Platform])
		}
		if got := string(extract(t, img)["etc/base-arch"].data); got != "base for "+strings.TrimPrefix(im.Platform, "linux/")+"\n" {
			t.Errorf("%s image: etc/base-arch = %q, want the %s base's", im.Platform, got, im.Platform)
		}
	}
}
