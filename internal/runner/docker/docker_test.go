package docker_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/runner"
	"github.com/reevehq/reeve/internal/runner/docker"
	"github.com/reevehq/reeve/internal/runner/runnertest"
	"github.com/reevehq/reeve/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// timeout bounds every wait of these tests.
const timeout = 30 * time.Second

func TestConformance(t *testing.T) {
	t.Parallel()
	e := setup(t)
	gw := e.gateway(t, "bridge")
	runnertest.Run(t, runnertest.Config{
		New: func(t *testing.T, dir string) runner.Runner {
			// The test's temporary directories (the Recover test's
			// $RELEASE) are visible at the same paths in containers.
			tmp := filepath.Dir(dir)
			return e.runner(t, func(c *docker.Config) { c.Volumes = []string{tmp + ":" + tmp} })
		},
		Program: func(t *testing.T, script string) api.Storage {
			return api.Storage{Kind: docker.Kind, Image: e.push(t, e.reg, script, nil)}
		},
		Missing: func(t *testing.T) api.Storage {
			sum := sha256.Sum256([]byte(t.Name()))
			return api.Storage{Kind: docker.Kind, Image: e.reg + "/reeve-test/never-pushed@sha256:" + hex.EncodeToString(sum[:])}
		},
		Kind: docker.Kind,
		WantAPIURL: func(specURL string) string {
			return strings.Replace(specURL, "127.0.0.1", gw, 1)
		},
	})
}

// TestOOMKilled checks that a container the kernel kills for memory says
// so, naming its limit.
func TestOOMKilled(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.runner(t, nil)
	spec := e.spec(t, e.push(t, e.reg, "echo start\nexec dd if=/dev/zero of=/dev/null bs=256M count=1", nil))
	spec.Memory = "64Mi"
	out := runnertest.NewOutput()
	spec.Output = out.Add
	exit := runnertest.Wait(t, runnertest.Start(t, r, spec))
	if exit.Success() || exit.Signal != "SIGKILL (killed)" || exit.Code != 137 {
		t.Fatalf("exit = %+v, want killed (137, SIGKILL)\noutput:\n%s", exit, out)
	}
	for _, want := range []string{"out of memory", "64 MiB", "--memory"} {
		if !strings.Contains(exit.String(), want) {
			t.Errorf("the exit says %q, want it to say %q", exit, want)
		}
	}
}

// TestPullFails checks the errors of images that cannot be pulled or are
// absent: Start fails, naming the image and what to do.
func TestPullFails(t *testing.T) {
	t.Parallel()
	e := setup(t)
	closed := closedAddr(t)
	never := e.push(t, e.reg, "echo never pulled", nil)
	missing := e.reg + "/reeve-test/not-pushed@sha256:" + strings.Repeat("ab", 32)
	other := "linux/s390x" // not this engine's
	if runtime.GOARCH == "s390x" {
		other = "linux/riscv64"
	}
	armOnly := e.pushIndex(t, other)
	for _, tt := range []struct {
		name  string
		image string
		pull  docker.PullPolicy
		want  []string
	}{
		{"NotPushed", missing, docker.PullMissing, []string{"was it pushed? reeve deploy pushes it"}},
		{"NotPushedAlways", missing, docker.PullAlways, []string{"was it pushed?"}},
		{"RegistryUnreachable", closed + "/reeve-test/x@sha256:" + strings.Repeat("cd", 32), docker.PullMissing, []string{"unreachable", closed}},
		{"NoPlatform", armOnly, docker.PullMissing, []string{"has no variant for this engine's platform linux/" + runtime.GOARCH + ", only for " + other}},
		{"NeverAbsent", never, docker.PullNever, []string{"not present on this engine and --pull never", "docker pull " + never}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := e.runner(t, func(c *docker.Config) { c.Pull = tt.pull })
			h, err := r.Start(t.Context(), e.spec(t, tt.image))
			if err == nil {
				stop(h)
				t.Fatalf("Start of %s succeeded, want an error", tt.image)
			}
			t.Logf("the error: %v", err)
			for _, want := range append(tt.want, tt.image) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error %q does not say %q", err, want)
				}
			}
		})
	}
}

