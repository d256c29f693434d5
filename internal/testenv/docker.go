package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"
)

// Docker returns a client of the Docker engine that DOCKER_HOST (or the
// default socket) names, once a ping proved the engine answers. Without an
// engine it skips the test, or fails it when REEVE_TEST_REQUIRE names
// docker. The client is closed when the test ends.
func Docker(t testing.TB) *client.Client {
	t.Helper()
	cl, err := client.New(client.FromEnv)
	if err != nil {
		Skip(t, ServiceDocker, fmt.Sprintf("no Docker client: %v", err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cl.Close()
		Skip(t, ServiceDocker, fmt.Sprintf("the Docker engine at %s does not answer (%v): install and start Docker Engine, or set DOCKER_HOST", cl.DaemonHost(), err))
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// Registry starts an OCI registry (go-containerregistry's, in memory) on a
// loopback port and returns its host:port. It speaks plain HTTP, which
// Docker engines and go-containerregistry allow for loopback registries.
// It stops when the test ends.
func Registry(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// BusyboxPath is where Debian's busybox-static package puts its binary.
const BusyboxPath = "/bin/busybox"

// busyboxApplets are linked to busybox in a busybox base's /bin.
var busyboxApplets = []string{"sh", "sleep", "cat", "echo", "ls", "env", "wc", "tr", "sed", "grep", "printf", "true", "false", "test", "[", "kill", "id", "touch", "rm", "mkdir", "head", "tail", "sha256sum", "date", "uname", "wget", "nc", "dd", "yes", "seq"}

var busybox struct {
	once  sync.Once
	layer v1.Layer
	err   error
}

// BusyboxBase returns a base image made without any registry: one layer
// with Debian's static busybox at /bin/busybox, its common applets (sh,
// sleep, cat, ...) linked in /bin, and a world-writable /tmp. It proves
// that a flow can call a non-Go tool its base image carries. Without
// busybox (apt-get install busybox-static) it skips the test, or fails it
// when REEVE_TEST_REQUIRE names docker (CI installs it).
func BusyboxBase(t testing.TB) v1.Image {
	t.Helper()
	if _, err := os.Stat(BusyboxPath); err != nil {
		Skip(t, ServiceDocker, fmt.Sprintf("no %s to make a base image from (%v): apt-get install busybox-static", BusyboxPath, err))
	}
	if dynamic, err := dynamicELF(BusyboxPath); err != nil || dynamic {
		Skip(t, ServiceDocker, fmt.Sprintf("%s is not a static program (%v), so it cannot run alone in an image: apt-get install busybox-static", BusyboxPath, err))
	}
	busybox.once.Do(func() { busybox.layer, busybox.err = busyboxLayer() })
	if busybox.err != nil {
		t.Fatalf("busybox base: %v", busybox.err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: busybox.layer, History: v1.History{CreatedBy: "testenv: " + BusyboxPath + " and its applets"}})
	if err != nil {
		t.Fatalf("busybox base: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("busybox base: %v", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Env = []string{"PATH=/bin"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatalf("busybox base: %v", err)
	}
	return img
}

func busyboxLayer() (v1.Layer, error) {
	data, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	hdrs := []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755, ModTime: epoch},
		{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: epoch},
		{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(data)), ModTime: epoch},
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(data); err != nil {
				return nil, err
			}
		}
	}
	for _, a := range busyboxApplets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// LoadImage loads img into the Docker engine under the tag ref (like
// docker load), without a registry, and removes it when the test ends.
func LoadImage(t testing.TB, cl *client.Client, ref string, img v1.Image) {
	t.Helper()
	var buf bytes.Buffer
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatalf("load image %s: %v", ref, err)
	}
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatalf("load image %s: %v", ref, err)
	}
	ctx := t.Context()
	res, err := cl.ImageLoad(ctx, &buf, client.ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatalf("load image %s into Docker: %v", ref, err)
	}
	out := new(strings.Builder)
	_, _ = io.Copy(out, res)
	res.Close()
	if strings.Contains(out.String(), `"error"`) {
		t.Fatalf("load image %s into Docker: %s", ref, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = cl.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
}

// dynamicELF reports whether the ELF program at path asks for a dynamic
// loader (has a PT_INTERP header).
func dynamicELF(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}
