package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/agent"
	"github.com/reevehq/reeve/internal/runner/docker"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/testenv"
)

// dockerEnv is a server, a real OCI registry on loopback and a Docker
// agent on the real engine, with the agent's volume: the flow programs'
// directory, mounted at /data.
type dockerEnv struct {
	*env
	engine   *client.Client
	registry string            // host:port
	agents   map[string]string // agent names given → unique names
}

func newDockerEnv(t testing.TB) *dockerEnv {
	t.Helper()
	engine := testenv.Docker(t)
	e := &dockerEnv{env: newEnvWith(t, onSQLite, calm), engine: engine, registry: testenv.Registry(t), agents: map[string]string{}}
	// The containers run as the image's non-root user.
	if err := os.Chmod(e.dir, 0o777); err != nil {
		t.Fatal(err)
	}
	// Remove the images the agents pulled from this test's registry.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		imgs, err := engine.ImageList(ctx, client.ImageListOptions{})
		if err != nil {
			return
		}
		for _, im := range imgs.Items {
			for _, ref := range append(im.RepoDigests, im.RepoTags...) {
				if strings.HasPrefix(ref, e.registry+"/") {
					_, _ = engine.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
				}
			}
		}
	})
	return e
}

// pushBusybox pushes the busybox base (a non-Go tool, made without any
// registry) to the test registry and returns its reference.
func (e *dockerEnv) pushBusybox() string {
	e.t.Helper()
	ref, err := name.ParseReference(e.registry + "/base/busybox:1")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := remote.Write(ref, testenv.BusyboxBase(e.t), remote.WithContext(e.ctx)); err != nil {
		e.t.Fatalf("push the busybox base: %v", err)
	}
	return ref.String()
}

// deploy deploys the dockerflows program on base with the labels and
// returns what reeve deploy printed.
func (e *dockerEnv) deploy(base, repo string, extra ...string) string {
	e.t.Helper()
	args := append([]string{"deploy", "testdata/dockerflows", "--repo", e.registry + "/" + repo,
		"--project", "default", "--base-image", base, "--labels", "docker"}, extra...)
	return e.reeve(args...)
}

// startDockerAgent starts a Docker agent in this process until the test
// ends or stop is called.
func (e *dockerEnv) startDockerAgent(name string, mut func(*docker.Config), amut ...func(*agent.Config)) (stop func()) {
	e.t.Helper()
	// Agent names are unique to the test run, so that containers a failed
	// run left behind are never adopted by another; they are removed at
	// the end.
	name = e.agentName(name)
	cfg := docker.Config{Client: e.engine, Agent: name, Volumes: []string{e.dir + ":/data"}, Logger: slog.New(slog.DiscardHandler)}
	if mut != nil {
		mut(&cfg)
	}
	r, err := docker.New(e.ctx, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	acfg := agent.Config{
		Client: e.cl, Runner: r, Kind: docker.Kind, Name: name, Labels: []string{"docker"}, MaxRuns: 4,
		DataDir: e.t.TempDir(), StopRunsOnExit: true, StopGrace: 5 * time.Second, HeartbeatInterval: time.Second,
		ClaimWait: 5 * time.Second, FlushInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	}
	for _, m := range amut {
		m(&acfg)
	}
	a, err := agent.New(acfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Run(ctx); err != nil && ctx.Err() == nil {
			e.t.Errorf("docker agent %s: %v", name, err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			r.Close()
		})
	}
	e.t.Cleanup(stop)
	return stop
}

// agentName returns name made unique to this test environment, and
// removes the containers of the agent of that name when the test ends.
func (e *dockerEnv) agentName(name string) string {
	if n, ok := e.agents[name]; ok {
		return n // the same agent, started again
	}
	unique := fmt.Sprintf("%s-%08x", name, rand.Uint32())
	e.agents[name] = unique
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := e.engine.ContainerList(ctx, client.ContainerListOptions{
			All: true, Filters: make(client.Filters).Add("label", docker.LabelAgent+"="+unique),
		})
		if err != nil {
			return
		}
		for _, c := range res.Items {
			_, _ = e.engine.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		}
	})
	return unique
}

