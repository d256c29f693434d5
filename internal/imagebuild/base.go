package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The base images a build can name without a registry.
const (
	// StaticBase, the default, is Reeve's minimal static base, made on
	// this machine: what a static Go program needs from a system and
	// scratch lacks (like distroless/static, but with no registry).
	StaticBase = "static"
	// ScratchBase is the empty image.
	ScratchBase = "scratch"
)

// Where the static base puts what it holds.
const (
	CACertsPath  = "/etc/ssl/certs/ca-certificates.crt"
	ZoneinfoPath = "/usr/share/go/zoneinfo.zip" // Go's time zone database; ZONEINFO names it
)

// hostCACerts are the CA bundles tried for the static base, in order
// (SSL_CERT_FILE first when set): Debian/Ubuntu, Fedora/RHEL, Alpine's
// is the first.
var hostCACerts = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/cert.pem",
}

var static struct {
	mu    sync.Mutex
	layer v1.Layer
	key   string
}

// staticBase returns Reeve's minimal static base: one layer holding
// /etc/passwd and /etc/group that name root and the non-root user 65532
// ("nonroot", home /home/nonroot), /etc/nsswitch.conf, a world-writable
// /tmp, this machine's CA certificates at /etc/ssl/certs/ca-certificates.crt
// (so HTTPS works) and the Go toolchain's time zone database (so
// time.LoadLocation works), with PATH and ZONEINFO set. Its files come from
// this machine, so its digest changes only when they do.
func staticBase(ctx context.Context) (v1.Image, error) {
	certs, err := caCerts()
	if err != nil {
		return nil, err
	}
	zoneinfo, err := goZoneinfo(ctx)
	if err != nil {
		return nil, err
	}
	key := certs + "\x00" + zoneinfo
	static.mu.Lock()
	defer static.mu.Unlock()
	if static.layer == nil || static.key != key {
		l, err := staticLayer(certs, zoneinfo)
		if err != nil {
			return nil, fmt.Errorf("static base image: %w", err)
		}
		static.layer, static.key = l, key
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     static.layer,
		History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "reeve build: the static base (users, /tmp, CA certificates, time zones)"},
		MediaType: types.OCILayer,
	})
	if err != nil {
		return nil, fmt.Errorf("static base image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("static base image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "ZONEINFO=" + ZoneinfoPath, "HOME=/home/nonroot"}
	return mutate.ConfigFile(img, cf)
}

// caCerts returns the path of this machine's CA bundle.
func caCerts() (string, error) {
	paths := hostCACerts
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		paths = append([]string{f}, paths...)
	}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("static base image: no CA certificates on this machine (looked for %s): install them (apt-get install ca-certificates), set SSL_CERT_FILE, or use --base-image scratch", strings.Join(paths, ", "))
}

// goZoneinfo returns the path of the Go toolchain's time zone database.
func goZoneinfo(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("static base image: go env GOROOT: %w", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "lib", "time", "zoneinfo.zip")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("static base image: the Go toolchain has no time zone database: %w (use --base-image scratch)", err)
	}
	return p, nil
}

func staticLayer(certs, zoneinfo string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, data []byte) error {
		h.ModTime, h.Format = epoch, tar.FormatPAX
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	dir := func(name string, mode int64, uid int) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: uid}
	}
	file := func(name string) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}
	}
	certData, err := os.ReadFile(certs)
	if err != nil {
		return nil, err
	}
	zoneData, err := os.ReadFile(zoneinfo)
	if err != nil {
		return nil, err
	}
	entries := []struct {
		h    *tar.Header
		data []byte
	}{
		{dir("etc/", 0o755, 0), nil},
		{file("etc/group"), []byte("root:x:0:\nnonroot:x:65532:\n")},
		{file("etc/nsswitch.conf"), []byte("hosts: files dns\n")},
		{file("etc/passwd"), []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{dir("etc/ssl/", 0o755, 0), nil},
		{dir("etc/ssl/certs/", 0o755, 0), nil},
		{file(strings.TrimPrefix(CACertsPath, "/")), certData},
		{dir("home/", 0o755, 0), nil},
		{dir("home/nonroot/", 0o700, UID), nil},
		{dir("root/", 0o700, 0), nil},
		{dir("tmp/", 0o1777, 0), nil},
		{dir("usr/", 0o755, 0), nil},
		{dir("usr/share/", 0o755, 0), nil},
		{dir("usr/share/go/", 0o755, 0), nil},
		{file(strings.TrimPrefix(ZoneinfoPath, "/")), zoneData},
	}
	for _, e := range entries {
		if err := add(e.h, e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}