// TestPullAuth pulls from a registry that wants a password: without
// credentials the error says to log in; with them, from a credential
// helper of the agent user's Docker configuration, the pull works.
func TestPullAuth(t *testing.T) {
	// Not parallel: it sets DOCKER_CONFIG and PATH.
	e := setup(t)
	const user, password = "reeve", "s3cret"
	reg := authRegistry(t, user, password)
	image := e.push(t, reg, "echo pulled with a password", &authn.Basic{Username: user, Password: password})

	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials
	r := e.runner(t, func(c *docker.Config) { c.Keychain = authn.DefaultKeychain })
	_, err := r.Start(t.Context(), e.spec(t, image))
	if err == nil {
		t.Fatal("Start without credentials succeeded, want access denied")
	}
	t.Logf("the error: %v", err)
	for _, want := range []string{image, "access denied", "docker login " + reg} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}

	// The credentials come from a credential helper, as with `docker login`
	// on a machine with a credential store.
	cfgDir, binDir := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(cfgDir, "config.json"), fmt.Sprintf(`{"credHelpers": {%q: "reeve-test"}}`, reg), 0o600)
	writeFile(t, filepath.Join(binDir, "docker-credential-reeve-test"), fmt.Sprintf(`#!/bin/sh
read server
echo '{"ServerURL": "'"$server"'", "Username": %q, "Secret": %q}'
`, user, password), 0o755)
	t.Setenv("DOCKER_CONFIG", cfgDir)
	t.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	spec := e.spec(t, image)
	out := runnertest.NewOutput()
	spec.Output = out.Add
	notes := runnertest.NewOutput()
	spec.Note = notes.Note
	exit := runnertest.Wait(t, runnertest.Start(t, r, spec))
	if !exit.Success() || !out.Has(runner.Stdout, "pulled with a password") {
		t.Fatalf("exit = %+v, want status 0 and the program's line\noutput:\n%s", exit, out)
	}
	if !notes.Contains("pulled the image " + image) {
		t.Errorf("no note of the pull:\n%s", notes)
	}
}

