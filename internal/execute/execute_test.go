package execute_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/execute"
	"github.com/reevehq/reeve/internal/result/apiblob"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runner is one in-process execute of a flow run.
type runner struct {
	out    execute.Outcome
	err    error
	stderr syncBuffer
	done   chan struct{}
}

// execute starts execute.Run for run with its token, running g, in the
// background.
func (e *env) execute(ctx context.Context, g *graph, reg *api.Registered, runID, token string, tweak func(*execute.Config), opts ...client.Option) *runner {
	r := &runner{done: make(chan struct{})}
	cfg := execute.Config{
		Client:    e.client(token, opts...),
		FlowRunID: runID,
		Flows:     map[string]execute.Flow{g.name: {Graph: g.engine(), SpecHash: reg.Version.SpecHash}},
		Stderr:    &r.stderr,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	go func() {
		defer close(r.done)
		r.out, r.err = execute.Run(ctx, cfg)
	}()
	return r
}

func (r *runner) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the runner did not end; its stderr:\n%s", r.stderr.String())
	}
}

// taskRuns returns the run's task runs by key.
func (e *env) taskRuns(t *testing.T, runID string) map[string]api.TaskRun {
	t.Helper()
	trs, err := e.admin.TaskRuns(t.Context(), runID)
	if err != nil {
		t.Fatalf("TaskRuns: %v", err)
	}
	m := map[string]api.TaskRun{}
	for _, tr := range trs {
		m[tr.Key] = tr
	}
	return m
}

// logs returns every log line of a run, oldest first.
func (e *env) logs(t *testing.T, runID string) []api.LogLine {
	t.Helper()
	var out []api.LogLine
	q := client.LogQuery{Limit: 10000}
	for {
		page, err := e.admin.Logs(t.Context(), runID, q)
		if err != nil {
			t.Fatalf("Logs: %v", err)
		}
		out = append(out, page.Logs...)
		if len(page.Logs) == 0 || page.NextAfter == q.After {
			return out
		}
		q.After = page.NextAfter
	}
}

func (e *env) flowRun(t *testing.T, id string) api.FlowRun {
	t.Helper()
	d, err := e.admin.FlowRun(t.Context(), id)
	if err != nil {
		t.Fatalf("FlowRun: %v", err)
	}
	return d.FlowRun
}

func kinds(h []state.State) []state.Kind {
	out := make([]state.Kind, len(h))
	for i, s := range h {
		out[i] = s.Kind
	}
	return out
}

// TestBatches checks that the reporter sends task-run states and log lines
// in batches: far fewer requests than states, counted on the wire.
func TestBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	const n = 200
	g := newGraph("batches")
	for i := range n {
		g.task(fmt.Sprintf("t%03d", i), func(ctx context.Context) (int, error) {
			engineLogger(ctx).Info("task ran", "i", i)
			return i, nil
		})
	}
	reg := e.register(g.spec())
	run, token := e.claim(reg.Flow.ID, "")
	c := newCounter()
	r := e.execute(t.Context(), g, reg, run.ID, token, func(cfg *execute.Config) {
		// Never on a timer: only full batches and the final flush send,
		// so the counts do not depend on timing.
		cfg.Reporter = execute.ReporterConfig{FlushEvery: time.Hour, StateBatch: 100, LogBatch: 100}
	}, client.WithHTTPClient(&http.Client{Transport: c}))
	r.wait(t)
	if r.err != nil || r.out.State.Kind != state.Success {
		t.Fatalf("Run = %+v, %v\n%s", r.out, r.err, r.stderr.String())
	}
	trs := e.taskRuns(t, run.ID)
	if len(trs) != n {
		t.Fatalf("%d task runs on the server, want %d", len(trs), n)
	}
	for key, tr := range trs {
		if tr.State.Kind != state.Success || tr.Version != 3 {
			t.Errorf("task run %s is %s at version %d, want Success at 3 (Pending, Running, Success)", key, tr.State.Kind, tr.Version)
		}
	}
	states := 3 * n
	writes := c.count("POST task_run_states")
	if writes == 0 || writes > states/50 {
		t.Errorf("%d requests sent %d task-run states: want batches of about 100 (at most %d requests)", writes, states, states/50)
	}
	lines := e.logs(t, run.ID)
	tasks := 0
	for _, l := range lines {
		if l.Message == "task ran" {
			tasks++
			if l.TaskRunID == "" {
				t.Errorf("line %+v has no task run ID", l)
			}
		}
	}
	if tasks != n {
		t.Errorf("%d task log lines on the server, want %d", tasks, n)
	}
	if logs := c.count("POST logs"); logs == 0 || logs > 2*n/100+2 {
		t.Errorf("%d requests sent %d log lines: want batches", logs, len(lines))
	}
	t.Logf("%d states in %d requests, %d log lines in %d requests", states, writes, len(lines), c.count("POST logs"))
}

