package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/agent"
	"github.com/reevehq/reeve/internal/runner/process"
	"github.com/reevehq/reeve/internal/secret"
	"github.com/reevehq/reeve/internal/server"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store/sqlite"
	"github.com/reevehq/reeve/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// timeout bounds every wait: a broken agent fails a test, never hangs it.
const timeout = 30 * time.Second

// env is a real server on SQLite over loopback HTTP, the test flow
// program built from testdata/flowprog, and a directory for its files.
type env struct {
	url        string
	admin      *client.Client
	agentToken string
	prog       string // the built flow program
	dir        string // FLOWPROG_DIR
}

func newEnv(t *testing.T, maxRecoveries int) *env {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "reeve.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := server.New(server.Config{
		Store: st, Sealer: secret.NewBox(secret.NewKey()),
		PollInterval: 20 * time.Millisecond, MaxRecoveries: maxRecoveries,
	})
	if err != nil {
		t.Fatal(err)
	}
	adminSecret, _, err := srv.Bootstrap(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptestServer(t, srv)
	admin, err := client.New(hs, adminSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(t.Context(), api.CreateToken{Name: "agent", Role: api.RoleAgent})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		url: hs, admin: admin, agentToken: tok.Secret,
		prog: testenv.BuildProgram(t, filepath.Join("testdata", "flowprog"), "flowprog"),
		dir:  t.TempDir(),
	}
	// Release any program a failed test left waiting.
	t.Cleanup(func() { os.WriteFile(filepath.Join(e.dir, "release"), nil, 0o644) })
	return e
}

// register registers a flow named name whose program runs in mode, with
// the labels; path, if not "", replaces the program.
func (e *env) register(t *testing.T, name, mode string, storage api.Storage, labels ...string) api.Flow {
	t.Helper()
	if storage.Kind == "" {
		storage = api.Storage{Kind: "local", Path: e.prog}
	}
	reg, err := e.admin.RegisterFlow(t.Context(), api.RegisterFlow{
		Spec:      json.RawMessage(fmt.Sprintf(`{"spec_version":1,"name":%q,"tasks":[{"id":"a","task":"a"}]}`, name)),
		Storage:   storage,
		Labels:    labels,
		RunConfig: api.RunConfig{Env: map[string]string{"FLOWPROG_MODE": mode, "FLOWPROG_DIR": e.dir}},
	})
	if err != nil {
		t.Fatalf("register flow %s: %v", name, err)
	}
	return reg.Flow
}

func (e *env) createRun(t *testing.T, flow api.Flow) api.FlowRun {
	t.Helper()
	created, err := e.admin.CreateFlowRun(t.Context(), api.CreateFlowRun{FlowID: flow.ID})
	if err != nil {
		t.Fatalf("create a run of %s: %v", flow.Name, err)
	}
	return created.FlowRun
}

// agentRun is an agent running in the test.
type agentRun struct {
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan error
}

