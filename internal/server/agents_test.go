package server_test

import (
	"encoding/json"
	"slices"
	"strings"
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

// TestClaimByStorageKind: an agent is given only runs of flows stored in a
// kind it runs; one that names no kinds is given any. Kinds are checked,
// kept sorted and without repeats, and shown in the agent list.
func TestClaimByStorageKind(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ag := e.token("agent")
	e.fails(400, "POST", "/api/v1/agents", ag, api.RegisterAgent{Name: "ftp-box", StorageKinds: []string{"docker", "ftp"}},
		`storage kind "ftp"`, "local or docker")
	e.fails(400, "POST", "/api/v1/agents", ag, api.RegisterAgent{Name: "empty-kind", StorageKinds: []string{""}}, `storage kind ""`)
	var docker, process, any api.Agent
	e.ok(200, "POST", "/api/v1/agents", ag, api.RegisterAgent{Name: "docker-box", StorageKinds: []string{api.StorageDocker, api.StorageDocker}}, &docker)
	e.ok(200, "POST", "/api/v1/agents", ag, api.RegisterAgent{Name: "process-box", StorageKinds: []string{api.StorageLocal}}, &process)
	e.ok(200, "POST", "/api/v1/agents", ag, api.RegisterAgent{Name: "any-box"}, &any)
	if !slices.Equal(docker.StorageKinds, []string{"docker"}) || len(any.StorageKinds) != 0 {
		t.Errorf("registered kinds: docker-box %q, any-box %q; want [docker] and none", docker.StorageKinds, any.StorageKinds)
	}

	local := e.register(e.admin, api.RegisterFlow{Spec: specJSON("script", "")})
	image := e.register(e.admin, api.RegisterFlow{Spec: specJSON("image", ""),
		Storage: api.Storage{Kind: api.StorageDocker, Image: "registry.example/image@sha256:" + strings.Repeat("b", 64)}})
	localRun := e.run(e.admin, api.CreateFlowRun{FlowID: local.Flow.ID})

	// The Docker agent leaves the local run for the process agent.
	e.ok(204, "POST", "/api/v1/agents/"+docker.ID+"/claim?wait=0s", ag, nil, nil)
	var c api.Claim
	e.ok(200, "POST", "/api/v1/agents/"+process.ID+"/claim?wait=0s", ag, nil, &c)
	if c.FlowRun.ID != localRun.ID {
		t.Errorf("process-box claimed %s, want the local run %s", c.FlowRun.ID, localRun.ID)
	}
	// And the other way round; an agent without kinds takes either.
	imageRun := e.run(e.admin, api.CreateFlowRun{FlowID: image.Flow.ID})
	e.ok(204, "POST", "/api/v1/agents/"+process.ID+"/claim?wait=0s", ag, nil, nil)
	e.ok(200, "POST", "/api/v1/agents/"+any.ID+"/claim?wait=0s", ag, nil, &c)
	if c.FlowRun.ID != imageRun.ID {
		t.Errorf("any-box claimed %s, want the docker run %s", c.FlowRun.ID, imageRun.ID)
	}

	var agents api.Agents
	e.ok(200, "GET", "/api/v1/agents", e.admin, nil, &agents)
	kinds := make(map[string][]string)
	for _, a := range agents.Agents {
		kinds[a.Name] = a.StorageKinds
	}
	if !slices.Equal(kinds["docker-box"], []string{"docker"}) || !slices.Equal(kinds["process-box"], []string{"local"}) || len(kinds["any-box"]) != 0 {
		t.Errorf("listed kinds = %q", kinds)
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
