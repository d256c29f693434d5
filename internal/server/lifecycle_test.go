package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

// claimOne registers flow name, creates a run and claims it for a fresh
// agent; it returns the agent's token, the agent and the claim.
func (e *env) claimOne(name string) (string, api.Agent, api.Claim) {
	e.t.Helper()
	ag := e.token("agent")
	var a api.Agent
	e.ok(200, "POST", "/api/v1/agents", ag, api.RegisterAgent{Name: "box-" + name}, &a)
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON(name, "")})
	e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	var c api.Claim
	e.ok(200, "POST", "/api/v1/agents/"+a.ID+"/claim?wait=0s", ag, nil, &c)
	return ag, a, c
}

func TestRunHeartbeatAndCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *serverConfig) { c.HeartbeatInterval = 250 * time.Millisecond })
	_, _, c := e.claimOne("hb")
	run := c.FlowRun
	if run.Attempt != 1 {
		t.Fatalf("first claim: attempt %d, want 1", run.Attempt)
	}
	var running api.FlowRun
	e.ok(200, "POST", "/api/v1/flow_runs/"+run.ID+"/state", c.Token, api.SetState{State: state.State{Kind: state.Running}, ExpectVersion: run.Version}, &running)

	var hb api.RunHeartbeat
	e.ok(200, "POST", "/api/v1/flow_runs/"+run.ID+"/heartbeat", c.Token, nil, &hb)
	if hb.Cancel || time.Duration(hb.Interval) != 250*time.Millisecond || hb.FlowRun.HeartbeatAt.IsZero() {
		t.Fatalf("heartbeat = %+v, want no cancel, the server's interval and a heartbeat time", hb)
	}
	if hb.FlowRun.Version != running.Version {
		t.Errorf("a heartbeat changed the state version: %d → %d", running.Version, hb.FlowRun.Version)
	}

	// A user cancels: the run waits for its runner, which learns it from
	// its next heartbeat and confirms.
	var cancelling api.FlowRun
	e.ok(200, "POST", "/api/v1/flow_runs/"+run.ID+"/cancel", e.admin, nil, &cancelling)
	if cancelling.State.Kind != state.Cancelling {
		t.Fatalf("cancel of a Running run: %s, want Cancelling", cancelling.State)
	}
	e.ok(200, "POST", "/api/v1/flow_runs/"+run.ID+"/heartbeat", c.Token, nil, &hb)
	if !hb.Cancel {
		t.Fatalf("heartbeat after cancel = %+v, want cancel", hb)
	}
	e.ok(200, "POST", "/api/v1/flow_runs/"+run.ID+"/state", c.Token, api.SetState{State: state.State{Kind: state.Cancelled, Message: "tasks stopped"}, ExpectVersion: cancelling.Version}, nil)

	// A run nobody claimed is cancelled at once.
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("waiting", "")})
	w := e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	var cancelled api.FlowRun
	e.ok(200, "POST", "/api/v1/flow_runs/"+w.ID+"/cancel", e.admin, nil, &cancelled)
	if cancelled.State.Kind != state.Cancelled {
		t.Errorf("cancel of a Scheduled run: %s, want Cancelled", cancelled.State)
	}
	// Only a run token heartbeats a run.
	e.fails(403, "POST", "/api/v1/flow_runs/"+run.ID+"/heartbeat", e.admin, nil, "run token")
}

