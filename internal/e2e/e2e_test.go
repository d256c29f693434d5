package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/result/apiblob"
	"github.com/reevehq/reeve/internal/state"
)

// TestRegisterRunAndSeeEverything: a flow program registers itself, an
// agent runs a run of it, and its states, logs and result are visible
// through the API and the CLI; on SQLite and on PostgreSQL.
func TestRegisterRunAndSeeEverything(t *testing.T) {
	t.Parallel()
	for _, kind := range []storeKind{onSQLite, onPostgres} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, kind)
			e.register(flowsBin(t))
			e.startAgent("a1", nil, 4)
			run := e.create("fanout", `{"n": 10}`)
			d := e.finished(run.ID)
			if d.FlowRun.State.Kind != state.Success {
				t.Fatalf("run ended %s\n%s", d.FlowRun.State, history(d))
			}
			// range, the mapped parent, 10 children and sum.
			if len(d.TaskRuns) != 13 {
				t.Errorf("%d task runs, want 13:\n%s", len(d.TaskRuns), history(d))
			}
			var sum *api.TaskRun
			for i, tr := range d.TaskRuns {
				if !tr.State.Kind.Successful() {
					t.Errorf("task run %s ended %s", tr.Key, tr.State)
				}
				if tr.Key == "e2e.sum" {
					sum = &d.TaskRuns[i]
				}
			}
			if sum == nil || sum.State.Result == nil || sum.State.Result.Store != apiblob.URL {
				t.Fatalf("the sum task's state has no result in the server's store: %+v", sum)
			}
			b, _, err := e.cl.GetResult(e.ctx, run.ID, sum.State.Result.Key)
			if err != nil || strings.TrimSpace(string(b)) != "55" {
				t.Errorf("sum's result = %q (%v), want 55", b, err)
			}

			logs, err := e.cl.Logs(e.ctx, run.ID, clientLogQuery())
			if err != nil {
				t.Fatal(err)
			}
			if len(logs.Logs) == 0 {
				t.Error("the run has no log lines")
			}
			show := e.reeve("run", "show", run.ID)
			for _, want := range []string{"State:      Success", "Attempt:    1", "e2e.sum", "e2e.inc[9]"} {
				if !strings.Contains(show, want) {
					t.Errorf("reeve run show lacks %q:\n%s", want, show)
				}
			}
		})
	}
}

// TestKilledRunnerIsRecoveredAndReusesResults: kill -9 the runner in the
// middle of a flow; its agent reports it lost, the run is re-queued and
// completes, and the task that had finished is not run again.
func TestKilledRunnerIsRecoveredAndReusesResults(t *testing.T) {
	t.Parallel()
	for _, kind := range []storeKind{onSQLite, onPostgres} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			testKilledRunner(t, newEnv(t, kind))
		})
	}
}

func testKilledRunner(t *testing.T, e *env) {
	e.register(flowsBin(t))
	e.startAgent("a1", nil, 2)
	run := e.create("resume", "")
	pid := e.waitFile("started-1", nil)
	// Kill it once the server knows the first task finished (states reach
	// the server in batches within 100 ms; a state still in the runner's
	// buffer dies with it, and its task runs again).
	e.wait(run.ID, "the first task's Success", func(d *api.FlowRunDetail) bool {
		for _, tr := range d.TaskRuns {
			if tr.Key == "before" && tr.State.Kind == state.Success {
				return true
			}
		}
		return false
	})
	p, _ := strconv.Atoi(pid)
	if err := syscall.Kill(p, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the runner %d: %v", p, err)
	}
	// The next runner's gate starts in a new process.
	e.waitFile("started-1", func(s string) bool { return s != pid })
	e.release()
	d := e.finished(run.ID)
	if d.FlowRun.State.Kind != state.Success || d.FlowRun.Attempt != 2 || d.FlowRun.Recoveries != 1 {
		t.Fatalf("run: %s, attempt %d, %d recoveries; want Success at attempt 2 after 1 recovery\n%s",
			d.FlowRun.State, d.FlowRun.Attempt, d.FlowRun.Recoveries, history(d))
	}
	if n := e.count("before", run.ID); n != 1 {
		t.Errorf("the task that finished before the kill ran %d times, want once (its result reused)", n)
	}
	if n := e.count("after", run.ID); n != 1 {
		t.Errorf("the task after the gate ran %d times, want once", n)
	}
	// Whoever saw it first says why: the agent (the program was killed by
	// a signal) or the run monitor (its heartbeats stopped).
	if h := history(d); !strings.Contains(h, "re-queued (recovery 1 of 3)") ||
		!(strings.Contains(h, "SIGKILL") || strings.Contains(h, "no heartbeat")) {
		t.Errorf("the history does not say why the run was re-queued:\n%s", h)
	}
}