// TestLostAnswer loses the answer to a batch of task-run states that the
// server applied: the reporter's retry gets 409, sees that the batch is
// already written, and goes on without writing it twice.
func TestLostAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	g := newGraph("lost")
	for i := range 5 {
		g.task(fmt.Sprintf("t%d", i), func(ctx context.Context) (int, error) {
			engineLogger(ctx).Info("ran")
			return i, nil
		})
	}
	reg := e.register(g.spec())
	run, token := e.claim(reg.Flow.ID, "")
	c := newCounter()
	var lost atomic.Int64
	c.loseAnswer = func(r *http.Request) bool {
		return strings.HasSuffix(r.URL.Path, "/task_run_states") && lost.Add(1) == 1
	}
	r := e.execute(t.Context(), g, reg, run.ID, token, nil, client.WithHTTPClient(&http.Client{Transport: c}))
	r.wait(t)
	if r.err != nil || r.out.State.Kind != state.Success {
		t.Fatalf("Run = %+v, %v\n%s", r.out, r.err, r.stderr.String())
	}
	if lost.Load() < 2 {
		t.Fatalf("%d task-run state requests: want the lost one and its retry", lost.Load())
	}
	for key, tr := range e.taskRuns(t, run.ID) {
		h, err := e.admin.History(t.Context(), run.ID, tr.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := kinds(h), []state.Kind{state.Pending, state.Running, state.Success}; !slices.Equal(got, want) {
			t.Errorf("task run %s went through %v, want %v", key, got, want)
		}
	}
	n := 0
	for _, l := range e.logs(t, run.ID) {
		if l.Message == "ran" {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d task log lines, want 5", n)
	}
}

// TestServerDown stops the server in the middle of a run and starts it
// again on the same address with the same store: no state and no log line
// is lost, and they arrive in order.
func TestServerDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 200*time.Millisecond)
	release := make(chan struct{})
	var finished atomic.Int64
	g := newGraph("down")
	g.task("gate", func(ctx context.Context) (int, error) {
		<-release
		for i := range 50 {
			engineLogger(ctx).Info(fmt.Sprintf("gate %d", i))
		}
		finished.Add(1)
		return 0, nil
	})
	const after = 20
	for i := range after {
		g.task(fmt.Sprintf("after%02d", i), func(ctx context.Context) (int, error) {
			for j := range 5 {
				engineLogger(ctx).Info(fmt.Sprintf("after%02d line %d", i, j))
			}
			finished.Add(1)
			return i, nil
		}, "gate")
	}
	reg := e.register(g.spec())
	run, token := e.claim(reg.Flow.ID, "")
	c := newCounter()
	r := e.execute(t.Context(), g, reg, run.ID, token, nil, client.WithHTTPClient(&http.Client{Transport: c}))
	eventually(t, "task gate is Running on the server", func() bool {
		return e.taskRuns(t, run.ID)["gate"].State.Kind == state.Running
	})
	e.stop()
	close(release)
	eventually(t, "every task finished in the runner", func() bool { return finished.Load() == after+1 })
	eventually(t, "the reporter tried to reach the stopped server", func() bool { return c.failures.Load() >= 3 })
	e.start()
	r.wait(t)
	if r.err != nil || r.out.State.Kind != state.Success {
		t.Fatalf("Run = %+v, %v\n%s", r.out, r.err, r.stderr.String())
	}
	trs := e.taskRuns(t, run.ID)
	if len(trs) != after+1 {
		t.Fatalf("%d task runs, want %d", len(trs), after+1)
	}
	for key, tr := range trs {
		h, err := e.admin.History(t.Context(), run.ID, tr.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := kinds(h), []state.Kind{state.Pending, state.Running, state.Success}; !slices.Equal(got, want) {
			t.Errorf("task run %s went through %v, want %v", key, got, want)
		}
	}
	var got []string
	byTask := map[string][]string{}
	for _, l := range e.logs(t, run.ID) {
		if l.TaskRunID == "" {
			continue // the runner's own lines
		}
		got = append(got, l.Message)
		byTask[l.TaskRunID] = append(byTask[l.TaskRunID], l.Message)
	}
	if len(got) != 50+5*after {
		t.Errorf("%d task log lines on the server, want %d", len(got), 50+5*after)
	}
	var want []string
	for i := range 50 {
		want = append(want, fmt.Sprintf("gate %d", i))
	}
	if !slices.Equal(byTask[trs["gate"].ID], want) {
		t.Errorf("gate's lines = %q, want %q", byTask[trs["gate"].ID], want)
	}
	for i := range after {
		key := fmt.Sprintf("after%02d", i)
		var want []string
		for j := range 5 {
			want = append(want, fmt.Sprintf("%s line %d", key, j))
		}
		if !slices.Equal(byTask[trs[key].ID], want) {
			t.Errorf("%s's lines = %q, want %q", key, byTask[trs[key].ID], want)
		}
	}
	if got := e.flowRun(t, run.ID).State.Kind; got != state.Success {
		t.Errorf("flow run is %s, want Success", got)
	}
}

