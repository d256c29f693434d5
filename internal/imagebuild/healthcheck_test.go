package imagebuild_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/reevehq/reeve/internal/imagebuild"
	"github.com/reevehq/reeve/internal/testenv"
)

// hcDir is the flow program of the health check tests: see its doc.
var hcDir = filepath.Join("testdata", "hcflows")

// hostPlatform is this machine's platform, and otherPlatform another one.
var (
	hostPlatform  = "linux/" + runtime.GOARCH
	otherPlatform = map[bool]string{true: "linux/amd64", false: "linux/arm64"}[runtime.GOARCH == "arm64"]
)

// secretsSet is a SecretCheck for a project that has the secrets in set.
func secretsSet(set ...string) imagebuild.SecretCheck {
	return func(_ context.Context, flow string, names []string) ([]imagebuild.Check, error) {
		var out []imagebuild.Check
		for _, n := range names {
			c := imagebuild.Check{OK: true, Flow: flow, What: "secret " + n + " is set in project test"}
			if !contains(set, n) {
				c = imagebuild.Check{Flow: flow, What: "secret " + n + " is not set in project test: reeve secret set " + n + " --project test"}
			}
			out = append(out, c)
		}
		return out, nil
	}
}

// matchLines fails the test unless text matches every pattern (multi-line).
func matchLines(t *testing.T, what, text string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile("(?m)" + p).MatchString(text) {
			t.Errorf("%s does not match %s:\n%s", what, p, text)
		}
	}
}

// noPush fails the test unless the registry got no upload and holds no tag
// in repo.
func noPush(t *testing.T, up *uploads, repo string) {
	t.Helper()
	if n, d := up.take(); n != 0 {
		t.Errorf("the registry got %d blob upload requests (%v), want none: a failed health check must push nothing", n, keys(d))
	}
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	if tags, err := remote.List(r, remote.WithContext(t.Context())); err == nil && len(tags) > 0 {
		t.Errorf("the registry has tags %v in %s, want none", tags, repo)
	}
}

// TestHealthCheckPasses checks a program that has everything its flows
// declare, by running its binary: every line is printed and the image is
// pushed with the specs it holds.
func TestHealthCheckPasses(t *testing.T) {
	t.Parallel()
	host, up := newRegistry(t)
	var progress bytes.Buffer
	res, err := imagebuild.Build(t.Context(), imagebuild.Options{
		Dir:          hcDir,
		Repo:         host + "/hc",
		Env:          []string{"INGEST_REGION=eu"},
		HealthCheck:  imagebuild.HealthCheckBinary,
		RunPlatform:  hostPlatform,
		CheckSecrets: secretsSet("INGEST_TOKEN"),
		Progress:     &progress,
	})
	if err != nil {
		t.Fatalf("Build: %v\nprogress:\n%s", err, progress.String())
	}
	out := progress.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if want := "by running the " + hostPlatform + " binary on this machine"; !strings.HasPrefix(lines[0], "health check of "+host+"/hc@sha256:") || !strings.HasSuffix(lines[0], want) {
		t.Errorf("first line %q, want it to name the image and say %q", lines[0], want)
	}
	matchLines(t, "progress", out,
		`^ok   report: task fetch resolves to hcflows\.fetch$`,
		`^ok   ingest: task load persists its result to the server's result store \(reeve://server\)$`,
		`^ok   ingest: env INGEST_REGION is set$`,
		`^ok   ingest: env INGEST_NODE is provided by the agent at run time$`,
		`^ok   ingest: secret INGEST_TOKEN is declared: runs get it from the server$`,
		`^ok   ingest: secret INGEST_TOKEN is set in project test$`,
		`^ok   image: platform `+hostPlatform+` matches the run configuration$`,
		`^all \d+ checks passed$`)
	if strings.Contains(out, "FAIL") {
		t.Errorf("a check failed:\n%s", out)
	}
	if res.HealthCheck != "binary" {
		t.Errorf("Result.HealthCheck = %q, want binary", res.HealthCheck)
	}
	if n, _ := up.take(); n == 0 {
		t.Errorf("nothing was uploaded after a passing health check")
	}
	// Each flow's Spec is the file the image holds.
	files := extract(t, pull(t, res.Ref))
	if len(res.Flows) != 2 {
		t.Fatalf("Flows = %+v, want ingest and report", res.Flows)
	}
	for _, f := range res.Flows {
		if got := files["opt/reeve/flows/"+f.Name+".json"].data; len(f.Spec) == 0 || !bytes.Equal(got, f.Spec) {
			t.Errorf("flow %s: Spec is %d bytes, not the %d bytes of the image's spec file", f.Name, len(f.Spec), len(got))
		}
	}
}