// startAgent starts an agent named name on dataDir; tweak may change its
// configuration. It is stopped at the test's end.
func (e *env) startAgent(t *testing.T, name, dataDir string, tweak func(*agent.Config)) *agentRun {
	t.Helper()
	c, err := client.New(e.url, e.agentToken)
	if err != nil {
		t.Fatal(err)
	}
	r, err := process.New(process.Config{Dir: filepath.Join(dataDir, "output"), PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{
		Client: c, Runner: r, Kind: process.Kind, Name: name, Labels: []string{"test"},
		MaxRuns: 4, DataDir: dataDir, ClaimWait: time.Second, FlushInterval: 20 * time.Millisecond,
		StopGrace: time.Second, StopRunsOnExit: true, // no program outlives the test
	}
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ar := &agentRun{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { ar.done <- a.Run(ctx) }()
	t.Cleanup(func() { ar.stop(t) })
	return ar
}

// stop stops the agent and checks that Run returned nil.
func (ar *agentRun) stop(t *testing.T) {
	t.Helper()
	ar.cancel()
	select {
	case err, ok := <-ar.done:
		if ok && err != nil {
			t.Errorf("agent.Run: %v", err)
		}
		if ok {
			close(ar.done)
		}
	case <-time.After(timeout):
		t.Fatalf("the agent did not stop within %v", timeout)
	}
}

// waitFor polls until cond holds (the server has no event to wait on
// across processes), failing after timeout with what it last saw.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v; last seen: %s", what, timeout, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitRun waits until the run is in a finished state, and returns it.
func (e *env) waitRun(t *testing.T, id string, want func(api.FlowRun) bool) api.FlowRun {
	t.Helper()
	var fr api.FlowRun
	waitFor(t, "flow run "+id, func() (bool, string) {
		d, err := e.admin.FlowRun(t.Context(), id)
		if err != nil {
			return false, err.Error()
		}
		fr = d.FlowRun
		return want(fr), fmt.Sprintf("%s %q (attempt %d)", fr.State.Kind, fr.State.Message, fr.Attempt)
	})
	return fr
}

func finished(fr api.FlowRun) bool { return fr.State.Kind.Finished() }

// logs returns a run's log lines.
func (e *env) logs(t *testing.T, id string) []api.LogLine {
	t.Helper()
	page, err := e.admin.Logs(t.Context(), id, client.LogQuery{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return page.Logs
}

// waitLog waits for a log line of the run with the level whose message
// contains text, and returns it.
func (e *env) waitLog(t *testing.T, id, level, text string) api.LogLine {
	t.Helper()
	var found api.LogLine
	waitFor(t, fmt.Sprintf("a %s log line %q of run %s", level, text, id), func() (bool, string) {
		var all []string
		for _, l := range e.logs(t, id) {
			if l.Level == level && strings.Contains(l.Message, text) {
				found = l
				return true, ""
			}
			all = append(all, l.Level+" "+l.Message)
		}
		return false, strings.Join(all, " | ")
	})
	return found
}

func TestRunsAProgram(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	flow := e.register(t, "hello", "ok", api.Storage{}, "test")
	fr := e.createRun(t, flow)
	dataDir := t.TempDir()
	ar := e.startAgent(t, "host-1", dataDir, nil)

	got := e.waitRun(t, fr.ID, finished)
	if got.State.Kind != state.Success {
		t.Fatalf("run ended %s %q, want Success", got.State.Kind, got.State.Message)
	}
	if got.AgentID != ar.a.ID() {
		t.Errorf("run's agent %q, want %q", got.AgentID, ar.a.ID())
	}

	// The environment contract, on top of the run configuration.
	data, err := os.ReadFile(filepath.Join(e.dir, "env-"+fr.ID))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = v
		}
	}
	for k, want := range map[string]string{
		"args":              "execute",
		"REEVE_API_URL":     e.url,
		"REEVE_FLOW_RUN_ID": fr.ID,
		"FLOWPROG_MODE":     "ok",
	} {
		if vars[k] != want {
			t.Errorf("the program's %s = %q, want %q", k, vars[k], want)
		}
	}
	if tok := vars["REEVE_API_TOKEN"]; tok == "" || tok == e.agentToken {
		t.Errorf("the program's REEVE_API_TOKEN = %q: want the run's token, not empty nor the agent's", tok)
	}
	if _, ok := vars["REEVE_TOKEN"]; ok {
		t.Error("the program got REEVE_TOKEN: the agent's token leaked")
	}

	// Its output, in the run's log.
	out := e.waitLog(t, fr.ID, "INFO", "hello from stdout")
	if string(out.Attrs) != `{"stream":"stdout"}` {
		t.Errorf("stdout line attrs %s, want {\"stream\":\"stdout\"}", out.Attrs)
	}
	errLine := e.waitLog(t, fr.ID, "WARN", "hello from stderr")
	if string(errLine.Attrs) != `{"stream":"stderr"}` {
		t.Errorf("stderr line attrs %s, want {\"stream\":\"stderr\"}", errLine.Attrs)
	}
	e.waitLog(t, fr.ID, "INFO", `agent "host-1" started the flow program`)

	// Its record is gone once the run is settled.
	waitFor(t, "the agent's records removed", func() (bool, string) {
		entries, _ := os.ReadDir(filepath.Join(dataDir, "runs"))
		return len(entries) == 0 && ar.a.Running() == 0, fmt.Sprint(len(entries), " records")
	})
}

// TestStorageKinds: an agent that runs docker flows only leaves a local
// run Scheduled, while it claims a docker run behind it; an agent that runs
// local flows takes the local run.
func TestStorageKinds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	local := e.createRun(t, e.register(t, "script", "ok", api.Storage{}, "test"))
	image := "registry.example.com/flows@sha256:" + strings.Repeat("cd", 32)
	docker := e.createRun(t, e.register(t, "image", "ok", api.Storage{Kind: api.StorageDocker, Image: image}, "test"))

	// Its runner is a process runner, which fails a docker run: that the
	// run fails shows the agent claimed it, passing over the older local run.
	dockerAgent := e.startAgent(t, "docker-1", t.TempDir(), func(c *agent.Config) { c.StorageKinds = []string{api.StorageDocker} })
	got := e.waitRun(t, docker.ID, finished)
	if got.AgentID != dockerAgent.a.ID() {
		t.Fatalf("the docker run was claimed by %q, want docker-1 (%s)", got.AgentID, dockerAgent.a.ID())
	}
	agents, err := e.admin.Agents(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != 1 || !slices.Equal(agents[0].StorageKinds, []string{api.StorageDocker}) {
		t.Errorf("agents = %+v, want docker-1 registered with kinds [docker]", agents)
	}
	fr, err := e.admin.FlowRun(t.Context(), local.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fr.FlowRun.State.Kind != state.Scheduled || fr.FlowRun.AgentID != "" || fr.FlowRun.Attempt != 0 {
		t.Fatalf("the local run after docker-1's claim: %s (agent %q, attempt %d), want Scheduled and never claimed",
			fr.FlowRun.State.Kind, fr.FlowRun.AgentID, fr.FlowRun.Attempt)
	}

	localAgent := e.startAgent(t, "local-1", t.TempDir(), func(c *agent.Config) { c.StorageKinds = []string{api.StorageLocal} })
	got = e.waitRun(t, local.ID, finished)
	if got.State.Kind != state.Success || got.AgentID != localAgent.a.ID() || got.Attempt != 1 {
		t.Errorf("the local run ended %s %q by agent %q (attempt %d), want Success by local-1 (%s) at its first attempt",
			got.State.Kind, got.State.Message, got.AgentID, got.Attempt, localAgent.a.ID())
	}
}

func TestMaxRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	const maxRuns = 2
	flow := e.register(t, "waits", "wait", api.Storage{}, "test")
	var runs []api.FlowRun
	for range maxRuns + 2 {
		runs = append(runs, e.createRun(t, flow))
	}
	e.startAgent(t, "host-1", t.TempDir(), func(c *agent.Config) { c.MaxRuns = maxRuns })

	// Programs wait for the release file, so no slot frees before it: once
	// maxRuns programs started, the other runs must still be Scheduled.
	started := func() int {
		n := 0
		for _, r := range runs {
			if _, err := os.Stat(filepath.Join(e.dir, "started-"+r.ID)); err == nil {
				n++
			}
		}
		return n
	}
	waitFor(t, fmt.Sprintf("%d programs started", maxRuns), func() (bool, string) {
		n := started()
		return n >= maxRuns, fmt.Sprint(n, " started")
	})
	page, err := e.admin.FlowRuns(t.Context(), client.FlowRunFilter{FlowID: flow.ID})
	if err != nil {
		t.Fatal(err)
	}
	claimed := 0
	for _, r := range page.FlowRuns {
		if r.State.Kind != state.Scheduled {
			claimed++
		}
	}
	if claimed != maxRuns || started() != maxRuns {
		t.Fatalf("%d runs claimed and %d programs started with --max-runs %d", claimed, started(), maxRuns)
	}

	// Released, every run gets its turn.
	if err := os.WriteFile(filepath.Join(e.dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if got := e.waitRun(t, r.ID, finished); got.State.Kind != state.Success {
			t.Errorf("run %s ended %s %q, want Success", r.ID, got.State.Kind, got.State.Message)
		}
	}
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	notExec := filepath.Join(t.TempDir(), "flows")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "no-such-program")
	image := "registry.example.com/flows@sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		name    string
		mode    string
		storage api.Storage
		want    []string
	}{
		{"missing", "ok", api.Storage{Kind: "local", Path: missing}, []string{missing + " could not start", "does not exist on this agent's machine"}},
		{"not-executable", "ok", api.Storage{Kind: "local", Path: notExec}, []string{notExec + " could not start", "permission denied", "chmod +x " + notExec}},
		{"exit-before", "exit-before", api.Storage{}, []string{"exited with status 3 before its runner started", "cannot read the flow spec: boom"}},
		{"docker", "ok", api.Storage{Kind: "docker", Image: image}, []string{"Docker image (" + image + ")", "Docker agent"}},
	}
	runs := map[string]api.FlowRun{}
	for _, tc := range cases {
		runs[tc.name] = e.createRun(t, e.register(t, tc.name, tc.mode, tc.storage, "test"))
	}
	e.startAgent(t, "host-1", t.TempDir(), nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := e.waitRun(t, runs[tc.name].ID, finished)
			if got.State.Kind != state.Failed {
				t.Fatalf("run ended %s %q, want Failed", got.State.Kind, got.State.Message)
			}
			for _, w := range tc.want {
				if !strings.Contains(got.State.Message, w) {
					t.Errorf("the run's message %q does not say %q", got.State.Message, w)
				}
			}
		})
	}
}