// TestLogBound: past MaxLogLines buffered while the server is down, new
// log lines are dropped, and a WARN line says how many when it is back.
func TestLogBound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	release := make(chan struct{})
	var finished atomic.Bool
	g := newGraph("bound")
	g.task("chatty", func(ctx context.Context) (int, error) {
		<-release
		for i := range 50 {
			engineLogger(ctx).Info(fmt.Sprintf("line %d", i))
		}
		finished.Store(true)
		return 0, nil
	})
	reg := e.register(g.spec())
	run, token := e.claim(reg.Flow.ID, "")
	c := newCounter()
	r := e.execute(t.Context(), g, reg, run.ID, token, func(cfg *execute.Config) {
		cfg.Reporter = execute.ReporterConfig{MaxLogLines: 10}
	}, client.WithHTTPClient(&http.Client{Transport: c}))
	eventually(t, "the runner's first line is on the server", func() bool {
		return len(e.logs(t, run.ID)) > 0 && e.taskRuns(t, run.ID)["chatty"].State.Kind == state.Running
	})
	e.stop()
	close(release)
	eventually(t, "the task finished", finished.Load)
	eventually(t, "the reporter tried to reach the stopped server", func() bool { return c.failures.Load() >= 2 })
	e.start()
	r.wait(t)
	if r.err != nil || r.out.State.Kind != state.Success {
		t.Fatalf("Run = %+v, %v\n%s", r.out, r.err, r.stderr.String())
	}
	var kept []string
	warned := false
	for _, l := range e.logs(t, run.ID) {
		switch {
		case strings.HasPrefix(l.Message, "line "):
			kept = append(kept, l.Message)
		case l.Level == "WARN" && strings.Contains(l.Message, "40 log lines of this flow run were dropped"):
			warned = true
		}
	}
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	if !slices.Equal(kept, want) {
		t.Errorf("lines kept = %q, want %q", kept, want)
	}
	if !warned {
		t.Errorf("no WARN line counts the 40 dropped lines; stderr:\n%s", r.stderr.String())
	}
}

