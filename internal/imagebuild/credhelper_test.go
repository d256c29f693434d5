package imagebuild_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/reevehq/reeve/internal/imagebuild"
)

// TestBuildPushesWithCredentialHelper pushes to a registry that wants a
// password, with the credentials a Docker credential helper gives (as on
// a machine where docker login keeps them in a credential store); without
// them the build says it was denied and how to log in.
func TestBuildPushesWithCredentialHelper(t *testing.T) {
	// Not parallel: it sets DOCKER_CONFIG and PATH.
	const user, password = "reeve", "s3cret-pw"
	reg := httptest.NewServer(basicAuth(user, password, registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	opts := imagebuild.Options{Dir: etlDir, Repo: host + "/flows", BaseImage: imagebuild.ScratchBase, HealthCheck: "skip"}

	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials
	_, err := imagebuild.Build(t.Context(), opts)
	if err == nil {
		t.Fatal("a push without credentials succeeded")
	}
	t.Logf("without credentials: %v", err)
	for _, want := range []string{host, "docker login"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}

	cfgDir, binDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), fmt.Appendf(nil, `{"credHelpers": {%q: "reeve-build-test"}}`, host), 0o600); err != nil {
		t.Fatal(err)
	}
	helper := fmt.Sprintf("#!/bin/sh\nread server\necho '{\"ServerURL\": \"'\"$server\"'\", \"Username\": %q, \"Secret\": %q}'\n", user, password)
	if err := os.WriteFile(filepath.Join(binDir, "docker-credential-reeve-build-test"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfgDir)
	t.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	res, err := imagebuild.Build(t.Context(), opts)
	if err != nil {
		t.Fatalf("a push with the credential helper's credentials: %v", err)
	}
	ref, err := name.ParseReference(res.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: user, Password: password})); err != nil {
		t.Errorf("the pushed image %s cannot be pulled back: %v", res.Ref, err)
	}
}

// basicAuth lets through only requests with the user's password, answering
// others as registries do (401 with a Basic challenge).
func basicAuth(user, password string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="reeve-test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