// TestHealthCheckFailures checks each thing a flow needs at run time and
// lacks: the build fails naming the flow and the fix, and nothing is pushed.
func TestHealthCheckFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts imagebuild.Options
		want []string
	}{
		{
			name: "environment variable neither in the image nor from the agent",
			opts: imagebuild.Options{},
			want: []string{`^FAIL ingest: env INGEST_REGION is not set; set it in the environment \(or --env NAME=value when building an image, --run-env NAME=value when deploying, or declare it with reeve\.EnvFromAgent`},
		},
		{
			name: "secret not set on the server",
			opts: imagebuild.Options{Env: []string{"INGEST_REGION=eu"}, CheckSecrets: secretsSet()},
			want: []string{`^FAIL ingest: secret INGEST_TOKEN is not set in project test: reeve secret set INGEST_TOKEN --project test$`},
		},
		{
			name: "platform the image lacks",
			opts: imagebuild.Options{Env: []string{"INGEST_REGION=eu"}, RunPlatform: otherPlatform},
			want: []string{`^FAIL image: the run configuration asks for ` + otherPlatform + `, but the image is for ` + hostPlatform +
				`: build it with --platform ` + otherPlatform + ` \(or --platform ` + hostPlatform + `,` + otherPlatform + ` for both\)`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			host, up := newRegistry(t)
			var progress bytes.Buffer
			o := tc.opts
			o.Dir, o.Repo, o.HealthCheck, o.Progress = hcDir, host+"/hc", imagebuild.HealthCheckBinary, &progress
			_, err := imagebuild.Build(t.Context(), o)
			var hce *imagebuild.HealthCheckError
			if !errors.As(err, &hce) {
				t.Fatalf("Build: %v, want a *HealthCheckError\nprogress:\n%s", err, progress.String())
			}
			matchLines(t, "progress", progress.String(), append(tc.want, `^1 of \d+ checks failed$`)...)
			matchLines(t, "the error", err.Error(), append(tc.want, `^the health check of `+host+`/hc@sha256:[0-9a-f]{64} failed \(1 of \d+ checks\), so nothing was pushed:$`,
				`Fix the failures and build again, or give --skip-healthcheck to push without the check\.$`)...)
			noPush(t, up, host+"/hc")
		})
	}

	t.Run("the run environment sets what the image lacks", func(t *testing.T) {
		t.Parallel()
		host, _ := newRegistry(t)
		var progress bytes.Buffer
		_, err := imagebuild.Build(t.Context(), imagebuild.Options{
			Dir: hcDir, Repo: host + "/hc", HealthCheck: imagebuild.HealthCheckBinary, Progress: &progress,
			RunEnv: map[string]string{"INGEST_REGION": "us"},
		})
		if err != nil {
			t.Fatalf("Build: %v\nprogress:\n%s", err, progress.String())
		}
		matchLines(t, "progress", progress.String(), `^ok   ingest: env INGEST_REGION is set$`)
	})
}