// TestCancel cancels a running run through the API: the runner learns it
// from its heartbeat, its tasks see their context cancelled, and the run
// ends Cancelled.
func TestCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 100*time.Millisecond)
	sawCancel := make(chan error, 1)
	g := newGraph("cancel")
	g.task("wait", func(ctx context.Context) (int, error) {
		<-ctx.Done()
		sawCancel <- ctx.Err()
		return 0, ctx.Err()
	})
	g.task("next", func(ctx context.Context) (int, error) { return 1, nil }, "wait")
	reg := e.register(g.spec())
	run, token := e.claim(reg.Flow.ID, "")
	r := e.execute(t.Context(), g, reg, run.ID, token, nil)
	eventually(t, "task wait is Running on the server", func() bool {
		return e.taskRuns(t, run.ID)["wait"].State.Kind == state.Running
	})
	if _, err := e.admin.CancelFlowRun(t.Context(), run.ID); err != nil {
		t.Fatalf("CancelFlowRun: %v", err)
	}
	r.wait(t)
	if r.err != nil || r.out.State.Kind != state.Cancelled {
		t.Fatalf("Run = %+v, %v\n%s", r.out, r.err, r.stderr.String())
	}
	select {
	case err := <-sawCancel:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the task's context ended with %v, want context.Canceled", err)
		}
	default:
		t.Error("the task never saw its context cancelled")
	}
	if got := e.flowRun(t, run.ID).State.Kind; got != state.Cancelled {
		t.Errorf("flow run is %s, want Cancelled", got)
	}
	trs := e.taskRuns(t, run.ID)
	for _, key := range []string{"wait", "next"} {
		if got := trs[key].State.Kind; got != state.Cancelled {
			t.Errorf("task run %s is %s, want Cancelled", key, got)
		}
	}
}

// TestCancelledBeforeStart: a run cancelled between its claim and its
// runner's start ends Cancelled, and nothing runs.
func TestCancelledBeforeStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	var ran atomic.Bool
	g := newGraph("early")
	g.task("a", func(ctx context.Context) (int, error) { ran.Store(true); return 0, nil })
	reg := e.register(g.spec())
	run, token := e.claim(reg.Flow.ID, "")
	cancelled, err := e.admin.CancelFlowRun(t.Context(), run.ID)
	if err != nil || cancelled.State.Kind != state.Cancelling {
		t.Fatalf("CancelFlowRun = %+v, %v; want Cancelling", cancelled, err)
	}
	r := e.execute(t.Context(), g, reg, run.ID, token, nil)
	r.wait(t)
	if r.err != nil || r.out.State.Kind != state.Cancelled {
		t.Fatalf("Run = %+v, %v\n%s", r.out, r.err, r.stderr.String())
	}
	if ran.Load() {
		t.Error("the task ran")
	}
}

// TestSuperseded: a runner whose attempt was superseded (the run was
// declared lost, re-queued and claimed again) gets 409 on its next
// heartbeat, stops at once and writes nothing more.
func TestSuperseded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 100*time.Millisecond)
	sawCancel := make(chan struct{})
	g := newGraph("superseded")
	g.task("block", func(ctx context.Context) (int, error) {
		<-ctx.Done()
		close(sawCancel)
		return 0, ctx.Err()
	})
	g.task("after", func(ctx context.Context) (int, error) { return 1, nil }, "block")
	reg := e.register(g.spec())
	run, token := e.claim(reg.Flow.ID, "")
	c := newCounter()
	r := e.execute(t.Context(), g, reg, run.ID, token, nil, client.WithHTTPClient(&http.Client{Transport: c}))
	eventually(t, "task block is Running on the server", func() bool {
		return e.taskRuns(t, run.ID)["block"].State.Kind == state.Running
	})
	requeued, err := e.agent.ReportLost(t.Context(), run.ID, api.ReportLost{Attempt: run.Attempt, Reason: "test: the agent lost sight of the runner"})
	if err != nil || requeued.State.Kind != state.Scheduled {
		t.Fatalf("ReportLost = %+v, %v; want the run re-queued", requeued, err)
	}
	second, _ := e.claimRun(run.ID)
	if second.Attempt <= run.Attempt {
		t.Fatalf("the second claim is attempt %d, the first was %d", second.Attempt, run.Attempt)
	}
	before := e.taskRuns(t, run.ID)
	r.wait(t)
	if !errors.Is(r.err, execute.ErrSuperseded) {
		t.Fatalf("Run = %+v, %v; want ErrSuperseded\n%s", r.out, r.err, r.stderr.String())
	}
	if !strings.Contains(r.stderr.String(), "superseded") {
		t.Errorf("stderr does not say superseded:\n%s", r.stderr.String())
	}
	select {
	case <-sawCancel:
	default:
		t.Error("the task never saw its context cancelled")
	}
	now := e.flowRun(t, run.ID)
	if now.State.Kind != state.Submitted || now.Attempt != second.Attempt {
		t.Errorf("flow run is %s at attempt %d, want Submitted at %d: the old runner wrote over it", now.State.Kind, now.Attempt, second.Attempt)
	}
	after := e.taskRuns(t, run.ID)
	for key, tr := range after {
		if b := before[key]; b.Version != tr.Version {
			t.Errorf("task run %s moved from %s (v%d) to %s (v%d) after the runner was superseded", key, b.State.Kind, b.Version, tr.State.Kind, tr.Version)
		}
	}
	if got := after["block"].State; got.Kind != state.Failed || !strings.Contains(got.Message, "runner lost") {
		t.Errorf("task run block is %v, want Failed by the lost-run path", got)
	}
}

