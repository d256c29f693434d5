package server_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

func TestClaim(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ag := e.token("agent")
	var linux, gpu api.Agent
	e.ok(200, "POST", "/api/v1/agents", ag, api.RegisterAgent{Name: "linux-box", Labels: []string{"linux"}}, &linux)
	e.ok(200, "POST", "/api/v1/agents", ag, api.RegisterAgent{Name: "gpu-box", Labels: []string{"linux", "gpu"}}, &gpu)

	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("train", `"labels":["gpu"]`), Labels: []string{"linux"}})
	run := e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	if len(run.Labels) != 2 {
		t.Fatalf("run labels = %v, want the version's labels", run.Labels)
	}

	// The linux-only agent's labels do not cover the run's: nothing.
	e.ok(204, "POST", "/api/v1/agents/"+linux.ID+"/claim?wait=0s", ag, nil, nil)

	var c api.Claim
	e.ok(200, "POST", "/api/v1/agents/"+gpu.ID+"/claim?wait=0s", ag, nil, &c)
	if c.FlowRun.ID != run.ID || c.FlowRun.State.Kind != state.Submitted || c.FlowRun.AgentID != gpu.ID || c.FlowRun.Version != 2 {
		t.Errorf("claimed = %+v, want the run Submitted to gpu-box, version 2", c.FlowRun)
	}
	if c.FlowVersion.ID != reg.Version.ID || c.Token == "" {
		t.Errorf("claim answer = %+v, want the flow version and a run token", c)
	}
	// The run token works for the run: set Running.
	e.ok(200, "POST", "/api/v1/flow_runs/"+run.ID+"/state", c.Token, api.SetState{State: state.State{Kind: state.Running}, ExpectVersion: 2}, nil)
	// Claimed once: nothing left.
	e.ok(204, "POST", "/api/v1/agents/"+gpu.ID+"/claim?wait=0s", ag, nil, nil)

	e.fails(404, "POST", "/api/v1/agents/nope/claim?wait=0s", ag, nil)
	e.fails(400, "POST", "/api/v1/agents/"+gpu.ID+"/claim?wait=soon", ag, nil, "wait")
	e.fails(400, "POST", "/api/v1/agents", ag, api.RegisterAgent{Name: "Bad Name"}, "agent name")

	var agents api.Agents
	e.ok(200, "GET", "/api/v1/agents", e.admin, nil, &agents)
	if len(agents.Agents) != 2 {
		t.Errorf("agents = %+v", agents)
	}
}

// TestClaimWakesOnNewRun: a waiting claim is answered as soon as a run is
// created, well before the poll interval or its wait.
func TestClaimWakesOnNewRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *serverConfig) { c.PollInterval = time.Hour })
	ag := e.token("agent")
	var a api.Agent
	e.ok(200, "POST", "/api/v1/agents", ag, api.RegisterAgent{Name: "a"}, &a)
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("f", "")})

	var (
		wg  sync.WaitGroup
		got response
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		got = e.do("POST", "/api/v1/agents/"+a.ID+"/claim?wait=30s", ag, nil)
	}()
	// Let the claim start waiting, then create a run.
	eventually(t, "the claim waits", func() bool {
		var as api.Agents
		e.ok(200, "GET", "/api/v1/agents", ag, nil, &as)
		return as.Agents[0].LastSeenAt.After(a.LastSeenAt)
	})
	start := time.Now()
	run := e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	wg.Wait()
	if got.status != 200 {
		t.Fatalf("claim = %v", got)
	}
	var c api.Claim
	if err := json.Unmarshal(got.body, &c); err != nil || c.FlowRun.ID != run.ID {
		t.Fatalf("claim = %s, want run %s", got.body, run.ID)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the claim took %v after the run was created", d)
	}
}

// TestClaimAcrossConcurrentAgents: many agents claiming together each get
// distinct runs, and every run is claimed once.
func TestClaimAcrossConcurrentAgents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ag := e.token("agent")
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("f", "")})
	const runs, agents = 60, 6
	for range runs {
		e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	}
	var (
		mu      sync.Mutex
		claimed = map[string]string{}
		wg      sync.WaitGroup
	)
	for i := range agents {
		var a api.Agent
		e.ok(200, "POST", "/api/v1/agents", ag, api.RegisterAgent{Name: "agent-" + string(rune('a'+i))}, &a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				res := e.do("POST", "/api/v1/agents/"+a.ID+"/claim?wait=0s", ag, nil)
				if res.status == 204 {
					return
				}
				var c api.Claim
				if res.status != 200 || json.Unmarshal(res.body, &c) != nil {
					t.Errorf("claim = %v", res)
					return
				}
				mu.Lock()
				if prev, ok := claimed[c.FlowRun.ID]; ok {
					t.Errorf("run %s claimed by %s and %s", c.FlowRun.ID, prev, a.ID)
				}
				claimed[c.FlowRun.ID] = a.ID
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != runs {
		t.Errorf("%d runs claimed, want %d", len(claimed), runs)
	}
}
