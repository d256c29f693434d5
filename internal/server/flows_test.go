package server_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

func TestRegisterFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.token("developer")

	first := e.register(dev, api.RegisterFlow{Spec: specJSON("etl", withParams), Labels: []string{"linux"}, RunConfig: api.RunConfig{Executor: "parallel", Workers: 4, CPU: "500m", Memory: "512Mi"}})
	if !first.Created || first.Version.Version != 1 || first.Flow.Name != "etl" {
		t.Fatalf("first registration = %+v, want version 1 created", first)
	}
	if first.Version.RunConfig.Workers != 4 || first.Version.Storage.Path != "/usr/local/bin/flows" || strings.Join(first.Version.Labels, ",") != "linux" {
		t.Errorf("version = %+v, want the storage, labels and run config registered", first.Version)
	}

	// The same spec again is a no-op that returns the existing version.
	again := e.register(dev, api.RegisterFlow{Spec: specJSON("etl", withParams), Labels: []string{"linux"}, RunConfig: api.RunConfig{Executor: "parallel", Workers: 4, CPU: "500m", Memory: "512Mi"}})
	if again.Created || again.Version.ID != first.Version.ID {
		t.Errorf("identical registration = %+v, want the existing version %s, not created", again, first.Version.ID)
	}

	// A changed spec is the next version and archives the previous one.
	second := e.register(dev, api.RegisterFlow{Spec: specJSON("etl", `"description":"v2",`+withParams), Labels: []string{"linux"}})
	if !second.Created || second.Version.Version != 2 || second.Flow.LatestVersion != 2 {
		t.Fatalf("changed spec = %+v, want version 2", second)
	}
	var detail api.FlowDetail
	e.ok(200, "GET", "/api/v1/flows/"+first.Flow.ID, dev, nil, &detail)
	if len(detail.Versions) != 2 || detail.Versions[0].Version != 2 || detail.Versions[0].Archived || !detail.Versions[1].Archived {
		t.Errorf("versions = %+v, want 2 (newest, live) then 1 (archived)", detail.Versions)
	}

	var flows api.Flows
	e.ok(200, "GET", "/api/v1/flows?name=etl", dev, nil, &flows)
	if len(flows.Flows) != 1 || flows.Flows[0].ID != first.Flow.ID {
		t.Errorf("flows named etl = %+v", flows)
	}
}

func TestRegisterFlowRefusesBadRegistrations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	local := api.Storage{Kind: "local", Path: "/bin/flows"}
	tests := []struct {
		name string
		req  api.RegisterFlow
		want []string
	}{
		{"schedule with a required parameter", api.RegisterFlow{Spec: specJSON("nightly", withParams+`,"schedule":{"cron":"0 6 * * *"}`), Storage: local},
			[]string{`flow "nightly" has a schedule`, `parameter "day" is required and has no default`}},
		{"no spec", api.RegisterFlow{Storage: local}, []string{"spec is missing"}},
		{"invalid spec", api.RegisterFlow{Spec: json.RawMessage(`{"spec_version":1,"name":"x","tasks":[{"id":"a","task":"a","after":["zz"]}]}`), Storage: local}, []string{"zz"}},
		{"image without digest", api.RegisterFlow{Spec: specJSON("f", ""), Storage: api.Storage{Kind: "docker", Image: "registry.example/flows:latest"}}, []string{"pinned by digest"}},
		{"relative program path", api.RegisterFlow{Spec: specJSON("f", ""), Storage: api.Storage{Kind: "local", Path: "bin/flows"}}, []string{"absolute path"}},
		{"unknown storage", api.RegisterFlow{Spec: specJSON("f", ""), Storage: api.Storage{Kind: "ftp"}}, []string{`storage kind "ftp"`}},
		{"bad memory", api.RegisterFlow{Spec: specJSON("f", ""), Storage: local, RunConfig: api.RunConfig{Memory: "lots"}}, []string{"run_config.memory"}},
		{"bad executor", api.RegisterFlow{Spec: specJSON("f", ""), Storage: local, RunConfig: api.RunConfig{Executor: "turbo"}}, []string{"run_config.executor"}},
		{"unknown project", api.RegisterFlow{Project: "nope", Spec: specJSON("f", ""), Storage: local}, []string{"nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := 400
			if tt.name == "unknown project" {
				status = 404
			}
			e.fails(status, "POST", "/api/v1/flows", e.admin, tt.req, tt.want...)
		})
	}
	var flows api.Flows
	e.ok(200, "GET", "/api/v1/flows", e.admin, nil, &flows)
	if len(flows.Flows) != 0 {
		t.Errorf("refused registrations left flows: %+v", flows.Flows)
	}
}

func TestFlowRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.token("developer")
	reg := e.register(dev, api.RegisterFlow{Spec: specJSON("etl", withParams)})

	// Parameters are checked against the spec before the run is accepted.
	e.fails(400, "POST", "/api/v1/flow_runs", dev, api.CreateFlowRun{Flow: "etl", Params: json.RawMessage(`{"limit":"ten","colour":1}`)},
		`parameter "day" (string) is required`, `parameter "limit" must be of type integer`, `no parameter "colour"`)
	e.fails(404, "POST", "/api/v1/flow_runs", dev, api.CreateFlowRun{Flow: "nope"}, `flow "nope" not found`)

	at := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	run := e.run(dev, api.CreateFlowRun{FlowID: reg.Flow.ID, Name: "backfill", Params: json.RawMessage(`{"day":"mon"}`), ScheduledAt: at})
	if run.State.Kind != state.Scheduled || run.Version != 1 || !run.ScheduledAt.Equal(at) || run.Name != "backfill" {
		t.Errorf("run = %+v, want Scheduled at %v, version 1", run, at)
	}
	var params map[string]any
	if err := json.Unmarshal(run.Params, &params); err != nil || params["day"] != "mon" || params["limit"] != float64(10) {
		t.Errorf("params = %s, want the given day and the default limit", run.Params)
	}

	// An idempotency key makes a repeated create return the same run.
	k1 := e.run(dev, api.CreateFlowRun{Flow: "etl", Params: json.RawMessage(`{"day":"tue"}`), IdempotencyKey: "k1"})
	var again api.CreatedFlowRun
	e.ok(200, "POST", "/api/v1/flow_runs", dev, api.CreateFlowRun{Flow: "etl", Params: json.RawMessage(`{"day":"tue"}`), IdempotencyKey: "k1"}, &again)
	if again.Created || again.FlowRun.ID != k1.ID {
		t.Errorf("repeated create = %+v, want run %s, created false", again, k1.ID)
	}

	// State changes carry the version the writer saw; a stale one is 409.
	var moved api.FlowRun
	e.ok(200, "POST", "/api/v1/flow_runs/"+k1.ID+"/state", e.admin, api.SetState{State: state.State{Kind: state.Running}, ExpectVersion: 1}, &moved)
	if moved.Version != 2 || moved.State.Kind != state.Running {
		t.Errorf("after a state change: %+v, want Running version 2", moved)
	}
	e.fails(409, "POST", "/api/v1/flow_runs/"+k1.ID+"/state", e.admin, api.SetState{State: state.State{Kind: state.Failed}, ExpectVersion: 1}, "state version 2, not 1")

	// Task-run states in batches, in order, in one transaction.
	var trs api.TaskRuns
	e.ok(200, "POST", "/api/v1/flow_runs/"+k1.ID+"/task_run_states", e.admin, api.WriteTaskRunStates{Writes: []api.TaskRunWrite{
		{Key: "a", Task: "a", State: state.State{Kind: state.Running}},
		{Key: "a", Task: "a", ExpectVersion: 1, State: state.State{Kind: state.Success}},
		{Key: "b", Task: "b", State: state.State{Kind: state.Pending}},
	}}, &trs)
	if len(trs.TaskRuns) != 3 || trs.TaskRuns[1].Version != 2 || trs.TaskRuns[1].State.Kind != state.Success {
		t.Fatalf("batch = %+v", trs)
	}
	// A batch with one stale write changes nothing.
	e.fails(409, "POST", "/api/v1/flow_runs/"+k1.ID+"/task_run_states", e.admin, api.WriteTaskRunStates{Writes: []api.TaskRunWrite{
		{Key: "b", Task: "b", ExpectVersion: 1, State: state.State{Kind: state.Running}},
		{Key: "a", Task: "a", ExpectVersion: 1, State: state.State{Kind: state.Failed}},
	}})
	var detail api.FlowRunDetail
	e.ok(200, "GET", "/api/v1/flow_runs/"+k1.ID, dev, nil, &detail)
	if len(detail.TaskRuns) != 2 || detail.TaskRuns[1].State.Kind != state.Pending || len(detail.History) != 2 {
		t.Errorf("detail = %+v, want a Success, b still Pending, 2 flow-run states", detail)
	}
	var hist api.History
	e.ok(200, "GET", "/api/v1/flow_runs/"+k1.ID+"/history?task_run_id="+detail.TaskRuns[0].ID, dev, nil, &hist)
	if len(hist.States) != 2 || hist.States[1].Kind != state.Success {
		t.Errorf("task-run history = %+v, want Running, Success", hist.States)
	}

	// Cancel: a run that has not finished; again is a conflict.
	var cancelled api.FlowRun
	e.ok(200, "POST", "/api/v1/flow_runs/"+run.ID+"/cancel", dev, nil, &cancelled)
	if cancelled.State.Kind != state.Cancelled || !strings.Contains(cancelled.State.Message, "developer token") {
		t.Errorf("cancelled = %+v", cancelled.State)
	}
	e.fails(409, "POST", "/api/v1/flow_runs/"+run.ID+"/cancel", dev, nil, "already finished")
	e.fails(409, "POST", "/api/v1/flow_runs/"+run.ID+"/state", e.admin, api.SetState{State: state.State{Kind: state.Running}, ExpectVersion: cancelled.Version}, "already finished")

	// Lists filter and page.
	var page api.FlowRuns
	e.ok(200, "GET", "/api/v1/flow_runs?limit=1&flow_id="+reg.Flow.ID, dev, nil, &page)
	if len(page.FlowRuns) != 1 || page.NextCursor == "" {
		t.Fatalf("page 1 = %+v", page)
	}
	var page2 api.FlowRuns
	e.ok(200, "GET", "/api/v1/flow_runs?limit=1&flow_id="+reg.Flow.ID+"&cursor="+url.QueryEscape(page.NextCursor), dev, nil, &page2)
	if len(page2.FlowRuns) != 1 || page2.FlowRuns[0].ID == page.FlowRuns[0].ID || page2.NextCursor != "" {
		t.Errorf("page 2 = %+v", page2)
	}
	var cancelledRuns api.FlowRuns
	e.ok(200, "GET", "/api/v1/flow_runs?state=Cancelled,Failed&project=default", dev, nil, &cancelledRuns)
	if len(cancelledRuns.FlowRuns) != 1 || cancelledRuns.FlowRuns[0].ID != run.ID {
		t.Errorf("Cancelled runs = %+v", cancelledRuns)
	}
	e.fails(400, "GET", "/api/v1/flow_runs?state=Done", dev, nil, `unknown state "Done"`)
	e.fails(400, "GET", "/api/v1/flow_runs?created_after=yesterday", dev, nil, "created_after")
	e.fails(400, "GET", "/api/v1/flow_runs?cursor=garbage", dev, nil)
}