// TestAgentLostAfterClaimIsRecovered: the machine of an agent dies (agent
// and runner killed) while it runs a run; its heartbeats lapse, the run is
// re-queued, and another agent completes it.
func TestAgentLostAfterClaimIsRecovered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, onSQLite)
	bin := flowsBin(t)
	e.register(bin)
	reeveBin := program(t, "../../cmd/reeve", "reeve")
	agentToken, err := e.cl.CreateToken(e.ctx, api.CreateToken{Name: "doomed", Role: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	doomed := exec.Command(reeveBin, "agent", "process", "--name", "doomed", "--data-dir", t.TempDir(), "--max-runs", "1")
	doomed.Env = []string{"REEVE_SERVER=" + e.url, "REEVE_TOKEN=" + agentToken.Secret, "E2E_DIR=" + e.dir,
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	doomed.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := doomed.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill := func() { once.Do(func() { _ = syscall.Kill(doomed.Process.Pid, syscall.SIGKILL); _ = doomed.Wait() }) }
	t.Cleanup(kill)

	run := e.create("hold", "")
	pid, _ := strconv.Atoi(e.waitFile("started-1", nil))
	kill()
	_ = syscall.Kill(pid, syscall.SIGKILL) // the runner dies with its machine
	e.wait(run.ID, "re-queued", func(d *api.FlowRunDetail) bool { return d.FlowRun.Recoveries == 1 })
	e.release()
	e.startAgent("survivor", nil, 1)
	d := e.finished(run.ID)
	if d.FlowRun.State.Kind != state.Success || d.FlowRun.Attempt != 2 {
		t.Fatalf("run: %s at attempt %d, want Success at attempt 2\n%s", d.FlowRun.State, d.FlowRun.Attempt, history(d))
	}
	if !strings.Contains(history(d), "no heartbeat from the runner of attempt 1") {
		t.Errorf("the history does not say why the run was re-queued:\n%s", history(d))
	}
}

// TestLongRetryIsRequeuedAndResumed: a retry further away than the
// runner's wait re-queues the run for then; a new runner resumes it,
// reusing what finished.
func TestLongRetryIsRequeuedAndResumed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, onSQLite)
	e.register(flowsBin(t))
	e.startAgent("a1", nil, 2, "REEVE_MAX_RETRY_WAIT=1s")
	run := e.create("longretry", "")
	d := e.finished(run.ID)
	if d.FlowRun.State.Kind != state.Success || d.FlowRun.Attempt != 2 {
		t.Fatalf("run: %s at attempt %d, want Success at attempt 2\n%s", d.FlowRun.State, d.FlowRun.Attempt, history(d))
	}
	requeued := false
	for _, s := range d.History {
		requeued = requeued || (s.Kind == state.Scheduled && strings.Contains(s.Message, `task "e2e.flaky" retries at`))
	}
	if !requeued {
		t.Errorf("the history has no re-queue for the retry:\n%s", history(d))
	}
	if n := e.count("before", run.ID); n != 1 {
		t.Errorf("the task before the retry ran %d times, want once", n)
	}
	var pids []string
	for _, l := range e.calls() {
		if strings.HasPrefix(l, "e2e.flaky_attempt") {
			pids = append(pids, l[strings.LastIndex(l, "_")+1:])
		}
	}
	if len(pids) != 2 || pids[0] == pids[1] {
		t.Errorf("flaky's attempts ran in processes %v, want two attempts in two runners", pids)
	}
}

// TestCancelStopsTheRunner: a user's cancel reaches the runner, the
// running task sees its context cancelled, and the run ends Cancelled.
func TestCancelStopsTheRunner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, onSQLite)
	e.register(flowsBin(t))
	e.startAgent("a1", nil, 2)
	run := e.create("hold", "")
	e.waitFile("started-1", nil)
	if _, err := e.cl.CancelFlowRun(e.ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	d := e.finished(run.ID)
	if d.FlowRun.State.Kind != state.Cancelled {
		t.Fatalf("run ended %s, want Cancelled\n%s", d.FlowRun.State, history(d))
	}
	if len(d.TaskRuns) != 1 || d.TaskRuns[0].State.Kind != state.Cancelled {
		t.Errorf("the gate task run: %s, want Cancelled", history(d))
	}
	if _, err := os.Stat(filepath.Join(e.dir, "release")); err == nil {
		t.Error("the gate was released: the test is wrong")
	}
}