// logText returns run id's log as text, one line per record.
func (e *dockerEnv) logText(id string) string {
	e.t.Helper()
	lines, err := e.cl.Logs(e.ctx, id, clientLogQuery())
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines.Logs {
		b.WriteString(l.Level + " " + l.Message + "\n")
	}
	return b.String()
}

// done waits for run id to finish and its containers to be gone, and
// returns the run. The container's last lines may still be on their way
// to the server: wait for them with waitLog.
func (e *dockerEnv) done(id string) *api.FlowRunDetail {
	e.t.Helper()
	d := e.finished(id)
	deadline := time.Now().Add(60 * time.Second)
	for cs := e.containers(id); len(cs) > 0; cs = e.containers(id) {
		if time.Now().After(deadline) {
			e.t.Fatalf("the containers of run %s were not removed within 60s: %+v", id, cs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

// containers lists the containers of run id.
func (e *dockerEnv) containers(id string) []container.Summary {
	e.t.Helper()
	res, err := e.engine.ContainerList(e.ctx, client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("label", "dev.reeve.flow-run-id="+id),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Items
}

// TestDockerEndToEnd deploys a flow program twice, on a base with a
// non-Go tool and on scratch (both made without any registry), to a real
// OCI registry, and runs its flows through the server and a Docker agent
// on the real engine: the container reaches the server on loopback with
// nothing configured, calls the base's tool, and checkpoints results in
// the server's store and in a file:// store on the agent's volume. A
// container killed mid-run is found and its run resumes without running
// its finished tasks again; a run whose image cannot be pulled fails with
// that reason.
func TestDockerEndToEnd(t *testing.T) {
	e := newDockerEnv(t)
	busybox := e.pushBusybox()
	if out := e.deploy(busybox, "flows"); !strings.Contains(out, "registered") {
		t.Fatalf("reeve deploy printed:\n%s", out)
	}
	e.startDockerAgent("docker-1", nil)

	t.Run("tools", func(t *testing.T) {
		r := e.create("tools", `{"text":"reeve"}`)
		d := e.done(r.ID)
		e.waitLog(r.ID, `sha256sum of "reeve" is`)
		logs := e.logText(r.ID)
		if d.FlowRun.State.Kind != state.Success {
			t.Fatalf("tools ended %s\n%s\nlog:\n%s", d.FlowRun.State, history(d), logs)
		}
		for _, want := range []string{
			`sha256sum of "reeve" is`,                     // the base's tool ran in the container
			"is loopback, which a container cannot reach", // the agent said how the container reaches the server
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("the run's log lacks %q:\n%s", want, logs)
			}
		}
		results := map[string]*state.Result{}
		for _, tr := range d.TaskRuns {
			results[tr.Key] = tr.State.Result
		}
		// The tool's result is in the server's store (the default in
		// server runs), and it is the tool's output.
		tool := results["docker.tool"]
		if !tool.Persisted() || tool.Store != "reeve://server" {
			t.Fatalf("docker.tool's result %+v, want one in reeve://server", tool)
		}
		data, _, err := e.cl.GetResult(e.ctx, r.ID, tool.Key)
		if err != nil {
			t.Fatalf("read docker.tool's result from the server: %v", err)
		}
		var sum string
		if err := json.Unmarshal(data, &sum); err != nil || len(sum) != 64 {
			t.Errorf("docker.tool's result %q (%v), want a sha256 in hex", data, err)
		}
		// upper's result is in the file:// store on the agent's volume.
		upper := results["upper"]
		if !upper.Persisted() || upper.Store != "file:///data/results" {
			t.Fatalf("upper's result %+v, want one in file:///data/results", upper)
		}
		onVolume, err := os.ReadFile(filepath.Join(e.dir, "results", filepath.FromSlash(upper.Key)))
		if err != nil || !strings.Contains(string(onVolume), strings.ToUpper(sum)) {
			t.Errorf("upper's checkpoint on the volume: %q, %v; want %q", onVolume, err, strings.ToUpper(sum))
		}
	})

	t.Run("killed container resumes", func(t *testing.T) {
		r := e.create("resume", "")
		first := e.waitFile("started", nil)
		// Kill it once the server knows the first task finished (a state
		// still in the runner's 100 ms batch dies with it, and its task
		// runs again).
		e.wait(r.ID, "the first task's Success", func(d *api.FlowRunDetail) bool {
			for _, tr := range d.TaskRuns {
				if tr.Key == "before" && tr.State.Kind == state.Success {
					return true
				}
			}
			return false
		})
		cs := e.containers(r.ID)
		if len(cs) != 1 {
			t.Fatalf("containers of run %s: %+v, want one", r.ID, cs)
		}
		if _, err := e.engine.ContainerKill(e.ctx, cs[0].ID, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
			t.Fatal(err)
		}
		e.wait(r.ID, "a second attempt", func(d *api.FlowRunDetail) bool { return d.FlowRun.Attempt >= 2 })
		e.waitFile("started", func(s string) bool { return s != first })
		e.release()
		d := e.done(r.ID)
		if d.FlowRun.State.Kind != state.Success {
			t.Fatalf("resume ended %s\n%s", d.FlowRun.State, history(d))
		}
		if n := e.count("before", r.ID); n != 1 {
			t.Errorf("task before ran %d times, want once: the second attempt resumes after it", n)
		}
		if hist := history(d); !strings.Contains(hist, "SIGKILL") {
			t.Errorf("the history does not say the container was killed:\n%s", hist)
		}
	})

	t.Run("image cannot be pulled", func(t *testing.T) {
		missing := e.registry + "/flows@sha256:" + strings.Repeat("0", 64)
		if _, err := e.cl.RegisterFlow(e.ctx, api.RegisterFlow{
			Project: "default",
			Spec:    json.RawMessage(`{"spec_version":1,"name":"ghost","tasks":[{"id":"a","task":"a"}]}`),
			Storage: api.Storage{Kind: "docker", Image: missing},
			Labels:  []string{"docker"},
		}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r := e.create("ghost", "")
		d := e.finished(r.ID)
		t.Logf("the run failed %v after it was created: %s", time.Since(start).Round(time.Millisecond), d.FlowRun.State.Message)
		if msg := d.FlowRun.State.Message; d.FlowRun.State.Kind != state.Failed || !strings.Contains(msg, missing) ||
			!strings.Contains(msg, "does not have it") || !strings.Contains(msg, "reeve deploy pushes it") {
			t.Errorf("ghost ended %s, want Failed saying the registry does not have the image %s", d.FlowRun.State, missing)
		}
	})
}

// TestDockerAgentRestart: a Docker agent that exits leaves its containers
// running; started again with the same name (here on a new data
// directory, as on a new machine) it finds them by their labels, watches
// them again, and the server is still reachable from them; their runs
// finish on their first attempt.
func TestDockerAgentRestart(t *testing.T) {
	e := newDockerEnv(t)
	e.deploy("scratch", "restart")
	leave := func(c *agent.Config) { c.StopRunsOnExit = false }
	stop := e.startDockerAgent("docker-restart", nil, leave)
	r := e.create("resume", "")
	first := e.waitFile("started", nil)
	stop()
	if cs := e.containers(r.ID); len(cs) != 1 || cs[0].State != "running" {
		t.Fatalf("after the agent exited, the run's containers are %+v, want one running", cs)
	}

	e.startDockerAgent("docker-restart", nil)
	e.waitLog(r.ID, fmt.Sprintf("agent %q restarted and adopted the flow program", e.agentName("docker-restart")))
	e.release()
	d := e.done(r.ID)
	if d.FlowRun.State.Kind != state.Success || d.FlowRun.Attempt != 1 {
		t.Fatalf("the adopted run ended %s on attempt %d, want Success on attempt 1\n%s", d.FlowRun.State, d.FlowRun.Attempt, history(d))
	}
	if got := e.waitFile("started", nil); got != first {
		t.Errorf("the gate ran again in %s, want only in the adopted container %s", got, first)
	}
}

// waitLog waits for a line containing text in run id's log.
func (e *dockerEnv) waitLog(id, text string) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(e.logText(id), text) {
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s: no log line with %q within 60s; the log:\n%s", id, text, e.logText(id))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDockerNotAReeveProgram: an image whose program exits before a
// runner took the run (it is not a Reeve flow program) fails the run with
// its exit status and its last lines on stderr, not a run stuck in
// Submitted.
func TestDockerNotAReeveProgram(t *testing.T) {
	e := newDockerEnv(t)
	cfg, err := testenv.BusyboxBase(t).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Config.Entrypoint = []string{"/bin/sh", "-c", `echo "usage: not a reeve program" >&2; exit 3`, "sh"}
	img, err := mutate.ConfigFile(testenv.BusyboxBase(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(e.registry + "/notreeve:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(e.ctx)); err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cl.RegisterFlow(e.ctx, api.RegisterFlow{
		Project: "default",
		Spec:    json.RawMessage(`{"spec_version":1,"name":"notreeve","tasks":[{"id":"a","task":"a"}]}`),
		Storage: api.Storage{Kind: "docker", Image: e.registry + "/notreeve@" + digest.String()},
		Labels:  []string{"docker"},
	}); err != nil {
		t.Fatal(err)
	}
	e.startDockerAgent("docker-notreeve", nil)
	r := e.create("notreeve", "")
	d := e.done(r.ID)
	msg := d.FlowRun.State.Message
	if d.FlowRun.State.Kind != state.Failed {
		t.Fatalf("the run ended %s, want Failed\n%s", d.FlowRun.State, history(d))
	}
	for _, want := range []string{"exited with status 3 before its runner started", "usage: not a reeve program"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the run's reason %q lacks %q", msg, want)
		}
	}
}

// TestDockerBases deploys the program on scratch, the base every machine
// has, and on the default static base, and runs its pure-Go flow from
// each in a container as the image's non-root user; only the static base
// names that user and has CA certificates.
func TestDockerBases(t *testing.T) {
	e := newDockerEnv(t)
	e.startDockerAgent("docker-bases", nil)
	for _, tc := range []struct{ base, want string }{
		{"scratch", "as uid 65532, user unknown (no /etc/passwd), with no CA certificates; Paris is UTC+01:00"},
		{"static", "as uid 65532, user nonroot, with CA certificates; Paris is UTC+01:00"},
	} {
		e.deploy(tc.base, tc.base)
		r := e.create("hello", "")
		d := e.done(r.ID)
		if d.FlowRun.State.Kind != state.Success {
			t.Fatalf("hello on %s ended %s\n%s\nlog:\n%s", tc.base, d.FlowRun.State, history(d), e.logText(r.ID))
		}
		e.waitLog(r.ID, tc.want)
	}
}

// BenchmarkDockerFirstTask: the time from a run's creation to its first
// task running in a container, with the image already on the engine
// (median and 90th percentile of runs one after another): claim, create
// and start the container, the program's start, its first state report.
//
//	REEVE_TEST_REQUIRE=docker go test ./internal/e2e -run '^$' -bench DockerFirstTask -benchtime 1x
func BenchmarkDockerFirstTask(b *testing.B) {
	e := newDockerEnv(b)
	e.deploy("static", "bench")
	e.startDockerAgent("docker-bench", nil)
	// One run first: the image is pulled and the agent waits for claims.
	mustSucceed(b, e.finished(e.create("hello", "").ID))
	const n = 20
	var times, totals []time.Duration
	for b.Loop() {
		times, totals = times[:0], totals[:0]
		for range n {
			d := e.finished(e.create("hello", "").ID)
			mustSucceed(b, d)
			first := time.Time{}
			for _, tr := range d.TaskRuns {
				hist, err := e.cl.History(e.ctx, d.FlowRun.ID, tr.ID)
				if err != nil {
					b.Fatal(err)
				}
				for _, s := range hist {
					if s.Kind == state.Running && (first.IsZero() || s.Time.Before(first)) {
						first = s.Time
					}
				}
			}
			if first.IsZero() {
				b.Fatalf("run %s: no task was Running\n%s", d.FlowRun.ID, history(d))
			}
			times = append(times, first.Sub(d.FlowRun.CreatedAt))
			totals = append(totals, elapsed(d))
		}
	}
	slices.Sort(times)
	slices.Sort(totals)
	b.ReportMetric(float64(times[n/2].Microseconds())/1000, "ms-to-first-task-p50")
	b.ReportMetric(float64(times[n*9/10].Microseconds())/1000, "ms-to-first-task-p90")
	b.ReportMetric(float64(totals[n/2].Microseconds())/1000, "ms-run-p50")
}
