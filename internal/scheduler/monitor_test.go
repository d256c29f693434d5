package scheduler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// monitorEnv is a real SQLite store with one flow, an agent that covers
// its labels, and a monitor whose clock the test sets (the store keeps the
// real clock, so the monitor's clock is set ahead of it).
type monitorEnv struct {
	t     *testing.T
	st    store.Store
	v     store.FlowVersion
	agent store.Agent
	clock *clock
	mon   *scheduler.Monitor
	woken int
}

func newMonitorEnv(t *testing.T) *monitorEnv {
	t.Helper()
	e := &monitorEnv{t: t, st: openStore(t), clock: newClock(time.Now())}
	e.v = register(t, e.st, "default", flowSpec("etl", "eu"))
	var err error
	if e.agent, err = e.st.RegisterAgent(t.Context(), "a1", []string{"linux", "team-data", "gpu"}, nil); err != nil {
		t.Fatal(err)
	}
	e.mon, err = scheduler.NewMonitor(scheduler.MonitorConfig{
		Store: e.st, Now: e.clock.Now, Requeued: func() { e.woken++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// claimed creates a run and claims it for the agent.
func (e *monitorEnv) claimed() store.FlowRun {
	e.t.Helper()
	ctx := e.t.Context()
	run, _, err := e.st.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: e.v.ID, Labels: e.v.Labels, Params: []byte(`{"day":"d"}`)})
	if err != nil {
		e.t.Fatal(err)
	}
	claimed, err := e.st.ClaimFlowRun(ctx, e.agent.ID, time.Time{})
	if err != nil || claimed.ID != run.ID {
		e.t.Fatalf("claim: %v, %v", claimed.ID, err)
	}
	return claimed
}

func (e *monitorEnv) tickAt(d time.Duration) {
	e.t.Helper()
	e.clock.Set(time.Now().Add(d))
	if err := e.mon.Tick(e.t.Context()); err != nil {
		e.t.Fatalf("Tick: %v", err)
	}
}

func (e *monitorEnv) get(id string) store.FlowRun {
	e.t.Helper()
	run, err := e.st.GetFlowRun(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return run
}

func TestMonitorRequeuesRunStuckInSubmitted(t *testing.T) {
	t.Parallel()
	e := newMonitorEnv(t)
	run := e.claimed()

	e.tickAt(time.Minute)
	if got := e.get(run.ID); got.State.Kind != state.Submitted {
		t.Fatalf("after 1m a claimed run is %s, want still Submitted (the timeout is 2m)", got.State)
	}
	e.tickAt(3 * time.Minute)
	got := e.get(run.ID)
	if got.State.Kind != state.Scheduled || got.Recoveries != 1 || got.AgentID != "" {
		t.Fatalf("after 3m: %+v, want re-queued (Scheduled, 1 recovery, no agent)", got)
	}
	// The re-queue is in the history (the same pass may already have
	// given the run, late by the test's clock, a late message).
	hist, err := e.st.History(t.Context(), run.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	requeue := hist[2]
	for _, want := range []string{"re-queued (recovery 1 of 3)", "no runner started within 2m0s of the claim", "attempt 1"} {
		if requeue.Kind != state.Scheduled || !strings.Contains(requeue.Message, want) {
			t.Errorf("re-queue state %s lacks %q", requeue, want)
		}
	}
	if e.woken != 1 {
		t.Errorf("Requeued called %d times, want 1 (waiting claims must wake)", e.woken)
	}
	again, err := e.st.ClaimFlowRun(t.Context(), e.agent.ID, time.Time{})
	if err != nil || again.ID != run.ID || again.Attempt != 2 {
		t.Fatalf("claim of the re-queued run: attempt %d, %v; want attempt 2", again.Attempt, err)
	}
}

func TestMonitorLostRunnerIsRequeuedThenFailed(t *testing.T) {
	t.Parallel()
	e := newMonitorEnv(t)
	ctx := t.Context()
	run := e.claimed()
	for attempt := 1; ; attempt++ {
		if _, err := e.st.SetFlowRunState(ctx, run.ID, e.get(run.ID).Version, state.State{Kind: state.Running}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.HeartbeatFlowRun(ctx, run.ID, attempt); err != nil {
			t.Fatalf("heartbeat of attempt %d: %v", attempt, err)
		}
		key := "extract"
		expect := int64(0)
		if trs, _ := e.st.ListTaskRuns(ctx, run.ID); len(trs) > 0 {
			expect = trs[0].Version
		}
		if _, err := e.st.WriteTaskRunStates(ctx, run.ID, attempt, []store.TaskRunWrite{{Key: key, Task: key, Expect: expect, State: state.State{Kind: state.Running}}}); err != nil {
			t.Fatal(err)
		}

		e.tickAt(25 * time.Second) // under 3 × 10s
		if got := e.get(run.ID); got.State.Kind != state.Running {
			t.Fatalf("attempt %d: 25s after a heartbeat the run is %s, want Running", attempt, got.State)
		}
		e.tickAt(40 * time.Second)
		got := e.get(run.ID)
		trs, _ := e.st.ListTaskRuns(ctx, run.ID)
		if len(trs) != 1 || trs[0].State.Kind != state.Failed || !strings.HasPrefix(trs[0].State.Message, "runner lost: no heartbeat") {
			t.Fatalf("attempt %d: the running task run is %+v, want Failed: runner lost", attempt, trs)
		}
		if attempt <= 3 {
			if got.State.Kind != state.Scheduled || got.Recoveries != attempt {
				t.Fatalf("attempt %d: %s, %d recoveries; want re-queued", attempt, got.State, got.Recoveries)
			}
			if _, err := e.st.ClaimFlowRun(ctx, e.agent.ID, time.Time{}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got.State.Kind != state.Failed || !strings.Contains(got.State.Message, "gave up after 3 recoveries") ||
			!strings.Contains(got.State.Message, "no heartbeat from the runner of attempt 4") {
			t.Fatalf("after the 4th loss: %s, want Failed saying why and that it gave up", got.State)
		}
		break
	}
}

func TestMonitorEndsUnconfirmedCancelCancelled(t *testing.T) {
	t.Parallel()
	e := newMonitorEnv(t)
	ctx := t.Context()
	run := e.claimed()
	run, err := e.st.SetFlowRunState(ctx, run.ID, run.Version, state.State{Kind: state.Running})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.SetFlowRunState(ctx, run.ID, run.Version, state.State{Kind: state.Cancelling, Message: "cancel requested"}); err != nil {
		t.Fatal(err)
	}
	e.tickAt(time.Minute)
	if got := e.get(run.ID); got.State.Kind != state.Cancelled {
		t.Fatalf("a Cancelling run whose runner is gone is %s, want Cancelled", got.State)
	}
}

func TestMonitorSaysWhyALateRunWaits(t *testing.T) {
	t.Parallel()
	e := newMonitorEnv(t)
	ctx := t.Context()
	run, _, err := e.st.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: e.v.ID, Labels: []string{"linux", "windows"}, Params: []byte(`{"day":"d"}`)})
	if err != nil {
		t.Fatal(err)
	}
	e.tickAt(10 * time.Second)
	if got := e.get(run.ID); got.State.Message != "" {
		t.Fatalf("a run 10s past its start has message %q, want none yet", got.State.Message)
	}
	e.tickAt(time.Minute)
	got := e.get(run.ID)
	for _, want := range []string{"late: no online agent's labels cover the labels [linux windows]", "a1 [linux team-data gpu]", "--labels linux,windows"} {
		if got.State.Kind != state.Scheduled || !strings.Contains(got.State.Message, want) {
			t.Errorf("late run: %s, want Scheduled with %q", got.State, want)
		}
	}
	v := got.Version
	e.tickAt(time.Minute + time.Second)
	if again := e.get(run.ID); again.Version != v {
		t.Errorf("an unchanged reason was written again (version %d → %d)", v, again.Version)
	}
	e.tickAt(5 * time.Minute) // the agent went quiet
	if got := e.get(run.ID); !strings.Contains(got.State.Message, "late: no agent is online: start one, e.g. `reeve agent process --labels linux,windows`") {
		t.Errorf("with no agent online: %s", got.State)
	}
}

// TestMonitorSaysWhenNoAgentRunsTheKind: a late run whose labels an
// online agent covers, but whose flow's storage kind no such agent runs,
// says so, naming the kinds they run.
func TestMonitorSaysWhenNoAgentRunsTheKind(t *testing.T) {
	t.Parallel()
	e := newMonitorEnv(t)
	ctx := t.Context()
	// The env's agent a1 runs every kind; as a Docker agent it takes no
	// local run, such as the env's flow's.
	if _, err := e.st.RegisterAgent(ctx, "a1", e.agent.Labels, []string{"docker"}); err != nil {
		t.Fatal(err)
	}
	run, _, err := e.st.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: e.v.ID, Labels: []string{"linux"}, Params: []byte(`{"day":"d"}`)})
	if err != nil {
		t.Fatal(err)
	}
	e.tickAt(time.Minute)
	want := "late: no online agent runs local flows with labels [linux] (online: a1 runs docker); start one with `reeve agent process --labels linux`"
	if got := e.get(run.ID); got.State.Kind != state.Scheduled || got.State.Message != want {
		t.Errorf("late run of a local flow with only a docker agent: %s, want Scheduled with %q", got.State, want)
	}
	// Once it runs local flows too, the run only waits for a free agent.
	if _, err := e.st.RegisterAgent(ctx, "a1", e.agent.Labels, []string{"docker", "local"}); err != nil {
		t.Fatal(err)
	}
	e.tickAt(time.Minute + time.Second)
	if got := e.get(run.ID); !strings.Contains(got.State.Message, "late: waiting for a free agent") {
		t.Errorf("late run with an agent of its kind: %s, want it waiting for a free agent", got.State)
	}
}

func TestStranded(t *testing.T) {
	t.Parallel()
	now := time.Now()
	agents := []store.Agent{
		{Name: "old", Labels: []string{"gpu"}, LastSeenAt: now.Add(-time.Hour)},
		{Name: "cpu", Labels: []string{"linux"}, LastSeenAt: now},
		{Name: "box-1", Labels: []string{"x"}, StorageKinds: []string{"local"}, LastSeenAt: now},
		{Name: "box-2", Labels: []string{"y"}, StorageKinds: []string{"docker"}, LastSeenAt: now},
		{Name: "old-docker", Labels: []string{"x"}, StorageKinds: []string{"docker"}, LastSeenAt: now.Add(-time.Hour)},
	}
	for _, tc := range []struct {
		labels []string
		kind   string
		want   string
	}{
		{nil, "local", ""},
		{nil, "docker", ""},
		{[]string{"linux"}, "local", ""},
		{[]string{"linux"}, "docker", ""}, // cpu registered no kinds: it runs every kind
		{[]string{"gpu"}, "local", "no online agent's labels cover the labels [gpu]; online agents: cpu [linux], box-1 [x], box-2 [y]; start one with `reeve agent process --labels gpu`"},
		{[]string{"gpu"}, "docker", "start one with `reeve agent docker --labels gpu`"},
		{[]string{"x"}, "local", ""},
		{[]string{"x"}, "docker", "no online agent runs docker flows with labels [x] (online: box-1 runs local); start one with `reeve agent docker --labels x`"},
		{[]string{"y"}, "local", "no online agent runs local flows with labels [y] (online: box-2 runs docker); start one with `reeve agent process --labels y`"},
		{[]string{"x"}, "", ""}, // no kind known: any agent whose labels cover
	} {
		got := scheduler.Stranded(agents, tc.labels, tc.kind, now)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("Stranded(%v, %q) = %q, want %q", tc.labels, tc.kind, got, tc.want)
		}
	}
	if got := scheduler.Stranded(agents[:1], nil, "local", now); !strings.Contains(got, "no agent is online") {
		t.Errorf("only an offline agent: %q", got)
	}
}

// TestMonitorSparesSubmittedRunBeingStarted: an agent that is still
// starting a run's program (pulling its image) heartbeats the Submitted
// run; the monitor counts the submit timeout from the last heartbeat.
func TestMonitorSparesSubmittedRunBeingStarted(t *testing.T) {
	t.Parallel()
	e := newMonitorEnv(t)
	var err error
	e.mon, err = scheduler.NewMonitor(scheduler.MonitorConfig{
		Store: e.st, Now: e.clock.Now, SubmitTimeout: time.Second, Requeued: func() { e.woken++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	run := e.claimed()
	time.Sleep(1500 * time.Millisecond) // the store's clock is real: let the claim age past the timeout
	if _, err := e.st.HeartbeatFlowRun(t.Context(), run.ID, run.Attempt); err != nil {
		t.Fatal(err)
	}
	e.tickAt(0)
	if got := e.get(run.ID); got.State.Kind != state.Submitted {
		t.Fatalf("a Submitted run heartbeated within the timeout is %s, want still Submitted", got.State)
	}
	e.tickAt(3 * time.Second)
	if got := e.get(run.ID); got.State.Kind != state.Scheduled {
		t.Fatalf("a Submitted run whose heartbeats stopped is %s, want re-queued", got.State)
	}
}