// program builds the test flow program once per test.
func program(t *testing.T) string {
	t.Helper()
	return testenv.BuildProgram(t, filepath.Join("testdata", "flows"), "flows")
}

// specOf returns the spec JSON of one of the program's flows.
func specOf(t *testing.T, bin, flow string) json.RawMessage {
	t.Helper()
	dir := t.TempDir()
	testenv.RunProgram(t, bin, nil, "save", flow, "--out", dir).Check(t, 0, nil, nil)
	data, err := os.ReadFile(filepath.Join(dir, flow+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func runEnv(e *env, runID, token string, extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"REEVE_API_URL=" + e.url, "REEVE_API_TOKEN=" + token, "REEVE_FLOW_RUN_ID=" + runID,
	}, extra...)
}

// TestExecuteProgram runs a real flow program's execute command as an
// agent would, and reads the run back through the API.
func TestExecuteProgram(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	bin := program(t)
	reg := e.register(specOf(t, bin, "hello"))
	run, token := e.claim(reg.Flow.ID, `{"name": "reeve"}`)
	res := testenv.RunProgram(t, bin, runEnv(e, run.ID, token), "execute")
	res.Check(t, 0, []string{"Success"}, nil)

	d, err := e.admin.FlowRun(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.FlowRun.State.Kind != state.Success {
		t.Fatalf("flow run is %v, want Success", d.FlowRun.State)
	}
	if got, want := kinds(d.History), []state.Kind{state.Scheduled, state.Submitted, state.Running, state.Success}; !slices.Equal(got, want) {
		t.Errorf("flow run history %v, want %v", got, want)
	}
	ids := map[string]string{}
	for _, tr := range d.TaskRuns {
		ids[tr.Key] = tr.ID
		if tr.State.Kind != state.Success {
			t.Errorf("task run %s is %v", tr.Key, tr.State)
		}
	}
	if len(ids) != 2 {
		t.Fatalf("task runs %v, want greet and shout", ids)
	}
	var greet, shout, started bool
	for _, l := range e.logs(t, run.ID) {
		var attrs map[string]any
		if len(l.Attrs) > 0 {
			if err := json.Unmarshal(l.Attrs, &attrs); err != nil {
				t.Errorf("line %q: attrs %s are not a JSON object", l.Message, l.Attrs)
			}
		}
		switch l.Message {
		case "greeting":
			greet = true
			if l.TaskRunID != ids["test.greet"] || l.Level != "INFO" || attrs["name"] != "reeve" {
				t.Errorf("greeting line %+v (attrs %v): want task run %s, INFO, name=reeve", l, attrs, ids["test.greet"])
			}
		case "shouting":
			shout = true
			if l.TaskRunID != ids["test.shout"] || l.Level != "WARN" || attrs["text"] != "hello reeve" || attrs["n"] != float64(2) {
				t.Errorf("shouting line %+v (attrs %v): want task run %s, WARN, text and n", l, attrs, ids["test.shout"])
			}
		case "runner started":
			started = true
			if l.TaskRunID != "" {
				t.Errorf("the runner's line has task run %s", l.TaskRunID)
			}
		}
	}
	if !greet || !shout || !started {
		t.Errorf("lines missing: greeting %v, shouting %v, runner started %v", greet, shout, started)
	}
}

// TestSpecMismatch: a program whose flow differs from the registered spec
// fails the run, naming both hashes, and runs nothing.
func TestSpecMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	bin := program(t)
	var sp map[string]any
	if err := json.Unmarshal(specOf(t, bin, "hello"), &sp); err != nil {
		t.Fatal(err)
	}
	sp["description"] = "a version this program was not built from"
	changed, _ := json.Marshal(sp)
	reg := e.register(changed)
	run, token := e.claim(reg.Flow.ID, "")
	marks := t.TempDir()
	res := testenv.RunProgram(t, bin, runEnv(e, run.ID, token, "MARK_DIR="+marks), "execute")
	mine := strings.Fields(testenv.RunProgram(t, bin, nil, "list").Stdout)
	var hash string
	for i, f := range mine {
		if f == "hello" {
			hash = mine[i+3]
		}
	}
	res.Check(t, 1, nil, []string{regexpQuote(reg.Version.SpecHash), regexpQuote(hash), "rebuild"})
	got := e.flowRun(t, run.ID).State
	if got.Kind != state.Failed || !strings.Contains(got.Message, reg.Version.SpecHash) || !strings.Contains(got.Message, hash) {
		t.Errorf("flow run is %v: want Failed naming %s and %s", got, reg.Version.SpecHash, hash)
	}
	if entries, _ := os.ReadDir(marks); len(entries) > 0 {
		t.Errorf("tasks ran: %v", entries)
	}
}

// TestTwoRunners starts two runners on one run at once: exactly one runs
// the tasks; the other exits non-zero without running anything.
func TestTwoRunners(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	bin := program(t)
	reg := e.register(specOf(t, bin, "hello"))
	run, token := e.claim(reg.Flow.ID, "")
	marks := t.TempDir()
	env := runEnv(e, run.ID, token, "MARK_DIR="+marks, "MARK_SLEEP=300ms")
	var wg sync.WaitGroup
	results := make([]testenv.ProgramResult, 2)
	for i := range results {
		wg.Go(func() { results[i] = testenv.RunProgram(t, bin, env, "execute") })
	}
	wg.Wait()
	var won, lost int
	for _, res := range results {
		switch {
		case res.Code == 0:
			won++
		case strings.Contains(res.Stderr, "another runner"):
			lost++
		default:
			t.Errorf("a runner exited %d:\n%s", res.Code, res.Stderr)
		}
	}
	if won != 1 || lost != 1 {
		t.Errorf("%d runners won and %d lost, want 1 and 1:\n%+v", won, lost, results)
	}
	for _, task := range []string{"greet", "shout"} {
		data, err := os.ReadFile(filepath.Join(marks, task))
		if err != nil {
			t.Fatalf("task %s did not run: %v", task, err)
		}
		if n := strings.Count(string(data), "\n"); n != 1 {
			t.Errorf("task %s ran %d times, want once", task, n)
		}
	}
	if got := e.flowRun(t, run.ID).State.Kind; got != state.Success {
		t.Errorf("flow run is %s, want Success", got)
	}
}

// TestRegisterCommand registers a program's flows with the program's own
// path as their storage.
func TestRegisterCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	bin := program(t)
	path, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	path, _ = filepath.Abs(path)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "REEVE_API_TOKEN=" + e.adminSecret}
	res := testenv.RunProgram(t, bin, env, "register", "--server", e.url, "--project", "default", "--labels", "gpu,eu")
	res.Check(t, 0, []string{`(?m)^hello\tversion 1\tcreated\tsha256:`, `(?m)^other\tversion 1\tcreated\tsha256:`}, nil)
	for _, name := range []string{"hello", "other"} {
		flows, err := e.admin.Flows(t.Context(), "default", name)
		if err != nil || len(flows) != 1 {
			t.Fatalf("Flows(%s) = %v, %v", name, flows, err)
		}
		d, err := e.admin.Flow(t.Context(), flows[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		v := d.Versions[0]
		if v.Storage != (api.Storage{Kind: "local", Path: path}) {
			t.Errorf("flow %s storage = %+v, want local %s", name, v.Storage, path)
		}
		if !slices.Contains(v.Labels, "gpu") || !slices.Contains(v.Labels, "eu") {
			t.Errorf("flow %s labels = %v, want gpu and eu", name, v.Labels)
		}
	}
	res = testenv.RunProgram(t, bin, env, "register", "--server", e.url, "--project", "default", "--labels", "gpu,eu", "--flow", "hello")
	res.Check(t, 0, []string{`^hello\tversion 1\tunchanged\tsha256:\S+\n$`}, nil)
	res = testenv.RunProgram(t, bin, env, "register", "--server", e.url, "--project", "default", "--flow", "nope")
	res.Check(t, 2, nil, []string{`no flow named "nope"`})
	res = testenv.RunProgram(t, bin, []string{"PATH=" + os.Getenv("PATH")}, "execute")
	res.Check(t, 2, nil, []string{"REEVE_API_URL is not set"})
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestResume restarts a failed run: the new runner reuses the task run
// that finished (its result loaded from the result store) and runs only
// the failed one again.
func TestResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	var extracts, loads atomic.Int64
	g := newGraph("resume")
	g.task("extract", func(ctx context.Context) (int, error) { extracts.Add(1); return 41, nil })
	g.taskFrom("load", "extract", func(ctx context.Context, in int) (int, error) {
		if loads.Add(1) == 1 {
			return 0, errors.New("the warehouse is down")
		}
		return in + 1, nil
	})
	reg := e.register(g.spec())
	run, token := e.claim(reg.Flow.ID, "")
	r := e.execute(t.Context(), g, reg, run.ID, token, nil)
	r.wait(t)
	if r.err != nil || r.out.State.Kind != state.Failed {
		t.Fatalf("first Run = %+v, %v; want Failed\n%s", r.out, r.err, r.stderr.String())
	}
	extract := e.taskRuns(t, run.ID)["extract"]
	if _, err := e.admin.RestartFlowRun(t.Context(), run.ID); err != nil {
		t.Fatalf("RestartFlowRun: %v", err)
	}
	_, token = e.claimRun(run.ID)
	r = e.execute(t.Context(), g, reg, run.ID, token, nil)
	r.wait(t)
	if r.err != nil || r.out.State.Kind != state.Success {
		t.Fatalf("resumed Run = %+v, %v; want Success\n%s", r.out, r.err, r.stderr.String())
	}
	if extracts.Load() != 1 || loads.Load() != 2 {
		t.Errorf("extract ran %d times and load %d times; want 1 and 2", extracts.Load(), loads.Load())
	}
	trs := e.taskRuns(t, run.ID)
	if got := trs["extract"]; got.Version != extract.Version || got.State.Kind != state.Success {
		t.Errorf("extract = %s v%d, want it untouched (%s v%d)", got.State.Kind, got.Version, extract.State.Kind, extract.Version)
	}
	if got := trs["load"]; got.State.Kind != state.Success {
		t.Errorf("load = %v, want Success", got.State)
	}
}

// TestParkedRetry: a retry further away than MaxRetryWait ends the runner
// with the run Scheduled for the retry's time, for the server to re-queue.
func TestParkedRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	g := newGraph("parked")
	g.task("flaky", func(ctx context.Context) (int, error) { return 0, errors.New("not yet") })
	g.retries("flaky", 2, 10*time.Minute)
	reg := e.register(g.spec())
	run, token := e.claim(reg.Flow.ID, "")
	start := time.Now()
	r := e.execute(t.Context(), g, reg, run.ID, token, func(cfg *execute.Config) { cfg.MaxRetryWait = time.Second })
	r.wait(t)
	if r.err != nil || r.out.State.Kind != state.Scheduled {
		t.Fatalf("Run = %+v, %v; want Scheduled\n%s", r.out, r.err, r.stderr.String())
	}
	now := e.flowRun(t, run.ID)
	due := start.Add(10 * time.Minute)
	if now.State.Kind != state.Scheduled || now.State.StartAt.Before(due.Add(-time.Minute)) || now.State.StartAt.After(due.Add(time.Minute)) {
		t.Errorf("flow run is %v (start at %v), want Scheduled for about %v", now.State, now.State.StartAt, due)
	}
	if !now.ScheduledAt.Equal(now.State.StartAt) {
		t.Errorf("the run is scheduled at %v, not at its retry's time %v", now.ScheduledAt, now.State.StartAt)
	}
	if got := e.taskRuns(t, run.ID)["flaky"].State; got.Kind != state.Retrying || got.StartAt.IsZero() {
		t.Errorf("task run flaky is %v, want Retrying with its StartAt", got)
	}
}