// TestAPIURL checks the server address containers get: a loopback address
// is rewritten to the network's gateway and relayed to a server that
// listens on loopback only, and not relayed to a server that listens on all
// addresses; the host network and --api-url take it as it is, and so does
// an https address (whose certificate would not match the gateway's).
func TestAPIURL(t *testing.T) {
	t.Parallel()
	e := setup(t)
	serverURL := server(t, "127.0.0.1")
	u, _ := url.Parse(serverURL)
	port := u.Port()
	gw := e.gateway(t, "bridge")
	// A server on the gateway address, which containers reach as it is.
	givenURL := server(t, gw)
	// A server on all addresses, which containers reach at the gateway.
	allURL, _ := url.Parse(server(t, "0.0.0.0"))
	allPort := allURL.Port()
	allLoopback := "http://127.0.0.1:" + allPort + "/reeve"
	httpsURL := strings.Replace(serverURL, "http://", "https://", 1)
	image := e.push(t, e.reg, `echo "url=$REEVE_API_URL"; wget -qO- "$REEVE_API_URL/ping"; echo`, nil)

	for _, tt := range []struct {
		name      string
		config    func(*docker.Config)
		specURL   string // "" for serverURL
		wantURL   string
		wantNote  []string // "" for none
		wantRelay string   // the container's relay label
		noReach   bool     // the container cannot reach the server
	}{
		{"Relayed", nil, "", "http://" + gw + ":" + port + "/reeve", []string{
			"the server address " + serverURL + " is loopback",
			"the container calls http://" + gw + ":" + port + "/reeve instead",
			`relayed by the agent to 127.0.0.1:` + port,
			"--api-url",
		}, gw + ":" + port + ">127.0.0.1:" + port, false},
		{"ServerOnAllAddresses", nil, allLoopback, "http://" + gw + ":" + allPort + "/reeve", []string{
			"the container calls http://" + gw + ":" + allPort + "/reeve instead",
			"where the server listens too",
		}, "", false},
		{"HostNetwork", func(c *docker.Config) { c.Network = "host" }, "", serverURL, nil, "", false},
		{"Given", func(c *docker.Config) { c.APIURL = givenURL }, "", givenURL, nil, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: the relay of one runner would serve the others.
			r := e.runner(t, tt.config)
			spec := e.spec(t, image)
			spec.APIURL = serverURL
			if tt.specURL != "" {
				spec.APIURL = tt.specURL
			}
			out, notes := runnertest.NewOutput(), runnertest.NewOutput()
			spec.Output, spec.Note = out.Add, notes.Note
			var relayLabel string
			spec.Output = func(l runner.Line) {
				if strings.HasPrefix(l.Text, "url=") { // the container is there (until its output was read): look at it
					relayLabel = e.labels(spec.FlowRunID)[docker.LabelAPIRelay]
				}
				out.Add(l)
			}
			exit := runnertest.Wait(t, runnertest.Start(t, r, spec))
			if !exit.Success() {
				t.Fatalf("exit = %+v\noutput:\n%s", exit, out)
			}
			t.Logf("notes:\n%s", notes)
			if !out.Has(runner.Stdout, "url="+tt.wantURL) {
				t.Errorf("the container's REEVE_API_URL is not %s:\n%s", tt.wantURL, out)
			}
			if reached := out.Has(runner.Stdout, "pong from the server"); reached == tt.noReach {
				t.Errorf("the container reached the server: %v, want %v:\n%s", reached, !tt.noReach, out)
			}
			if relayLabel != tt.wantRelay {
				t.Errorf("the container's label %s = %q, want %q", docker.LabelAPIRelay, relayLabel, tt.wantRelay)
			}
			for _, want := range tt.wantNote {
				if !notes.Contains(want) {
					t.Errorf("no note saying %q:\n%s", want, notes)
				}
			}
			if tt.wantNote == nil && notes.Contains("loopback") {
				t.Errorf("a note about a rewrite that did not happen:\n%s", notes)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}

	// An https server on loopback: no address would match its
	// certificate, so the run fails at once, saying what to do.
	t.Run("HTTPS", func(t *testing.T) {
		r := e.runner(t, nil)
		spec := e.spec(t, image)
		spec.APIURL = httpsURL
		h, err := r.Start(t.Context(), spec)
		if err == nil {
			stop(h)
			t.Fatal("a container was started for a loopback https server")
		}
		for _, want := range []string{"the server address " + httpsURL + " is loopback", "certificate would not match", "--api-url"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error %q does not say %q", err, want)
			}
		}
		if errors.Is(err, runner.ErrUnavailable) {
			t.Errorf("the error %q is ErrUnavailable: the agent would stop claiming for a configuration mistake", err)
		}
	})
}

// TestRelayAfterRestart checks that a container whose server address the
// runner relays keeps reaching the server after the agent restarted.
func TestRelayAfterRestart(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tmp := t.TempDir()
	volumes := func(c *docker.Config) { c.Volumes = []string{tmp + ":" + tmp} }
	image := e.push(t, e.reg, `echo started
while [ ! -e "$RELEASE" ]; do sleep 0.05; done
wget -qO- "$REEVE_API_URL/ping"; echo`, nil)
	spec := e.spec(t, image)
	spec.APIURL = server(t, "127.0.0.1")
	spec.Env = map[string]string{"RELEASE": filepath.Join(tmp, "release")}
	out := runnertest.NewOutput()
	spec.Output = out.Add

	r1 := e.runner(t, volumes)
	h1, err := r1.Start(t.Context(), spec) // setup's cleanup removes the container
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	out.WaitFor(t, runner.Stdout, "started")
	if err := r1.Close(); err != nil { // the agent stops, and its relay with it
		t.Fatal(err)
	}

	r2 := e.runner(t, volumes)
	out2 := runnertest.NewOutput()
	h2, err := r2.Recover(t.Context(), h1.Saved(), out2.Add)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	writeFile(t, spec.Env["RELEASE"], "", 0o644)
	if exit := runnertest.Wait(t, h2); !exit.Success() || !out2.Has(runner.Stdout, "pong from the server") {
		t.Errorf("exit = %+v, want status 0 and the server's answer\noutput:\n%s", exit, out2)
	}
}

// TestRelaySharedByAgents plays two agents on one machine whose runs call
// the same loopback server: each relays the gateway's address for its own
// containers (and labels them so), so that the containers of the second
// keep reaching the server when the first exits.
func TestRelaySharedByAgents(t *testing.T) {
	t.Parallel()
	e := setup(t)
	tmp := t.TempDir()
	volumes := func(c *docker.Config) { c.Volumes = []string{tmp + ":" + tmp} }
	serverURL := server(t, "127.0.0.1")
	u, _ := url.Parse(serverURL)
	gw := e.gateway(t, "bridge")
	image := e.push(t, e.reg, `echo started
while [ ! -e "$RELEASE" ]; do sleep 0.05; done
wget -qO- "$REEVE_API_URL/ping"; echo`, nil)
	run := func(r *docker.Runner, release string) (runner.Spec, runner.Handle, *runnertest.Output, *runnertest.Output) {
		spec := e.spec(t, image)
		spec.APIURL = serverURL
		spec.Env = map[string]string{"RELEASE": filepath.Join(tmp, release)}
		out, notes := runnertest.NewOutput(), runnertest.NewOutput()
		spec.Output, spec.Note = out.Add, notes.Note
		h := runnertest.Start(t, r, spec)
		out.WaitFor(t, runner.Stdout, "started")
		return spec, h, out, notes
	}

	a := e.runner(t, volumes)
	_, hA, outA, _ := run(a, "a")
	// Another agent of the machine (another name), which must not count on
	// the first one's relay.
	b := e.runner(t, func(c *docker.Config) { volumes(c); c.Agent = e.agent + "-b" })
	specB, hB, outB, notesB := run(b, "b")
	wantLabel := gw + ":" + u.Port() + ">127.0.0.1:" + u.Port()
	if got := e.labels(specB.FlowRunID)[docker.LabelAPIRelay]; got != wantLabel {
		t.Errorf("the second agent's container has the label %s = %q, want %q", docker.LabelAPIRelay, got, wantLabel)
	}
	if !notesB.Contains("relayed by the agent") || notesB.Contains("where the server listens too") {
		t.Errorf("the second agent's note does not say it relays:\n%s", notesB)
	}

	writeFile(t, filepath.Join(tmp, "a"), "", 0o644)
	if exit := runnertest.Wait(t, hA); !exit.Success() || !outA.Has(runner.Stdout, "pong from the server") {
		t.Errorf("the first agent's container: exit = %+v, want status 0 and the server's answer\noutput:\n%s", exit, outA)
	}
	if err := a.Close(); err != nil { // the first agent exits, and its relay with it
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tmp, "b"), "", 0o644)
	if exit := runnertest.Wait(t, hB); !exit.Success() || !outB.Has(runner.Stdout, "pong from the server") {
		t.Errorf("the second agent's container, after the first agent exited: exit = %+v, want status 0 and the server's answer\noutput:\n%s", exit, outB)
	}
}