// TestSupersededRunnerIsFenced: a runner whose attempt was declared lost
// comes back and finds every write refused, while the new attempt's runner
// works undisturbed.
func TestSupersededRunnerIsFenced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ag, a, c1 := e.claimOne("fence")
	id := c1.FlowRun.ID
	var running api.FlowRun
	e.ok(200, "POST", "/api/v1/flow_runs/"+id+"/state", c1.Token, api.SetState{State: state.State{Kind: state.Running}, ExpectVersion: c1.FlowRun.Version}, &running)
	var trs api.TaskRuns
	e.ok(200, "POST", "/api/v1/flow_runs/"+id+"/task_run_states", c1.Token, api.WriteTaskRunStates{Writes: []api.TaskRunWrite{
		{Key: "extract", Task: "extract", State: state.State{Kind: state.Running}},
	}}, &trs)

	// The agent saw the runner die (or so it thought): lost, re-queued.
	e.fails(400, "POST", "/api/v1/flow_runs/"+id+"/lost", ag, api.ReportLost{Attempt: 1}, "reason")
	e.fails(409, "POST", "/api/v1/flow_runs/"+id+"/lost", ag, api.ReportLost{Attempt: 2, Reason: "gone"}, "attempt 1, not 2")
	var lost api.FlowRun
	e.ok(200, "POST", "/api/v1/flow_runs/"+id+"/lost", ag, api.ReportLost{Attempt: 1, Reason: "the flow program was killed by signal 9"}, &lost)
	if lost.State.Kind != state.Scheduled || lost.Recoveries != 1 || !strings.Contains(lost.State.Message, "killed by signal 9") {
		t.Fatalf("after /lost: %s (%d recoveries), want re-queued with the reason", lost.State, lost.Recoveries)
	}
	// Re-queued, not yet claimed: the lost runner still may not write.
	e.fails(409, "POST", "/api/v1/flow_runs/"+id+"/heartbeat", c1.Token, nil, "was re-queued")
	e.fails(409, "POST", "/api/v1/flow_runs/"+id+"/task_run_states", c1.Token, api.WriteTaskRunStates{Writes: []api.TaskRunWrite{
		{Key: "load", Task: "load", State: state.State{Kind: state.Running}},
	}}, "was re-queued")

	var c2 api.Claim
	e.ok(200, "POST", "/api/v1/agents/"+a.ID+"/claim?wait=0s", ag, nil, &c2)
	if c2.FlowRun.ID != id || c2.FlowRun.Attempt != 2 {
		t.Fatalf("second claim: %s attempt %d, want %s attempt 2", c2.FlowRun.ID, c2.FlowRun.Attempt, id)
	}
	var detail api.FlowRunDetail
	e.ok(200, "GET", "/api/v1/flow_runs/"+id, e.admin, nil, &detail)
	if tr := detail.TaskRuns[0]; tr.State.Kind != state.Failed || !strings.HasPrefix(tr.State.Message, "runner lost: ") {
		t.Errorf("the lost attempt's running task run: %s, want Failed: runner lost", tr.State)
	}

	// The first runner resumes from its pause: all its writes are refused.
	for _, call := range []struct {
		path string
		body any
	}{
		{"/heartbeat", nil},
		{"/state", api.SetState{State: state.State{Kind: state.Success}, ExpectVersion: c2.FlowRun.Version}},
		{"/task_run_states", api.WriteTaskRunStates{Writes: []api.TaskRunWrite{{Key: "extract", Task: "extract", ExpectVersion: detail.TaskRuns[0].Version, State: state.State{Kind: state.Success}}}}},
	} {
		e.fails(409, "POST", "/api/v1/flow_runs/"+id+call.path, c1.Token, call.body, "superseded by attempt 2")
	}
	// Its log lines are still taken: they say what it did.
	e.ok(204, "POST", "/api/v1/flow_runs/"+id+"/logs", c1.Token, api.AppendLogs{Logs: []api.LogLine{{Time: time.Now(), Level: "INFO", Message: "old runner woke up"}}}, nil)

	// The new runner is undisturbed.
	e.ok(200, "POST", "/api/v1/flow_runs/"+id+"/state", c2.Token, api.SetState{State: state.State{Kind: state.Running}, ExpectVersion: c2.FlowRun.Version}, nil)
	e.ok(200, "POST", "/api/v1/flow_runs/"+id+"/heartbeat", c2.Token, nil, nil)
	e.ok(200, "GET", "/api/v1/flow_runs/"+id, e.admin, nil, &detail)
	if detail.FlowRun.State.Kind != state.Running || detail.FlowRun.Attempt != 2 {
		t.Errorf("the run is %s at attempt %d, want Running at attempt 2", detail.FlowRun.State, detail.FlowRun.Attempt)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, _, c := e.claimOne("restart")
	id := c.FlowRun.ID
	e.fails(409, "POST", "/api/v1/flow_runs/"+id+"/restart", e.admin, nil, "is Submitted, not finished")
	var failed api.FlowRun
	e.ok(200, "POST", "/api/v1/flow_runs/"+id+"/state", c.Token, api.SetState{State: state.State{Kind: state.Failed, Message: "boom"}, ExpectVersion: c.FlowRun.Version}, &failed)
	var restarted api.FlowRun
	e.ok(200, "POST", "/api/v1/flow_runs/"+id+"/restart", e.token("developer"), nil, &restarted)
	if restarted.State.Kind != state.Scheduled || restarted.AgentID != "" || !strings.Contains(restarted.State.Message, "restarted by developer token") {
		t.Fatalf("restarted = %+v", restarted)
	}
	// The old attempt's token is dead; the run is claimable again.
	e.fails(409, "POST", "/api/v1/flow_runs/"+id+"/restart", e.admin, nil, "not finished")

	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("fine", "")})
	ok := e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	e.ok(200, "POST", "/api/v1/flow_runs/"+ok.ID+"/state", e.admin, api.SetState{State: state.State{Kind: state.Success}, ExpectVersion: ok.Version}, nil)
	e.fails(409, "POST", "/api/v1/flow_runs/"+ok.ID+"/restart", e.admin, nil, "succeeded")
}

func TestRegisterWarnsWhenNoAgentMatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("lonely", `"labels":["gpu"]`)})
	if len(reg.Warnings) != 1 || !strings.Contains(reg.Warnings[0], "no agent is online") {
		t.Errorf("with no agent: warnings %q", reg.Warnings)
	}
	e.ok(200, "POST", "/api/v1/agents", e.admin, api.RegisterAgent{Name: "cpu-box", Labels: []string{"linux"}}, nil)
	reg = e.register(e.admin, api.RegisterFlow{Spec: specJSON("lonely", `"labels":["gpu"]`)})
	if len(reg.Warnings) != 1 || !strings.Contains(reg.Warnings[0], "no online agent's labels cover the labels [gpu]") {
		t.Errorf("with a cpu agent: warnings %q", reg.Warnings)
	}
	e.ok(200, "POST", "/api/v1/agents", e.admin, api.RegisterAgent{Name: "gpu-box", Labels: []string{"gpu"}}, nil)
	reg = e.register(e.admin, api.RegisterFlow{Spec: specJSON("lonely", `"labels":["gpu"]`)})
	if len(reg.Warnings) != 0 {
		t.Errorf("with a gpu agent: warnings %q, want none", reg.Warnings)
	}
}

// TestRegisterWarnsWhenNoAgentRunsTheKind: the agents whose labels cover
// the flow's all run another storage kind: its runs will wait, and the
// warning says which kinds the agents run.
func TestRegisterWarnsWhenNoAgentRunsTheKind(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(200, "POST", "/api/v1/agents", e.admin, api.RegisterAgent{Name: "box-1", Labels: []string{"x"}, StorageKinds: []string{"local"}}, nil)
	e.ok(200, "POST", "/api/v1/agents", e.admin, api.RegisterAgent{Name: "box-2", Labels: []string{"y"}, StorageKinds: []string{"docker"}}, nil)
	image := api.Storage{Kind: api.StorageDocker, Image: "registry.example/image@sha256:" + strings.Repeat("c", 64)}
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("boxed", `"labels":["x"]`), Storage: image})
	want := "runs of flow \"boxed\" will wait: no online agent runs docker flows with labels [x] (online: box-1 runs local); start one with `reeve agent docker --labels x`"
	if len(reg.Warnings) != 1 || reg.Warnings[0] != want {
		t.Errorf("with only a local agent for its labels: warnings %q, want [%q]", reg.Warnings, want)
	}
	// The label case keeps its wording.
	reg = e.register(e.admin, api.RegisterFlow{Spec: specJSON("boxed", `"labels":["z"]`), Storage: image})
	if len(reg.Warnings) != 1 || !strings.Contains(reg.Warnings[0], "no online agent's labels cover the labels [z]") {
		t.Errorf("with no agent for its labels: warnings %q", reg.Warnings)
	}
	// An agent of its kind with its labels: no warning.
	e.ok(200, "POST", "/api/v1/agents", e.admin, api.RegisterAgent{Name: "box-1", Labels: []string{"x"}, StorageKinds: []string{"docker", "local"}}, nil)
	reg = e.register(e.admin, api.RegisterFlow{Spec: specJSON("boxed", `"labels":["x"]`), Storage: image})
	if len(reg.Warnings) != 0 {
		t.Errorf("with box-1 running docker flows too: warnings %q, want none", reg.Warnings)
	}
}

// TestRunTokenReadsOnlyItsRunsFlowVersion: the runner reads the spec it
// runs; a run token may not read other flows' versions.
func TestRunTokenReadsOnlyItsRunsFlowVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, _, c := e.claimOne("mine")
	other := e.register(e.admin, api.RegisterFlow{Spec: specJSON("theirs", "")})
	var v api.FlowVersion
	e.ok(200, "GET", "/api/v1/flow_versions/"+c.FlowVersion.ID, c.Token, nil, &v)
	if v.ID != c.FlowVersion.ID || len(v.Spec) == 0 {
		t.Errorf("the run's flow version = %+v", v)
	}
	e.fails(403, "GET", "/api/v1/flow_versions/"+other.Version.ID, c.Token, nil, "run token")
}