// TestServerResultStore: a flow that names no result store keeps its
// results in the server's own store, and a resumed run reuses them.
func TestServerResultStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	var extracts, loads atomic.Int64
	g := newGraph("server-store")
	g.store = ""
	g.task("extract", func(ctx context.Context) (int, error) { extracts.Add(1); return 41, nil })
	g.taskFrom("load", "extract", func(ctx context.Context, in int) (int, error) {
		if loads.Add(1) == 1 {
			return 0, errors.New("the warehouse is down")
		}
		if in != 41 {
			return 0, fmt.Errorf("got %d from extract, want 41", in)
		}
		return in + 1, nil
	})
	reg := e.register(g.spec())
	run, token := e.claim(reg.Flow.ID, "")
	r := e.execute(t.Context(), g, reg, run.ID, token, nil)
	r.wait(t)
	if r.err != nil || r.out.State.Kind != state.Failed {
		t.Fatalf("first Run = %+v, %v; want Failed\n%s", r.out, r.err, r.stderr.String())
	}
	extract := e.taskRuns(t, run.ID)["extract"]
	if res := extract.State.Result; res == nil || res.Store != apiblob.URL || res.Key == "" {
		t.Fatalf("extract's state %+v has no result in the server's store", extract.State)
	}
	if _, err := e.admin.RestartFlowRun(t.Context(), run.ID); err != nil {
		t.Fatalf("RestartFlowRun: %v", err)
	}
	_, token = e.claimRun(run.ID)
	r = e.execute(t.Context(), g, reg, run.ID, token, nil)
	r.wait(t)
	if r.err != nil || r.out.State.Kind != state.Success {
		t.Fatalf("resumed Run = %+v, %v; want Success\n%s", r.out, r.err, r.stderr.String())
	}
	if extracts.Load() != 1 || loads.Load() != 2 {
		t.Errorf("extract ran %d times and load %d times; want 1 and 2", extracts.Load(), loads.Load())
	}
}