// TestAgentEnv checks that the agent's variables reach every container,
// under the run configuration's and the contract's.
func TestAgentEnv(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.runner(t, func(c *docker.Config) {
		c.Env = map[string]string{"REGION": "eu-west-1", "LEVEL": "from the agent", runner.EnvFlowRunID: "not the run"}
	})
	spec := e.spec(t, e.push(t, e.reg, `echo "region=$REGION level=$LEVEL run=$REEVE_FLOW_RUN_ID"`, nil))
	spec.Env = map[string]string{"LEVEL": "from the run"}
	out := runnertest.NewOutput()
	spec.Output = out.Add
	exit := runnertest.Wait(t, runnertest.Start(t, r, spec))
	want := "region=eu-west-1 level=from the run run=" + spec.FlowRunID
	if !exit.Success() || !out.Has(runner.Stdout, want) {
		t.Errorf("exit = %+v, want status 0 and %q\noutput:\n%s", exit, want, out)
	}
	if _, err := docker.New(t.Context(), docker.Config{Client: e.cl, Agent: e.agent, Env: map[string]string{"A=B": "c"}}); err == nil || !strings.Contains(err.Error(), `"A=B"`) {
		t.Errorf("New with the variable name A=B: %v, want an error naming it", err)
	}
}

// TestEngineGoesAway checks a runner whose engine stops answering after
// New: Start fails with an error that is ErrUnavailable and names the
// engine, and so does Check, which passes while the engine answers.
func TestEngineGoesAway(t *testing.T) {
	t.Parallel()
	e := setup(t)
	if err := e.runner(t, nil).Check(t.Context()); err != nil {
		t.Errorf("Check on a working engine: %v", err)
	}
	image := e.push(t, e.reg, "echo never started", nil)

	// The engine, behind a socket of the test's that it closes.
	dir, err := os.MkdirTemp("", "reeve-engine-") // short: socket paths are
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	host := "unix://" + filepath.Join(dir, "engine.sock")
	p := engineProxy(t, filepath.Join(dir, "engine.sock"), e.cl.DaemonHost())
	cl, err := client.New(client.FromEnv, client.WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	r := e.runner(t, func(c *docker.Config) { c.Client = cl })
	if err := r.Check(t.Context()); err != nil {
		t.Fatalf("Check through the proxy: %v", err)
	}

	// The engine goes away while it pulls: the pull's stream breaks.
	reg, pulling := stuckRegistry(t)
	stuck := reg + "/reeve-test/stuck@sha256:" + strings.Repeat("34", 32)
	go func() {
		select {
		case <-pulling:
		case <-time.After(timeout):
		}
		p.close()
	}()
	h, err := r.Start(t.Context(), e.spec(t, stuck))
	if err == nil {
		stop(h)
		t.Fatal("Start succeeded while the engine went away")
	}
	t.Logf("Start, as the engine goes away: %v", err)
	if !errors.Is(err, runner.ErrUnavailable) || !strings.Contains(err.Error(), host) {
		t.Errorf("the error of Start %q is not ErrUnavailable naming %s", err, host)
	}
	p.close()

	h, err = r.Start(t.Context(), e.spec(t, image))
	if err == nil {
		stop(h)
		t.Fatal("Start succeeded without an engine")
	}
	t.Logf("Start: %v", err)
	if !errors.Is(err, runner.ErrUnavailable) {
		t.Errorf("the error of Start %q is not ErrUnavailable", err)
	}
	for _, want := range []string{image, "the Docker engine at " + host + " is unreachable"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error of Start %q does not say %q", err, want)
		}
	}
	err = r.Check(t.Context())
	t.Logf("Check: %v", err)
	if !errors.Is(err, runner.ErrUnavailable) {
		t.Errorf("Check without an engine: %v, want ErrUnavailable", err)
	}
	if err == nil || !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "start Docker") {
		t.Errorf("the error of Check %q does not name %s and what to do", err, host)
	}
}

