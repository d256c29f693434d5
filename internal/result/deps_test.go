package result

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNoCloudSDKs keeps the cloud SDKs out of every program that links the
// result stores: they add tens of megabytes, and a flow program opts into
// one by importing its gocloud driver.
func TestNoCloudSDKs(t *testing.T) {
	t.Parallel()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			t.Skip("skipping: no go tool found in GOROOT/bin or PATH to list the package's dependencies")
		}
	}
	cmd := exec.CommandContext(t.Context(), goTool, "list", "-deps", "github.com/reevehq/reeve/internal/result")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}

	banned := []string{
		"github.com/aws/",
		"cloud.google.com/",
		"github.com/Azure/",
		"google.golang.org/api/",
		"gocloud.dev/blob/s3blob",
		"gocloud.dev/blob/gcsblob",
		"gocloud.dev/blob/azureblob",
	}
	// gocloud.dev/blob itself reaches these through gax-go's error types
	// (gocloud.dev/internal/retry -> github.com/googleapis/gax-go/v2 ->
	// apierror). They are error and URI-template helpers, not API clients.
	allowed := map[string]bool{
		"google.golang.org/api/googleapi":                         true,
		"google.golang.org/api/internal/third_party/uritemplates": true,
	}
	deps := strings.Fields(string(out))
	if len(deps) < 2 {
		t.Fatalf("go list -deps printed %q; want the package and its dependencies", out)
	}
	for _, dep := range deps {
		if allowed[dep] {
			continue
		}
		for _, prefix := range banned {
			if strings.HasPrefix(dep, prefix) {
				t.Errorf("internal/result depends on %s (banned prefix %s): keep cloud drivers opt-in by import in the flow's main package", dep, prefix)
			}
		}
	}
}
