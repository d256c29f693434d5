package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/cli"
)

// hcflows is the flow program of imagebuild's health check tests: flow
// ingest declares the variable INGEST_REGION and the secret INGEST_TOKEN,
// flow report has one task (and a second one when HCFLOWS_EXTRA_TASK is
// set where its specs are saved).
var hcflows = filepath.Join("..", "imagebuild", "testdata", "hcflows")

// adminToken is the admin token of the servers these tests start.
const adminToken = "reeve_deploytestadmintoken0123456789"

// startServer starts `reeve server` in this process on 127.0.0.1:0 with
// a SQLite database in a temporary directory, and returns its URL. It
// stops when the test ends.
func startServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	addr := make(chan string, 1)
	var logs bytes.Buffer
	c := cli.New(cli.Options{
		Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &syncBuffer{b: &logs},
		LookupEnv: func(name string) (string, bool) {
			if name == "REEVE_ADMIN_TOKEN" {
				return adminToken, true
			}
			return "", false
		},
		Terminal:  func() bool { return false },
		Listening: func(a string) { addr <- a },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- c.Run(ctx, []string{"server", "--listen", "127.0.0.1:0", "--data-dir", dir}) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case a := <-addr:
		return "http://" + a
	case code := <-done:
		t.Fatalf("reeve server exited with code %d before listening", code)
	case <-time.After(30 * time.Second):
		t.Fatalf("reeve server did not listen within 30s")
	}
	return ""
}

// syncBuffer is a buffer the server writes while the test runs.
type syncBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// countingRegistry starts an in-memory registry and returns its host and
// a function that returns the number of blob upload requests since its
// last call.
func countingRegistry(t *testing.T) (host string, uploads func() int) {
	t.Helper()
	var (
		mu sync.Mutex
		n  int
	)
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/uploads/") || r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			mu.Lock()
			n++
			mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), func() int {
		mu.Lock()
		defer mu.Unlock()
		v := n
		n = 0
		return v
	}
}

// runReeve runs the reeve command with args.
func runReeve(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.New(cli.Options{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		LookupEnv: func(string) (string, bool) { return "", false },
		Terminal:  func() bool { return false },
	}).Run(t.Context(), args)
	return code, out.String(), errb.String()
}