// TestPullTimeout checks that a run's log says when its image's pull
// begins, and that a pull that does not end fails once it took too long.
func TestPullTimeout(t *testing.T) {
	t.Parallel()
	e := setup(t)
	reg, _ := stuckRegistry(t)
	image := reg + "/reeve-test/stuck@sha256:" + strings.Repeat("12", 32)
	r := e.runner(t, func(c *docker.Config) { c.PullTimeout = 2 * time.Second })
	spec := e.spec(t, image)
	notes := runnertest.NewOutput()
	spec.Note = notes.Note
	began := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	h, err := r.Start(ctx, spec)
	if err == nil {
		stop(h)
		t.Fatal("Start succeeded, want the pull to time out")
	}
	t.Logf("the error: %v (after %v)", err, time.Since(began))
	if d := time.Since(began); d > 20*time.Second {
		t.Errorf("Start failed after %v, want about the pull timeout, 2s", d)
	}
	for _, want := range []string{"took too long", "within 2s", image} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}
	if !notes.Contains("pulling the image " + image) {
		t.Errorf("no note of the pull's beginning:\n%s", notes)
	}
}

// TestContainer checks what a running container is made of: limits,
// labels, name, command.
func TestContainer(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.runner(t, nil)
	spec := e.spec(t, e.push(t, e.reg, "echo ready\nwhile :; do sleep 0.05; done", nil))
	spec.CPU, spec.Memory = "500m", "96Mi"
	spec.Attempt = 3
	out := runnertest.NewOutput()
	spec.Output = out.Add
	h := runnertest.Start(t, r, spec)
	out.WaitFor(t, runner.Stdout, "ready")

	c := e.container(t, spec.FlowRunID)
	if c.Name != "/reeve-"+spec.FlowRunID+"-3" {
		t.Errorf("container name %q, want /reeve-%s-3", c.Name, spec.FlowRunID)
	}
	if got, want := c.HostConfig.NanoCPUs, int64(500_000_000); got != want {
		t.Errorf("NanoCPUs = %d, want %d", got, want)
	}
	if got, want := c.HostConfig.Memory, int64(96<<20); got != want {
		t.Errorf("Memory = %d, want %d", got, want)
	}
	for k, v := range map[string]string{
		docker.LabelAgent: e.agent, docker.LabelFlowRunID: spec.FlowRunID,
		docker.LabelAttempt: "3", docker.LabelManagedBy: "reeve",
	} {
		if got := c.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if got := strings.Join(c.Config.Cmd, " "); got != runner.Command {
		t.Errorf("command %q, want %q", got, runner.Command)
	}
	if err := h.Stop(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if exit := runnertest.Wait(t, h); exit.Signal != "SIGKILL (killed)" {
		t.Errorf("exit = %+v, want killed", exit)
	}
	// Once it ended, the container is gone.
	if _, err := e.cl.ContainerInspect(t.Context(), c.ID, client.ContainerInspectOptions{}); err == nil {
		t.Errorf("container %s is still there after the program ended", c.ID)
	}
}

// TestStartRejects checks specs the runner refuses before it pulls.
func TestStartRejects(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r := e.runner(t, nil)
	image := e.reg + "/reeve-test/unused@sha256:" + strings.Repeat("ef", 32)
	for _, tt := range []struct {
		name string
		edit func(*runner.Spec)
		want string
	}{
		{"Local", func(s *runner.Spec) { s.Storage = api.Storage{Kind: "local", Path: "/opt/flow"} }, "a Docker agent runs only images"},
		{"CPU", func(s *runner.Spec) { s.CPU = "lots" }, `the CPU limit "lots" is not a number of cores`},
		{"Memory", func(s *runner.Spec) { s.Memory = "512m" }, `did you mean 512Mi?`},
		{"Platform", func(s *runner.Spec) { s.Platform = "amd64" }, `the platform "amd64" is not OS/ARCH`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := e.spec(t, image)
			tt.edit(&spec)
			h, err := r.Start(t.Context(), spec)
			if err == nil {
				stop(h)
				t.Fatal("Start succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("the error %q does not say %q", err, tt.want)
			}
			if tt.name == "Local" && !errors.Is(err, runner.ErrUnsupported) {
				t.Errorf("the error %q is not ErrUnsupported", err)
			}
		})
	}
}

// TestFindAndRecover plays an agent that restarts without its records: a
// new runner finds the running container by label, with its token, removes
// the leftover of a run that ended, and watches the running one again.
func TestFindAndRecover(t *testing.T) {
	t.Parallel()
	e := setup(t)
	image := e.push(t, e.reg, `echo "before"
trap 'echo "got TERM"; exit 5' TERM
while :; do sleep 0.05; done`, nil)

	r1 := e.runner(t, nil)
	spec := e.spec(t, image)
	spec.Attempt = 2
	out := runnertest.NewOutput()
	spec.Output = out.Add
	h1, err := r1.Start(t.Context(), spec) // setup's cleanup removes the container
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	out.WaitFor(t, runner.Stdout, "before")
	if err := r1.Close(); err != nil { // the agent stops; the container runs on
		t.Fatal(err)
	}

	// A container of this agent that ended while the agent was away.
	leftover := e.leftover(t, image)

	r2 := e.runner(t, nil)
	found, err := r2.Find(t.Context())
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	if len(found) != 1 {
		t.Fatalf("Find found %d programs, want 1: %+v", len(found), found)
	}
	f := found[0]
	if f.FlowRunID != spec.FlowRunID || f.Attempt != 2 || f.Token != spec.APIToken || f.Program != image {
		t.Errorf("found %+v, want run %s attempt 2, token %s, program %s", f, spec.FlowRunID, spec.APIToken, image)
	}
	if f.Saved.ID != h1.ID() || f.Saved.Runner != docker.Kind {
		t.Errorf("found the record %+v, want the handle's ID %q", f.Saved, h1.ID())
	}
	if _, err := e.cl.ContainerInspect(t.Context(), leftover, client.ContainerInspectOptions{}); err == nil {
		t.Errorf("the exited leftover container %s is still there", leftover)
	}

	out2 := runnertest.NewOutput()
	h2, err := r2.Recover(t.Context(), f.Saved, out2.Add)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if err := h2.Stop(t.Context(), timeout); err != nil {
		t.Fatal(err)
	}
	exit := runnertest.Wait(t, h2)
	if exit.Code != 5 {
		t.Errorf("exit = %+v, want status 5 from the TERM trap", exit)
	}
	if !out2.Has(runner.Stdout, "got TERM") || out2.Has(runner.Stdout, "before") {
		t.Errorf("the recovered output is not exactly what came after Recover:\n%s", out2)
	}
	if _, err := r2.Recover(t.Context(), f.Saved, nil); !errors.Is(err, runner.ErrGone) {
		t.Errorf("Recover of an ended container: %v, want ErrGone", err)
	}
	// The record of another agent's runner finds nothing.
	other := e.runner(t, func(c *docker.Config) { c.Agent = e.agent + "-other" })
	if _, err := other.Recover(t.Context(), f.Saved, nil); !errors.Is(err, runner.ErrGone) {
		t.Errorf("Recover by another agent: %v, want ErrGone", err)
	}
}

// TestEngineUnreachable checks that New names the engine it cannot reach.
func TestEngineUnreachable(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent.sock")
	r, err := docker.New(t.Context(), docker.Config{Agent: "a"})
	if err == nil {
		r.Close()
		t.Fatal("New succeeded without an engine")
	}
	t.Logf("the error: %v", err)
	if !errors.Is(err, runner.ErrUnavailable) {
		t.Errorf("the error %q is not ErrUnavailable", err)
	}
	for _, want := range []string{"the Docker engine at unix:///nonexistent.sock is unreachable", "start Docker or set DOCKER_HOST"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}
}

func TestParsePullPolicy(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]docker.PullPolicy{"": docker.PullMissing, "always": docker.PullAlways, "Missing": docker.PullMissing, "never": docker.PullNever} {
		if got, err := docker.ParsePullPolicy(in); err != nil || got != want {
			t.Errorf("ParsePullPolicy(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	_, err := docker.ParsePullPolicy("sometimes")
	if err == nil || !strings.Contains(err.Error(), "always, missing") || !strings.Contains(err.Error(), "never") {
		t.Errorf("ParsePullPolicy(sometimes) = %v, want an error naming always|missing|never", err)
	}
}

// env is what a test needs of the engine: a client, a registry, and an
// agent name of its own (so that Find sees the test's containers only).
type env struct {
	cl    *client.Client
	reg   string
	agent string

	mu     sync.Mutex
	images []string
}

func setup(t *testing.T) *env {
	t.Helper()
	e := &env{cl: testenv.Docker(t), reg: testenv.Registry(t), agent: "reeve-test-" + rand.Text()[:10]}
	t.Cleanup(func() {
		// Never leave a container or an image behind.
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		list, err := e.cl.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", docker.LabelAgent+"="+e.agent)})
		if err == nil {
			for _, c := range list.Items {
				_, _ = e.cl.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, img := range e.images {
			_, _ = e.cl.ImageRemove(ctx, img, client.ImageRemoveOptions{Force: true})
		}
	})
	return e
}

// runner returns a runner of the test's agent, closed when the test ends.
func (e *env) runner(t *testing.T, edit func(*docker.Config)) *docker.Runner {
	t.Helper()
	cfg := docker.Config{Client: e.cl, Agent: e.agent, Keychain: authn.NewMultiKeychain()}
	if edit != nil {
		edit(&cfg)
	}
	r, err := docker.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("docker.New: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func (e *env) spec(t *testing.T, image string) runner.Spec {
	return runner.Spec{
		FlowRunID: "run-" + strings.ToLower(rand.Text()[:12]),
		Attempt:   1,
		Storage:   api.Storage{Kind: docker.Kind, Image: image},
		APIURL:    "http://127.0.0.1:1/reeve",
		APIToken:  "reeve_run_token_" + rand.Text()[:8],
	}
}

// push pushes an image that runs the /bin/sh script to the registry reg
// and returns its digest reference; the engine's copy is removed when the
// test ends.
func (e *env) push(t *testing.T, reg, script string, auth authn.Authenticator) string {
	t.Helper()
	img := testenv.BusyboxBase(t)
	layer, err := scriptLayer(script)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Config.Entrypoint = []string{"/bin/sh", "/opt/test/script.sh"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(reg + "/reeve-test/" + strings.ToLower(rand.Text()[:8]) + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	opts := []remote.Option{remote.WithContext(t.Context()), remote.WithTransport(tr)}
	if auth != nil {
		opts = append(opts, remote.WithAuth(auth))
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		t.Fatalf("push %s: %v", tag, err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref := tag.Context().Digest(digest.String()).String()
	e.mu.Lock()
	e.images = append(e.images, ref)
	e.mu.Unlock()
	return ref
}

// pushIndex pushes an image index with one image, of platform, and
// returns its digest reference.
func (e *env) pushIndex(t *testing.T, platform string) string {
	t.Helper()
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		t.Fatal(err)
	}
	img := testenv.BusyboxBase(t)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = p.OS, p.Architecture
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	tag, err := name.NewTag(e.reg + "/reeve-test/" + strings.ToLower(rand.Text()[:8]) + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	if err := remote.WriteIndex(tag, idx, remote.WithContext(t.Context()), remote.WithTransport(tr)); err != nil {
		t.Fatalf("push %s: %v", tag, err)
	}
	digest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(digest.String()).String()
}

func scriptLayer(script string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte(script + "\n")
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "opt/", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "opt/test/", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "opt/test/script.sh", Mode: 0o755, Size: int64(len(body))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	if _, err := tw.Write(body); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// gateway returns the gateway address of a Docker network.
func (e *env) gateway(t *testing.T, network string) string {
	t.Helper()
	res, err := e.cl.NetworkInspect(t.Context(), network, client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Network.IPAM.Config {
		if c.Gateway.Is4() {
			return c.Gateway.String()
		}
	}
	// The default bridge often does not say: its interface has it.
	if ifc, err := net.InterfaceByName(res.Network.Options["com.docker.network.bridge.name"]); err == nil {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	t.Fatalf("the Docker network %s has no IPv4 gateway", network)
	return ""
}

// container inspects the container of a flow run.
func (e *env) container(t *testing.T, flowRunID string) container.InspectResponse {
	t.Helper()
	list, err := e.cl.ContainerList(t.Context(), client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", docker.LabelFlowRunID+"="+flowRunID)})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("the container of run %s: %d found, %v", flowRunID, len(list.Items), err)
	}
	res, err := e.cl.ContainerInspect(t.Context(), list.Items[0].ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Container
}

// labels returns the labels of the container of a flow run, or nil.
func (e *env) labels(flowRunID string) map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	list, err := e.cl.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", docker.LabelFlowRunID+"="+flowRunID)})
	if err != nil || len(list.Items) != 1 {
		return nil
	}
	return list.Items[0].Labels
}

// leftover makes the container an agent that stopped leaves of a run
// that ended: labelled, exited. It returns its ID.
func (e *env) leftover(t *testing.T, image string) string {
	t.Helper()
	ctx := t.Context()
	if res, err := e.cl.ImagePull(ctx, image, client.ImagePullOptions{}); err != nil {
		t.Fatal(err)
	} else if err := res.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := e.cl.ContainerCreate(ctx, client.ContainerCreateOptions{
		Image: image,
		Config: &container.Config{
			Entrypoint: []string{"/bin/true"},
			Labels: map[string]string{
				docker.LabelAgent: e.agent, docker.LabelFlowRunID: "run-ended",
				docker.LabelAttempt: "1", docker.LabelManagedBy: "reeve",
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := e.cl.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := e.cl.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Result:
	case err := <-w.Error:
		t.Fatal(err)
	}
	return c.ID
}

// authRegistry starts a registry that wants HTTP basic authentication.
func authRegistry(t *testing.T, user, password string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := &http.Server{ReadHeaderTimeout: timeout, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="reeve-test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	})}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// stuckRegistry starts a registry, on a loopback port, whose requests
// never end (until the test does). The channel it returns is closed on its
// first request.
func stuckRegistry(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done, hit := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv := &http.Server{ReadHeaderTimeout: timeout, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(hit) })
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { close(done); srv.Close() })
	return ln.Addr().String(), hit
}

// proxy relays a unix socket to the Docker engine, until close.
type proxy struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// engineProxy relays the unix socket path to the engine at host (unix://
// or tcp://) until its close, or the test's end.
func engineProxy(t *testing.T, path, host string) *proxy {
	t.Helper()
	network, addr, ok := strings.Cut(host, "://")
	if !ok || (network != "unix" && network != "tcp") {
		t.Skipf("the engine's address %s is not unix:// or tcp://", host)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, conns: map[net.Conn]bool{}}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() {
				defer c.Close()
				s, err := net.Dial(network, addr)
				if err != nil {
					return
				}
				defer s.Close()
				if !p.track(c, s) {
					return
				}
				var wg sync.WaitGroup
				wg.Go(func() { _, _ = io.Copy(s, c); s.Close() })
				wg.Go(func() { _, _ = io.Copy(c, s); c.Close() })
				wg.Wait()
			})
		}
	})
	t.Cleanup(p.close)
	return p
}

func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

// close stops the proxy and its connections.
func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	if p.conns == nil {
		p.mu.Unlock()
		return
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// server starts an HTTP server on host that answers /reeve/ping, and
// returns its URL (with the path /reeve).
func server(t *testing.T, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: timeout, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reeve/ping" {
			io.WriteString(w, "pong from the server")
		}
	})}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/reeve"
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// stop stops a program and waits for it, for cleanups.
func stop(h runner.Handle) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = h.Stop(ctx, 0)
	_, _ = h.Wait(ctx)
}