// TestSecrets: tasks read the secrets their flow declares from the server,
// once each per runner, and the values never reach the run's log.
func TestSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	if _, err := e.admin.SetSecret(t.Context(), "default", "API_KEY", "s3cret-value"); err != nil {
		t.Fatalf("SetSecret: %v", err)
	}
	g := newGraph("secrets")
	g.secrets = []string{"API_KEY"}
	for i := range 3 {
		g.task(fmt.Sprintf("use%d", i), func(ctx context.Context) (int, error) {
			v, err := engine.Secret(ctx, "API_KEY")
			if err != nil {
				return 0, err
			}
			if v != "s3cret-value" {
				return 0, fmt.Errorf("API_KEY = %q", v)
			}
			engineLogger(ctx).Info("calling with " + v)
			return len(v), nil
		})
	}
	reg := e.register(g.spec())
	run, token := e.claim(reg.Flow.ID, "")
	c := newCounter()
	r := e.execute(t.Context(), g, reg, run.ID, token, func(cfg *execute.Config) {
		cfg.Reporter = execute.ReporterConfig{}
	}, client.WithHTTPClient(&http.Client{Transport: c}))
	r.wait(t)
	if r.err != nil || r.out.State.Kind != state.Success {
		t.Fatalf("Run = %+v, %v\n%s", r.out, r.err, r.stderr.String())
	}
	if n := c.count("GET API_KEY"); n != 1 {
		t.Errorf("the secret was read %d times, want once (cached)", n)
	}
	for _, l := range e.logs(t, run.ID) {
		if strings.Contains(l.Message, "s3cret-value") || strings.Contains(string(l.Attrs), "s3cret-value") {
			t.Errorf("a log line shows the secret: %+v", l)
		}
	}
}