// TestLabelsRouteRunsExactlyOnce: 3 agents with different labels and 300
// runs: each run is executed exactly once, by the agent whose labels
// cover its flow's.
//
// It runs alone (not in parallel with the other tests): 300 flow program
// processes load a 2-core machine enough to delay heartbeats.
func TestLabelsRouteRunsExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("300 runs: not in -short")
	}
	e := newEnvWith(t, onSQLite, calm)
	e.register(flowsBin(t))
	agents := map[string]string{}
	for _, l := range []string{"a", "b", "c"} {
		e.startAgent("agent-"+l, []string{l}, 8)
	}
	var as []api.Agent
	for len(as) < 3 { // the agents register as they start
		var err error
		if as, err = e.cl.Agents(e.ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, a := range as {
		agents[a.ID] = strings.TrimPrefix(a.Name, "agent-")
	}
	var runs []api.FlowRun
	for i := range 300 {
		runs = append(runs, e.create("labeled-"+string(rune('a'+i%3)), ""))
	}
	for _, r := range runs {
		d := e.finished(r.ID)
		want := strings.TrimPrefix(flowName(t, e, d), "labeled-")
		if d.FlowRun.State.Kind != state.Success {
			t.Errorf("run %s ended %s", r.ID, d.FlowRun.State)
		}
		if agents[d.FlowRun.AgentID] != want || d.FlowRun.Attempt != 1 {
			t.Errorf("run %s of labeled-%s ran on agent %q at attempt %d", r.ID, want, agents[d.FlowRun.AgentID], d.FlowRun.Attempt)
		}
		if n := e.count("work", r.ID); n != 1 {
			t.Errorf("run %s: its task ran %d times, want exactly once", r.ID, n)
		}
	}
}

var flowNames sync.Map

func flowName(t *testing.T, e *env, d *api.FlowRunDetail) string {
	if v, ok := flowNames.Load(d.FlowRun.FlowID); ok {
		return v.(string)
	}
	f, err := e.cl.Flow(e.ctx, d.FlowRun.FlowID)
	if err != nil {
		t.Fatal(err)
	}
	flowNames.Store(d.FlowRun.FlowID, f.Flow.Name)
	return f.Flow.Name
}

// TestRestartRunsOnlyWhatFailed: `reeve run restart` on a failed run
// re-runs only the failed children of a mapped task and what waited on
// them, reusing every persisted result.
func TestRestartRunsOnlyWhatFailed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, onSQLite)
	e.register(flowsBin(t))
	e.startAgent("a1", nil, 2)
	run := e.create("restartable", "")
	d := e.finished(run.ID)
	if d.FlowRun.State.Kind != state.Failed {
		t.Fatalf("first attempt: %s, want Failed (odd picks fail)\n%s", d.FlowRun.State, history(d))
	}
	if err := os.WriteFile(filepath.Join(e.dir, "fixed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := e.reeve("run", "restart", run.ID)
	if !strings.Contains(out, "Scheduled") {
		t.Errorf("reeve run restart said %q", out)
	}
	d = e.finished(run.ID)
	if d.FlowRun.State.Kind != state.Success {
		t.Fatalf("after restart: %s\n%s", d.FlowRun.State, history(d))
	}
	for i, want := range []int{1, 2, 1, 2, 1} {
		if n := e.count(fmt.Sprintf("e2e.pick[%d]", i), run.ID); n != want {
			t.Errorf("pick[%d] ran %d times, want %d (only the failed children run again)", i, n, want)
		}
	}
	for _, tr := range d.TaskRuns {
		if tr.Key == "e2e.sum" {
			b, _, err := e.cl.GetResult(e.ctx, run.ID, tr.State.Result.Key)
			if err != nil || strings.TrimSpace(string(b)) != "10" {
				t.Errorf("sum = %q (%v), want 10", b, err)
			}
		}
	}
}

// TestLateRunSaysWhy: a run no agent can take says why in its state
// message and in `reeve run show`, and the reason follows the agents.
func TestLateRunSaysWhy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, onSQLite)
	e.register(flowsBin(t))
	run := e.create("labeled-a", "")
	e.wait(run.ID, "a late reason", func(d *api.FlowRunDetail) bool {
		return strings.Contains(d.FlowRun.State.Message, "late: no agent is online")
	})
	if show := e.reeve("run", "show", run.ID); !strings.Contains(show, "late: no agent is online: start one, e.g. `reeve agent process --labels a`") {
		t.Errorf("reeve run show does not say why the run waits:\n%s", show)
	}
	e.startAgent("b-box", []string{"b"}, 1)
	e.wait(run.ID, "a new late reason", func(d *api.FlowRunDetail) bool {
		return strings.Contains(d.FlowRun.State.Message, "late: no online agent's labels cover the labels [a]; online agents: b-box [b]")
	})
	e.startAgent("a-box", []string{"a"}, 1)
	if d := e.finished(run.ID); d.FlowRun.State.Kind != state.Success {
		t.Errorf("with a matching agent the run ended %s", d.FlowRun.State)
	}
}