// TestDeploy deploys the health check program to a server and a
// registry: refused while a declared secret is missing (nothing pushed,
// nothing registered), then registered with digest-pinned docker storage
// and its run configuration, then unchanged when deployed again.
func TestDeploy(t *testing.T) {
	t.Parallel()
	server := startServer(t)
	host, uploads := countingRegistry(t)
	conn := []string{"--server", server, "--token", adminToken}
	plat := "linux/" + runtime.GOARCH
	deploy := append([]string{"deploy", hcflows, "--repo", host + "/hc", "--project", "default",
		"--env", "INGEST_REGION=eu", "--cpu", "500m", "--memory", "256Mi", "--executor", "sequential", "--workers", "3",
		"--run-env", "LOG_LEVEL=debug", "--run-platform", plat, "--labels", "team-a,gpu"}, conn...)
	cl, err := client.New(server, adminToken)
	if err != nil {
		t.Fatal(err)
	}

	// A declared secret is not on the server: the health check fails.
	code, out, errOut := runReeve(t, "", deploy...)
	if code != cli.ExitFailed {
		t.Fatalf("deploy without the secret: exit %d, want %d\n%s%s", code, cli.ExitFailed, out, errOut)
	}
	for _, want := range []string{
		"\nFAIL ingest: secret INGEST_TOKEN is not set in project default: reeve secret set INGEST_TOKEN --project default\n",
		"\nok   ingest: secret INGEST_TOKEN is declared: runs get it from the server\n",
		"\nok   image: platform " + plat + " matches the run configuration\n",
		"reeve: the health check of " + host + "/hc@sha256:",
		"so nothing was pushed. Fix the failures and build again, or give --skip-healthcheck",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("deploy without the secret: stderr does not say %q:\n%s", want, errOut)
		}
	}
	if n := uploads(); n != 0 {
		t.Errorf("deploy without the secret: the registry got %d upload requests, want none", n)
	}
	if fs, err := cl.Flows(t.Context(), "default", ""); err != nil || len(fs) != 0 {
		t.Errorf("deploy without the secret: flows %v (%v), want none registered", fs, err)
	}

	if code, out, errOut := runReeve(t, "tok3n-value\n", append([]string{"secret", "set", "INGEST_TOKEN", "--project", "default"}, conn...)...); code != cli.ExitOK {
		t.Fatalf("secret set: exit %d\n%s%s", code, out, errOut)
	}

	// Deployed: every flow registered with the image pinned by digest.
	code, out, errOut = runReeve(t, "", deploy...)
	if code != cli.ExitOK {
		t.Fatalf("deploy: exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	ref := lines[0]
	if !regexp.MustCompile(`^`+regexp.QuoteMeta(host)+`/hc@sha256:[0-9a-f]{64}$`).MatchString(ref) ||
		len(lines) != 3 || lines[1] != "registered ingest version 1 (new)" || lines[2] != "registered report version 1 (new)" {
		t.Errorf("deploy printed:\n%s\nwant the pinned image and one registered line per flow", out)
	}
	for _, want := range []string{"\nok   ingest: secret INGEST_TOKEN is set in project default\n", "\nall ", "pushed " + host + "/hc:", "warning: runs of flow \"ingest\" will wait"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("deploy: stderr does not say %q:\n%s", want, errOut)
		}
	}
	if n := uploads(); n == 0 {
		t.Errorf("deploy: nothing was uploaded")
	}
	for _, name := range []string{"ingest", "report"} {
		fs, err := cl.Flows(t.Context(), "default", name)
		if err != nil || len(fs) != 1 {
			t.Fatalf("flow %s: %v, %v", name, fs, err)
		}
		d, err := cl.Flow(t.Context(), fs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		v := d.Versions[0]
		if v.Storage.Kind != "docker" || v.Storage.Image != ref {
			t.Errorf("flow %s: storage %+v, want docker %s", name, v.Storage, ref)
		}
		want := api.RunConfig{Executor: "sequential", Workers: 3, CPU: "500m", Memory: "256Mi", Env: map[string]string{"LOG_LEVEL": "debug"}, Platform: plat}
		got, _ := json.Marshal(v.RunConfig)
		if wantJSON, _ := json.Marshal(want); string(got) != string(wantJSON) {
			t.Errorf("flow %s: run config %s, want %s", name, got, wantJSON)
		}
		if strings.Join(v.Labels, ",") != "gpu,team-a" {
			t.Errorf("flow %s: labels %v, want gpu, team-a", name, v.Labels)
		}
	}

	// Deployed again, unchanged: nothing uploaded, nothing registered.
	code, out, errOut = runReeve(t, "", deploy...)
	if code != cli.ExitOK {
		t.Fatalf("deploy again: exit %d\n%s%s", code, out, errOut)
	}
	if want := ref + "\ningest unchanged (version 1)\nreport unchanged (version 1)\nnothing new registered\n"; out != want {
		t.Errorf("deploy again printed:\n%s\nwant:\n%s", out, want)
	}
	if n := uploads(); n != 0 {
		t.Errorf("deploy again: the registry got %d upload requests, want none", n)
	}
	code, out, errOut = runReeve(t, "", append(deploy, "--json")...)
	if code != cli.ExitOK {
		t.Fatalf("deploy --json: exit %d\n%s%s", code, out, errOut)
	}
	var res struct {
		Image struct {
			Ref         string `json:"ref"`
			HealthCheck string `json:"health_check"`
		} `json:"image"`
		Flows []api.Registered `json:"flows"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("deploy --json: %v\n%s", err, out)
	}
	if res.Image.Ref != ref || len(res.Flows) != 2 || res.Image.HealthCheck == "" {
		t.Fatalf("deploy --json: %s\nwant the image %s, checked, and two flows", out, ref)
	}
	for _, r := range res.Flows {
		if r.Created || r.Version.Version != 1 {
			t.Errorf("deploy --json: flow %s created %v version %d, want unchanged version 1", r.Flow.Name, r.Created, r.Version.Version)
		}
	}

	// Another run configuration: new versions of the same image.
	code, out, errOut = runReeve(t, "", append(deploy, "--memory", "512Mi")...)
	if code != cli.ExitOK || !strings.Contains(out, "registered ingest version 2 (new)") || strings.Contains(out, "nothing new") {
		t.Errorf("deploy with another --memory: exit %d\n%s%s\nwant version 2 of each flow", code, out, errOut)
	}

	// The server refuses a run configuration's platform that is not one.
	spec := filepath.Join(t.TempDir(), "ingest.json")
	fs, _ := cl.Flows(t.Context(), "default", "ingest")
	d, err := cl.Flow(t.Context(), fs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spec, d.Versions[0].Spec, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runReeve(t, "", append([]string{"flow", "register", spec, "--image", ref, "--platform", "windows/amd64"}, conn...)...)
	if code != cli.ExitFailed || !strings.Contains(errOut, `run_config.platform "windows/amd64" is not valid: use linux/ARCH[/VARIANT]`) {
		t.Errorf("flow register --platform windows/amd64: exit %d, stderr %q; want the server's refusal", code, errOut)
	}
}

// TestDeployRefusesTaskTheImageLacks deploys a program whose specs, saved
// on this machine, name a task registered only when this machine's
// environment says so: the health check fails, nothing is pushed, nothing
// registered. Not parallel: it sets an environment variable.
func TestDeployRefusesTaskTheImageLacks(t *testing.T) {
	t.Setenv("HCFLOWS_EXTRA_TASK", "1")
	server := startServer(t)
	host, uploads := countingRegistry(t)
	code, out, errOut := runReeve(t, "", "deploy", hcflows, "--repo", host+"/hc", "--env", "INGEST_REGION=eu", "--healthcheck", "binary",
		"--server", server, "--token", adminToken)
	if code != cli.ExitFailed {
		t.Fatalf("deploy: exit %d, want %d\n%s%s", code, cli.ExitFailed, out, errOut)
	}
	for _, want := range []string{
		"by running the linux/" + runtime.GOARCH + " binary on this machine\n",
		"\nFAIL report: task extra: task \"hcflows.extra\" is not registered in this program; build the image from the program that defines it\n",
		"register every task unconditionally, at package level",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errOut)
		}
	}
	if out != "" {
		t.Errorf("stdout = %q, want nothing", out)
	}
	if n := uploads(); n != 0 {
		t.Errorf("the registry got %d upload requests, want none", n)
	}
	cl, err := client.New(server, adminToken)
	if err != nil {
		t.Fatal(err)
	}
	if fs, err := cl.Flows(t.Context(), "default", ""); err != nil || len(fs) != 0 {
		t.Errorf("flows %v (%v), want none registered", fs, err)
	}
}

// TestDeployUsage checks the command line errors of deploy: nothing is
// built or pushed.
func TestDeployUsage(t *testing.T) {
	t.Parallel()
	noConfig := filepath.Join(t.TempDir(), "config.json")
	spec := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(spec, []byte(`{"spec_version":1,"name":"x","tasks":[{"id":"a","task":"a"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy", hcflows}, "--repo"},
		{[]string{"deploy", hcflows, "--repo", "localhost:5000/hc", "--run-env", "NOVALUE"}, `--run-env "NOVALUE": want NAME=value`},
		{[]string{"deploy", hcflows, "--repo", "localhost:5000/hc", "--run-platform", "arm64"}, `RunPlatform "arm64": give one linux platform`},
		{[]string{"deploy", hcflows, "--repo", "localhost:5000/hc", "--run-env", "DB_PASSWORD=hunter2"}, "--run-env DB_PASSWORD (its name says PASSWORD): looks like a credential, and run configurations are kept in clear"},
		{[]string{"flow", "register", spec, "--path", "/bin/true", "--env", "GITHUB_TOKEN=ghp_abc"}, "--env GITHUB_TOKEN (its name says TOKEN): looks like a credential"},
		{[]string{"deploy", hcflows, "--repo", "localhost:5000/hc", "--skip-healthcheck", "--healthcheck", "docker"}, "--skip-healthcheck and --healthcheck docker: give one of them"},
		{[]string{"deploy", hcflows, "--repo", "localhost:5000/hc", "--healthcheck", "maybe"}, `HealthCheck "maybe": use auto, docker, binary or skip`},
		{[]string{"deploy", hcflows, "--repo", "localhost:5000/hc", "--config", noConfig}, "no API token"},
	} {
		code, _, errOut := runReeve(t, "", tc.args...)
		if code != cli.ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("reeve %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, errOut, cli.ExitUsage, tc.want)
		}
	}
}

// TestDeploySkipHealthcheck deploys without the check: a warning, and the
// flows are registered.
func TestDeploySkipHealthcheck(t *testing.T) {
	t.Parallel()
	server := startServer(t)
	host, _ := countingRegistry(t)
	code, out, errOut := runReeve(t, "", "deploy", hcflows, "--repo", host+"/hc", "--skip-healthcheck", "--server", server, "--token", adminToken)
	if code != cli.ExitOK {
		t.Fatalf("deploy --skip-healthcheck: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "warning: skipping the health check: the image is pushed without proof that its flows load") || strings.Contains(errOut, "ok   ") {
		t.Errorf("stderr:\n%s\nwant the warning and no check lines", errOut)
	}
	if !strings.Contains(out, "registered ingest version 1 (new)") {
		t.Errorf("stdout:\n%s\nwant ingest registered", out)
	}
}