// history returns the messages of a run's states.
func (e *env) history(t *testing.T, id string) string {
	t.Helper()
	states, err := e.admin.History(t.Context(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range states {
		fmt.Fprintf(&b, "%s: %s\n", s.Kind, s.Message)
	}
	return b.String()
}

func TestCrashIsReportedLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1) // one recovery: attempt 1 is re-queued, attempt 2 fails the run
	fr := e.createRun(t, e.register(t, "crashes", "crash", api.Storage{}, "test"))
	e.startAgent(t, "host-1", t.TempDir(), nil)

	got := e.waitRun(t, fr.ID, finished)
	hist := e.history(t, fr.ID)
	t.Logf("history:\n%s", hist)
	if got.State.Kind != state.Failed || got.Attempt != 2 {
		t.Fatalf("run ended %s at attempt %d, want Failed at attempt 2 (re-queued once); history:\n%s", got.State.Kind, got.Attempt, hist)
	}
	for _, w := range []string{"exited with status 2", "panic: crashed on purpose", "re-queued"} {
		if !strings.Contains(hist, w) {
			t.Errorf("the run's history does not say %q:\n%s", w, hist)
		}
	}
}

func TestRestartAdoptsAndReportsLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	alive := e.createRun(t, e.register(t, "alive", "wait", api.Storage{}, "test"))
	dead := e.createRun(t, e.register(t, "dead", "crash-wait", api.Storage{}, "test"))
	dataDir := t.TempDir()
	first := e.startAgent(t, "host-1", dataDir, func(c *agent.Config) { c.StopRunsOnExit = false })
	pids := map[string]int{}
	for _, r := range []api.FlowRun{alive, dead} {
		waitFor(t, "the program of "+r.ID+" started", func() (bool, string) {
			data, err := os.ReadFile(filepath.Join(e.dir, "started-"+r.ID))
			if err != nil {
				return false, err.Error()
			}
			pids[r.ID], err = strconv.Atoi(string(data))
			return err == nil, string(data)
		})
	}

	// The agent stops; its programs keep running. Then one dies unseen.
	first.stop(t)
	if err := syscall.Kill(pids[dead.ID], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// kill(2) only sends the signal: the program dies when it next runs,
	// which on a loaded machine can be after the new agent looked, and
	// then it rightly adopts the dying program and reports an unknown exit
	// instead of a runner gone at the restart. Wait for the death itself
	// (this test process is its parent: the first agent's runner reaps it).
	waitFor(t, fmt.Sprintf("the killed program (pid %d) gone", pids[dead.ID]), func() (bool, string) {
		err := syscall.Kill(pids[dead.ID], 0)
		return errors.Is(err, syscall.ESRCH), fmt.Sprint(err)
	})
	if err := syscall.Kill(pids[alive.ID], 0); err != nil {
		t.Fatalf("the program of run %s did not outlive its agent: %v", alive.ID, err)
	}
	if err := os.Remove(filepath.Join(e.dir, "started-"+dead.ID)); err != nil {
		t.Fatal(err)
	}

	second := e.startAgent(t, "host-1", dataDir, nil)
	e.waitLog(t, alive.ID, "WARN", `agent "host-1" restarted and adopted the flow program`)
	got := e.waitRun(t, dead.ID, func(fr api.FlowRun) bool { return fr.Attempt >= 2 || fr.State.Kind.Finished() })
	if hist := e.history(t, dead.ID); !strings.Contains(hist, `the agent "host-1" restarted and the runner of attempt 1 is gone`) {
		t.Errorf("run %s (now %s) was not reported lost after the restart; history:\n%s", dead.ID, got.State.Kind, hist)
	}
	// Its second attempt runs on the new agent.
	waitFor(t, "the second attempt of "+dead.ID+" started", func() (bool, string) {
		_, err := os.Stat(filepath.Join(e.dir, "started-"+dead.ID))
		return err == nil, fmt.Sprint(err)
	})

	if err := os.WriteFile(filepath.Join(e.dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := e.waitRun(t, alive.ID, finished); got.State.Kind != state.Success {
		t.Errorf("adopted run ended %s %q, want Success", got.State.Kind, got.State.Message)
	}
	if got := e.waitRun(t, dead.ID, finished); got.State.Kind != state.Failed {
		t.Errorf("run %s ended %s %q, want Failed (its second attempt crashed too)", dead.ID, got.State.Kind, got.State.Message)
	}
	waitFor(t, "the agent watches nothing", func() (bool, string) {
		return second.a.Running() == 0, fmt.Sprint(second.a.Running())
	})
}

// httptestServer serves srv over loopback HTTP until the test ends.
func httptestServer(t *testing.T, srv *server.Server) string {
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

func TestStopRunsOnExit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	fr := e.createRun(t, e.register(t, "stopped", "wait", api.Storage{}, "test"))
	ar := e.startAgent(t, "host-1", t.TempDir(), nil) // StopRunsOnExit
	var pid int
	waitFor(t, "the program started", func() (bool, string) {
		data, err := os.ReadFile(filepath.Join(e.dir, "started-"+fr.ID))
		if err != nil {
			return false, err.Error()
		}
		pid, err = strconv.Atoi(string(data))
		return err == nil, string(data)
	})
	ar.stop(t)
	// Run returned after the program exited: it was the agent's child, and
	// is reaped.
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("the program (pid %d) still runs after its agent stopped with StopRunsOnExit", pid)
	}
	got := e.waitRun(t, fr.ID, func(fr api.FlowRun) bool { return fr.State.Kind != state.Running })
	if hist := e.history(t, fr.ID); got.State.Kind != state.Scheduled || !strings.Contains(hist, `after agent "host-1" stopped it on its way out`) {
		t.Errorf("run is %s after its agent stopped its program, want Scheduled (re-queued) with the reason; history:\n%s", got.State.Kind, hist)
	}
}

// TestStopLeavesStartedRunsAlone: an agent that stops without stopping
// its programs (the default) hands back no run whose program it started,
// even one still Submitted (a program slow to boot): the program goes on
// and finishes the run.
func TestStopLeavesStartedRunsAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	fr := e.createRun(t, e.register(t, "slowboot", "wait-submitted", api.Storage{}, "test"))
	ar := e.startAgent(t, "host-1", t.TempDir(), func(c *agent.Config) { c.StopRunsOnExit = false })
	waitFor(t, "the program started", func() (bool, string) {
		_, err := os.Stat(filepath.Join(e.dir, "started-"+fr.ID))
		return err == nil, fmt.Sprint(err)
	})
	ar.stop(t)
	got := e.waitRun(t, fr.ID, func(api.FlowRun) bool { return true })
	if got.State.Kind != state.Submitted || got.Recoveries != 0 {
		t.Fatalf("after its agent stopped, the started run is %s %q (recoveries %d), want still Submitted", got.State.Kind, got.State.Message, got.Recoveries)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := e.waitRun(t, fr.ID, finished); got.State.Kind != state.Success {
		t.Errorf("the program left running ended its run %s %q, want Success", got.State.Kind, got.State.Message)
	}
}

func TestOneAgentPerDataDir(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	dataDir := t.TempDir()
	first := e.startAgent(t, "host-1", dataDir, nil)
	waitFor(t, "the first agent registered", func() (bool, string) { return first.a.ID() != "", "" })
	second := e.startAgent(t, "host-2", dataDir, nil)
	select {
	case err := <-second.done:
		close(second.done)
		if err == nil || !strings.Contains(err.Error(), "another agent uses the data directory") {
			t.Fatalf("a second agent on one data directory: Run = %v, want an error saying so", err)
		}
	case <-time.After(timeout):
		t.Fatal("a second agent on one data directory did not stop")
	}
}

func TestKilledIsReportedLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	fr := e.createRun(t, e.register(t, "killed", "wait", api.Storage{}, "test"))
	e.startAgent(t, "host-1", t.TempDir(), nil)
	started := filepath.Join(e.dir, "started-"+fr.ID)
	var pid int
	waitFor(t, "the program started", func() (bool, string) {
		data, err := os.ReadFile(started)
		if err != nil {
			return false, err.Error()
		}
		pid, err = strconv.Atoi(string(data))
		return err == nil, string(data)
	})
	if err := os.Remove(started); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Re-queued at once, the run's second attempt starts and succeeds.
	waitFor(t, "the second attempt started", func() (bool, string) {
		_, err := os.Stat(started)
		return err == nil, fmt.Sprint(err)
	})
	if err := os.WriteFile(filepath.Join(e.dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := e.waitRun(t, fr.ID, finished)
	hist := e.history(t, fr.ID)
	if got.State.Kind != state.Success || got.Attempt != 2 {
		t.Fatalf("run ended %s at attempt %d, want Success at attempt 2; history:\n%s", got.State.Kind, got.Attempt, hist)
	}
	if want := fmt.Sprintf("re-queued (recovery 1 of 1): the flow program %s (pid %d) was killed by signal SIGKILL", e.prog, pid); !strings.Contains(hist, want) {
		t.Errorf("the run's history does not say %q:\n%s", want, hist)
	}
}
