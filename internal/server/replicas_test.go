package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store/postgres"
	"github.com/reevehq/reeve/internal/testenv"
)

// TestClaimAcrossReplicasOnPostgres: 4 agents claim 500 runs through two
// server replicas on one PostgreSQL database, each agent going to either
// replica; every run is claimed exactly once and goes Scheduled → Submitted
// once.
func TestClaimAcrossReplicasOnPostgres(t *testing.T) {
	t.Parallel()
	dsn := testenv.Postgres(t)
	replicas := make([]*env, 2)
	for i := range replicas {
		st, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		replicas[i] = newEnvOn(t, st, "")
	}
	admin := replicas[0].admin
	if admin == "" {
		admin = replicas[1].admin
	}
	e := replicas[0]
	var agentTok api.NewToken
	e.ok(201, "POST", "/api/v1/tokens", admin, api.CreateToken{Name: "agents", Role: "agent"}, &agentTok)
	reg := e.register(admin, api.RegisterFlow{Spec: specJSON("f", "")})
	const runs, agents = 500, 4
	for i := range runs {
		replicas[i%2].run(admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	}

	var (
		mu      sync.Mutex
		claimed = map[string]string{}
		wg      sync.WaitGroup
	)
	for i := range agents {
		var a api.Agent
		replicas[i%2].ok(200, "POST", "/api/v1/agents", agentTok.Secret, api.RegisterAgent{Name: fmt.Sprint("agent-", i)}, &a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			empty := 0
			for n := 0; empty < 2; n++ {
				r := *replicas[(i+n)%2]
				r.t = t
				res := r.do("POST", "/api/v1/agents/"+a.ID+"/claim?wait=0s", agentTok.Secret, nil)
				if res.status == 204 {
					empty++ // nothing on this replica's view: ask the other once
					continue
				}
				empty = 0
				var c api.Claim
				if res.status != 200 || json.Unmarshal(res.body, &c) != nil {
					t.Errorf("claim = %v", res)
					return
				}
				mu.Lock()
				if prev, ok := claimed[c.FlowRun.ID]; ok {
					t.Errorf("run %s claimed by %s and by %s", c.FlowRun.ID, prev, a.Name)
				}
				claimed[c.FlowRun.ID] = a.Name
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != runs {
		t.Fatalf("%d runs claimed, want %d", len(claimed), runs)
	}
	perAgent := map[string]int{}
	for _, a := range claimed {
		perAgent[a]++
	}
	t.Logf("claims per agent: %v", perAgent)

	var page api.FlowRuns
	e.ok(200, "GET", "/api/v1/flow_runs?limit=1000&state=Submitted", admin, nil, &page)
	if len(page.FlowRuns) != runs {
		t.Errorf("%d runs Submitted, want %d", len(page.FlowRuns), runs)
	}
	for _, r := range page.FlowRuns[:20] {
		var hist api.History
		e.ok(200, "GET", "/api/v1/flow_runs/"+r.ID+"/history", admin, nil, &hist)
		if len(hist.States) != 2 || hist.States[0].Kind != state.Scheduled || hist.States[1].Kind != state.Submitted {
			t.Errorf("run %s history = %v, want Scheduled, Submitted", r.ID, hist.States)
		}
	}
}
