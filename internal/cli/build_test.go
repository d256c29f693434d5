package cli_test

import (
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/reevehq/reeve/internal/cli"
)

// TestBuild builds examples/etl with reeve build and pushes it to an
// in-memory registry over real HTTP.
func TestBuild(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	etl := filepath.Join("..", "..", "examples", "etl")

	run := func(args ...string) (code int, stdout, stderr string) {
		var out, errb bytes.Buffer
		code = cli.New(cli.Options{Stdout: &out, Stderr: &errb, LookupEnv: func(string) (string, bool) { return "", false }}).
			Run(t.Context(), args)
		return code, out.String(), errb.String()
	}

	code, out, errOut := run("build", etl, "--repo", host+"/flows", "--env", "A=1", "--tag", "t1")
	if code != cli.ExitOK {
		t.Fatalf("reeve build: exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], host+"/flows@sha256:") ||
		!strings.HasPrefix(lines[1], "FLOW") || !strings.HasPrefix(lines[2], "etl ") || !strings.Contains(lines[2], "sha256:") {
		t.Errorf("reeve build printed:\n%s\nwant the pinned reference, a header and one line for etl", out)
	}
	if !strings.Contains(errOut, "pushed "+host+"/flows:t1") {
		t.Errorf("stderr = %q, want it to say what was pushed", errOut)
	}
	if !strings.Contains(errOut, "\nok   etl: spec loads (sha256:") || !strings.Contains(errOut, "\nall ") || !strings.HasPrefix(errOut, "health check of "+host+"/flows@sha256:") {
		t.Errorf("stderr = %q, want the health check's lines, the first naming the image", errOut)
	}

	// Without the health check: a warning.
	code, out, errOut = run("build", etl, "--repo", host+"/flows", "--skip-healthcheck")
	if code != cli.ExitOK || !strings.HasPrefix(errOut, "warning: skipping the health check: the image is pushed without proof that its flows load") ||
		strings.Contains(errOut, "ok   ") {
		t.Errorf("reeve build --skip-healthcheck: exit %d, stderr %q; want the warning and no check", code, errOut)
	}

	// Two platforms: an image index.
	code, out, errOut = run("build", etl, "--repo", host+"/flows", "--platform", "linux/amd64,linux/arm64")
	if code != cli.ExitOK {
		t.Fatalf("reeve build --platform linux/amd64,linux/arm64: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.HasPrefix(out, host+"/flows@sha256:") || !strings.Contains(errOut, "an image index of 2 images") ||
		!strings.Contains(errOut, "  linux/amd64 sha256:") || !strings.Contains(errOut, "  linux/arm64 sha256:") {
		t.Errorf("reeve build for two platforms printed:\n%s\nand on stderr:\n%s\nwant the pinned index, and each platform's image", out, errOut)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"build", etl}, cli.ExitUsage, "--repo"},
		{[]string{"build", "no/such/dir", "--repo", host + "/flows"}, cli.ExitUsage, "is not a directory"},
		{[]string{"build", etl, "--repo", host + "/flows", "--env", "NOVALUE"}, cli.ExitUsage, "NAME=VALUE"},
		{[]string{"build", etl, "--repo", host + "/flows", "--file", "x"}, cli.ExitUsage, "SRC:DST"},
		{[]string{"build", etl, "--repo", host + "/flows", "--env", "API_TOKEN=abc123"}, cli.ExitUsage, "everyone who can pull the image can read it. Keep secrets on the server instead: `reeve secret set NAME`"},
		{[]string{"build", etl, "--repo", host + "/flows", "--env", "API_TOKEN=abc123", "--env", "DB_URL=postgres://u:pw@db/x", "--allow-env", "API_TOKEN"}, cli.ExitUsage, "--env DB_URL (its value is a URL with a password)"},
		{[]string{"build", etl, "--repo", host + "/flows", "--platform", "linux/arm64,linux/arm64"}, cli.ExitUsage, "linux/arm64 is given twice"},
		{[]string{"build", filepath.Join("..", "spec"), "--repo", host + "/flows"}, cli.ExitFailed, "not a main package"},
		{[]string{"build", etl, "--repo", host + "/flows", "--skip-healthcheck", "--healthcheck", "binary"}, cli.ExitUsage, "--skip-healthcheck and --healthcheck binary: give one of them"},
		{[]string{"build", etl, "--repo", host + "/flows", "--healthcheck", "skip"}, cli.ExitUsage, "--healthcheck skip: give --skip-healthcheck instead"},
	} {
		code, _, errOut := run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("reeve %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, errOut, tc.code, tc.want)
		}
	}
}
