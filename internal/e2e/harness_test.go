package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/agent"
	"github.com/reevehq/reeve/internal/cli"
	"github.com/reevehq/reeve/internal/runner/process"
	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/secret"
	"github.com/reevehq/reeve/internal/server"
	"github.com/reevehq/reeve/internal/store"
	"github.com/reevehq/reeve/internal/store/postgres"
	"github.com/reevehq/reeve/internal/store/sqlite"
	"github.com/reevehq/reeve/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The life-cycle timings of the tests: short, so that a lost runner is
// found within 3 s, yet long enough that a runner on a loaded machine
// (these tests run flow programs in parallel under the race detector)
// does not miss three beats.
const (
	heartbeat     = time.Second
	submitTimeout = 30 * time.Second
)

var (
	buildOnce sync.Map // dir → *built
)

type built struct {
	once sync.Once
	path string
}

// program builds the Go main package in dir once per test binary.
func program(t testing.TB, dir, name string) string {
	t.Helper()
	v, _ := buildOnce.LoadOrStore(dir, &built{})
	b := v.(*built)
	b.once.Do(func() {
		out, err := os.MkdirTemp("", "reeve-e2e-bin-")
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(out, name)
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Dir = dir
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", dir, err, o)
		}
		b.path = bin
	})
	if b.path == "" {
		t.Fatalf("building %s failed in an earlier test", dir)
	}
	return b.path
}

// flowsBin is the e2e flow program.
func flowsBin(t testing.TB) string { return program(t, "testdata/flows", "flows") }

// env is a server (store, API over loopback HTTP, run monitor) that
// tests add agents to.
type env struct {
	t     testing.TB
	st    store.Store
	srv   *server.Server
	url   string
	admin string
	cl    *client.Client
	dir   string // E2E_DIR of the flow programs
	ctx   context.Context
}

type storeKind string

const (
	onSQLite   storeKind = "sqlite"
	onPostgres storeKind = "postgres"
)

// timings are a server's heartbeat interval and submit timeout.
type timings struct{ heartbeat, submitTimeout time.Duration }

// fast finds lost runners within seconds; calm is for tests that load the
// machine and are not about recovery (a runner starved of CPU for longer
// than fast's lapse would be declared lost, and its run executed twice).
var (
	fast = timings{heartbeat, submitTimeout}
	calm = timings{2 * time.Second, time.Minute}
)

func newEnv(t testing.TB, kind storeKind) *env { return newEnvWith(t, kind, fast) }

func newEnvWith(t testing.TB, kind storeKind, tm timings) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		st  store.Store
		err error
	)
	switch kind {
	case onSQLite:
		st, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "reeve.db"))
	case onPostgres:
		st, err = postgres.Open(ctx, testenv.Postgres(t))
	}
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Store: st, Sealer: secret.NewBox(secret.NewKey()), PollInterval: 50 * time.Millisecond,
		HeartbeatInterval: tm.heartbeat,
	})
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := srv.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	mon, err := scheduler.NewMonitor(scheduler.MonitorConfig{
		Store: st, Interval: 50 * time.Millisecond, Heartbeat: tm.heartbeat, SubmitTimeout: tm.submitTimeout, LateAfter: time.Second,
		Requeued: srv.RunsChanged,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { mon.Run(ctx) })
	cl, err := client.New(hs.URL, admin)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, srv: srv, url: hs.URL, admin: admin, cl: cl, dir: t.TempDir(), ctx: ctx}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		hs.CloseClientConnections()
		hs.Close()
		st.Close()
	})
	return e
}

// register registers the flow program's flows with itself.
func (e *env) register(bin string) {
	e.t.Helper()
	cmd := exec.Command(bin, "register", "--server", e.url, "--token", e.admin, "--project", "default")
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("%s register: %v\n%s", bin, err, out)
	}
}

// startAgent starts a process agent in this process until the test ends
// or stop is called.
func (e *env) startAgent(name string, labels []string, maxRuns int, extraEnv ...string) (stop func()) {
	e.t.Helper()
	dir := e.t.TempDir()
	envv := []string{"E2E_DIR=" + e.dir, "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	procs, err := process.New(process.Config{Dir: filepath.Join(dir, "output"), Env: append(envv, extraEnv...)})
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := agent.New(agent.Config{
		Client: e.cl, Runner: procs, Kind: "process", Name: name, Labels: labels, MaxRuns: maxRuns,
		DataDir: dir, StopRunsOnExit: true, HeartbeatInterval: time.Second, ClaimWait: 5 * time.Second,
		FlushInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Run(ctx); err != nil && ctx.Err() == nil {
			e.t.Errorf("agent %s: %v", name, err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return stop
}

// create creates a run of flow.
func (e *env) create(flow string, params string) api.FlowRun {
	e.t.Helper()
	req := api.CreateFlowRun{Project: "default", Flow: flow}
	if params != "" {
		req.Params = []byte(params)
	}
	c, err := e.cl.CreateFlowRun(e.ctx, req)
	if err != nil {
		e.t.Fatal(err)
	}
	return c.FlowRun
}

// wait polls run id until cond holds, failing after a generous deadline
// (a stuck run is a failure, not a hang).
func (e *env) wait(id, what string, cond func(*api.FlowRunDetail) bool) *api.FlowRunDetail {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var d *api.FlowRunDetail
	for {
		var err error
		d, err = e.cl.FlowRun(e.ctx, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if cond(d) {
			return d
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("flow run %s: waited 60s for %s; it is %s\nhistory:\n%s", id, what, d.FlowRun.State, history(d))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// finished waits for run id to finish.
func (e *env) finished(id string) *api.FlowRunDetail {
	e.t.Helper()
	return e.wait(id, "its end", func(d *api.FlowRunDetail) bool { return d.FlowRun.State.Kind.Finished() })
}

func history(d *api.FlowRunDetail) string {
	var b strings.Builder
	for _, s := range d.History {
		fmt.Fprintf(&b, "  %s %s\n", s.Time.Format("15:04:05.000"), s)
	}
	for _, tr := range d.TaskRuns {
		fmt.Fprintf(&b, "  task %s: %s\n", tr.Key, tr.State)
	}
	return b.String()
}

// calls returns the lines the flow program's tasks recorded.
func (e *env) calls() []string {
	b, err := os.ReadFile(filepath.Join(e.dir, "calls"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

// count counts the recorded calls of task in run.
func (e *env) count(task, runID string) int {
	return len(slices.DeleteFunc(e.calls(), func(l string) bool { return l != task+"_"+runID }))
}

// waitFile waits for a file in the flow programs' directory and returns
// its contents.
func (e *env) waitFile(name string, ok func(string) bool) string {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(e.dir, name))
		if err == nil && (ok == nil || ok(string(b))) {
			return string(b)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("waited 60s for %s", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// release lets the flow programs' gate tasks return.
func (e *env) release() {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, "release"), nil, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// reeve runs the reeve command in this process against the server.
func (e *env) reeve(args ...string) string {
	e.t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"REEVE_SERVER": e.url, "REEVE_TOKEN": e.admin, "REEVE_CONFIG": filepath.Join(e.dir, "config.json")}
	c := cli.New(cli.Options{Stdout: &out, Stderr: &errb, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if code := c.Run(e.ctx, args); code != 0 {
		e.t.Fatalf("reeve %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.String()
}

func clientLogQuery() client.LogQuery { return client.LogQuery{Limit: 1000} }