// TestHealthCheckMachineDependentRegistration builds a program whose
// registrations depend on the build machine's environment: the specs saved
// here name a task, and a result store, that the image's program lacks.
// The health check refuses it, in each place it can run, and nothing is
// pushed. It sets environment variables, so it does not run in parallel.
func TestHealthCheckMachineDependentRegistration(t *testing.T) {
	t.Setenv("HCFLOWS_EXTRA_TASK", "1")
	t.Setenv("HCFLOWS_ARCHIVE_STORE", "s3://reeve-test-archive")
	for _, mode := range []string{imagebuild.HealthCheckBinary, imagebuild.HealthCheckDocker} {
		t.Run(mode, func(t *testing.T) {
			if mode == imagebuild.HealthCheckDocker {
				testenv.Docker(t)
			}
			host, up := newRegistry(t)
			var progress bytes.Buffer
			_, err := imagebuild.Build(t.Context(), imagebuild.Options{
				Dir: hcDir, Repo: host + "/hc", Env: []string{"INGEST_REGION=eu"}, HealthCheck: mode, Progress: &progress,
			})
			var hce *imagebuild.HealthCheckError
			if !errors.As(err, &hce) {
				t.Fatalf("Build: %v, want a *HealthCheckError\nprogress:\n%s", err, progress.String())
			}
			where := map[string]string{
				imagebuild.HealthCheckBinary: "by running the " + hostPlatform + " binary on this machine",
				imagebuild.HealthCheckDocker: "in a Docker container",
			}[mode]
			missingTask := `^FAIL report: task extra: task "hcflows\.extra" is not registered in this program; build the image from the program that defines it$`
			missingStore := `^FAIL archive: task archive: result store: result store "s3://reeve-test-archive": the s3 driver is not linked into this program; add ` + "`" + `import _ "gocloud\.dev/blob/s3blob"` + "`"
			matchLines(t, "progress", progress.String(), `^health check of `+host+`/hc@sha256:[0-9a-f]{64} .*`+regexp.QuoteMeta(where)+`$`,
				missingTask, missingStore, `^ok   report: task fetch resolves`, `^2 of \d+ checks failed$`)
			matchLines(t, "the error", err.Error(), missingTask, missingStore,
				`register every task unconditionally, at package level\.$`)
			if len(hce.Failed) != 2 {
				t.Errorf("Failed = %v, want the two failures", hce.Failed)
			}
			noPush(t, up, host+"/hc")
		})
	}
}

// TestHealthCheckInDocker runs the check in a container of the image: the
// run environment reaches it, and it passes.
func TestHealthCheckInDocker(t *testing.T) {
	t.Parallel()
	testenv.Docker(t)
	host, _ := newRegistry(t)
	var progress bytes.Buffer
	res, err := imagebuild.Build(t.Context(), imagebuild.Options{
		Dir: hcDir, Repo: host + "/hc", HealthCheck: imagebuild.HealthCheckDocker, Progress: &progress,
		RunEnv: map[string]string{"INGEST_REGION": "us"}, RunPlatform: hostPlatform,
	})
	if err != nil {
		t.Fatalf("Build: %v\nprogress:\n%s", err, progress.String())
	}
	matchLines(t, "progress", progress.String(),
		fmt.Sprintf(`\Ahealth check of %s/hc@sha256:[0-9a-f]{64} \(%s\) in a Docker container$`, regexp.QuoteMeta(host), hostPlatform),
		`^ok   ingest: env INGEST_REGION is set$`, `^ok   image: platform .* matches the run configuration$`, `^all \d+ checks passed$`)
	if res.HealthCheck != "docker" {
		t.Errorf("Result.HealthCheck = %q, want docker", res.HealthCheck)
	}
}

// TestHealthCheckAutoWithoutDocker points DOCKER_HOST at nothing: the
// automatic check runs the binary when the image is for this machine, and
// refuses an image for another one. Not parallel: it sets DOCKER_HOST.
func TestHealthCheckAutoWithoutDocker(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
	host, up := newRegistry(t)
	var progress bytes.Buffer
	res, err := imagebuild.Build(t.Context(), imagebuild.Options{Dir: hcDir, Repo: host + "/hc", Env: []string{"INGEST_REGION=eu"}, Progress: &progress})
	if err != nil {
		t.Fatalf("Build: %v\nprogress:\n%s", err, progress.String())
	}
	if res.HealthCheck != "binary" || !strings.Contains(progress.String(), "binary on this machine") {
		t.Errorf("HealthCheck = %q, progress:\n%s\nwant the binary run here", res.HealthCheck, progress.String())
	}
	// Without a server, the secrets are not checked, and the build says so.
	if want := "note: not checked that the declared secrets are set on the server (ingest: INGEST_TOKEN): give --server to check them"; !strings.Contains(progress.String(), want) {
		t.Errorf("progress:\n%s\nwant %q", progress.String(), want)
	}
	up.take()

	_, err = imagebuild.Build(t.Context(), imagebuild.Options{Dir: hcDir, Repo: host + "/other", Platform: otherPlatform, Env: []string{"INGEST_REGION=eu"}})
	want := fmt.Sprintf("cannot check a %s image on this machine (%s) without Docker", otherPlatform, hostPlatform)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--skip-healthcheck") {
		t.Errorf("Build for %s: %v, want an error that says %q and names --skip-healthcheck", otherPlatform, err, want)
	}
	noPush(t, up, host+"/other")

	// Skipped: pushed without a check.
	res, err = imagebuild.Build(t.Context(), imagebuild.Options{Dir: hcDir, Repo: host + "/other", Platform: otherPlatform, HealthCheck: imagebuild.HealthCheckSkip})
	if err != nil || res.HealthCheck != "skipped" {
		t.Errorf("Build with HealthCheckSkip: %+v, %v; want it pushed, unchecked", res, err)
	}
}

// TestHealthCheckHangs: a program whose healthcheck never answers fails
// the build after HealthCheckTimeout, saying so, and pushes nothing, run
// as a binary or in a container.
func TestHealthCheckHangs(t *testing.T) {
	defer func(d time.Duration) { imagebuild.HealthCheckTimeout = d }(imagebuild.HealthCheckTimeout)
	imagebuild.HealthCheckTimeout = 2 * time.Second
	for _, mode := range []string{imagebuild.HealthCheckBinary, imagebuild.HealthCheckDocker} {
		t.Run(mode, func(t *testing.T) {
			if mode == imagebuild.HealthCheckDocker {
				testenv.Docker(t)
			}
			host, up := newRegistry(t)
			_, err := imagebuild.Build(t.Context(), imagebuild.Options{
				Dir: hcDir, Repo: host + "/hang", Env: []string{"INGEST_REGION=eu"},
				HealthCheck: mode, RunEnv: map[string]string{"HCFLOWS_BLOCK": "1"},
			})
			if err == nil || !strings.Contains(err.Error(), "did not finish within 2s") || !strings.Contains(err.Error(), "--skip-healthcheck") {
				t.Fatalf("Build of a program that hangs: %v, want an error saying it did not finish within 2s", err)
			}
			noPush(t, up, host+"/hang")
		})
	}
}

// TestHealthCheckForeignPlatformInDocker: an engine that cannot run the
// image's platform makes the check fail with that reason and what to do,
// not blame the SDK.
func TestHealthCheckForeignPlatformInDocker(t *testing.T) {
	testenv.Docker(t)
	host, up := newRegistry(t)
	_, err := imagebuild.Build(t.Context(), imagebuild.Options{
		Dir: hcDir, Repo: host + "/foreign", Platform: otherPlatform, Env: []string{"INGEST_REGION=eu"},
		HealthCheck: imagebuild.HealthCheckDocker,
	})
	if err == nil {
		t.Skipf("the engine ran a %s image (an emulator is installed): nothing to check", otherPlatform)
	}
	for _, want := range []string{"cannot run " + otherPlatform + " programs", "--skip-healthcheck"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "update github.com/reevehq/reeve") {
		t.Errorf("the error blames the SDK: %v", err)
	}
	noPush(t, up, host+"/foreign")
}
