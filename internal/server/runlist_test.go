package server_test

import (
	"maps"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

// TestRunListFilters checks GET /flow_runs' label, param and q filters,
// its task counts, and GET /flow_runs/counts, as the UI's runs list and
// dashboard call them.
func TestRunListFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.token("developer")
	etl := e.register(e.admin, api.RegisterFlow{Spec: specJSON("etl", withParams)})
	gpu := e.register(e.admin, api.RegisterFlow{Spec: specJSON("train", withParams), Labels: []string{"gpu", "prod"}})
	mon := e.run(dev, api.CreateFlowRun{FlowID: etl.Flow.ID, Name: "Monday load", Params: []byte(`{"day": "mon"}`)})
	tue := e.run(dev, api.CreateFlowRun{FlowID: etl.Flow.ID, Name: "backfill", Params: []byte(`{"day": "tue", "limit": 3}`)})
	train := e.run(dev, api.CreateFlowRun{FlowID: gpu.Flow.ID, Params: []byte(`{"day": "mon", "limit": 3}`)})
	e.ok(200, "POST", "/api/v1/flow_runs/"+tue.ID+"/cancel", dev, nil, nil)
	e.ok(200, "POST", "/api/v1/flow_runs/"+mon.ID+"/task_run_states", e.admin, api.WriteTaskRunStates{Writes: []api.TaskRunWrite{
		{Key: "a", Task: "a", State: state.State{Kind: state.Success}},
		{Key: "b", Task: "b", State: state.State{Kind: state.Failed, Message: "boom"}},
	}}, nil)
	e.ok(200, "POST", "/api/v1/flow_runs/"+train.ID+"/task_run_states", e.admin, api.WriteTaskRunStates{Writes: []api.TaskRunWrite{
		{Key: "a", Task: "a", State: state.State{Kind: state.Running}},
	}}, nil)

	cases := []struct {
		name  string
		query string
		want  []string // newest first
	}{
		{"Label", "label=gpu", []string{train.ID}},
		{"EveryLabel", "label=gpu&label=prod", []string{train.ID}},
		{"LabelNoRunHas", "label=gpu&label=arm", nil},
		{"ParamString", "param=day%3Dmon", []string{train.ID, mon.ID}},
		{"ParamUnescapedEquals", "param=day=mon", []string{train.ID, mon.ID}},
		{"ParamNumber", "param=limit=3", []string{train.ID, tue.ID}},
		{"Params", "param=limit=3&param=day=tue", []string{tue.ID}},
		{"Text", "q=MONDAY", []string{mon.ID}},
		{"TextInID", "q=" + tue.ID[len(tue.ID)-12:], []string{tue.ID}},
		{"TextInMessageAndState", "q=DEVELOPER&state=Cancelled", []string{tue.ID}},
		{"TextNowhere", "q=zebra", nil},
		{"StateAndParam", "state=Scheduled&param=day=mon", []string{train.ID, mon.ID}},
		{"ProjectAndLabel", "project=default&label=prod", []string{train.ID}},
		{"CreatedAfter", "created_after=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)) + "&label=gpu", nil},
	}
	for _, c := range cases {
		var page api.FlowRuns
		e.ok(200, "GET", "/api/v1/flow_runs?"+c.query, dev, nil, &page)
		var got []string
		for _, r := range page.FlowRuns {
			got = append(got, r.ID)
			if r.TaskCounts != nil {
				t.Errorf("%s: run %s carries task counts %v unasked", c.name, r.ID, r.TaskCounts)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: GET /flow_runs?%s = %v, want %v", c.name, c.query, got, c.want)
		}
		var counts api.FlowRunCounts
		e.ok(200, "GET", "/api/v1/flow_runs/counts?"+c.query, dev, nil, &counts)
		if counts.Total != int64(len(c.want)) {
			t.Errorf("%s: counts %+v, total %d; want %d", c.name, counts, counts.Total, len(c.want))
		}
	}

	// Task counts: one map per run of the page; a run with no task runs
	// has none.
	var page api.FlowRuns
	e.ok(200, "GET", "/api/v1/flow_runs?task_counts=true", dev, nil, &page)
	got := map[string]map[state.Kind]int{}
	for _, r := range page.FlowRuns {
		got[r.ID] = r.TaskCounts
	}
	want := map[string]map[state.Kind]int{
		mon.ID:   {state.Success: 1, state.Failed: 1},
		tue.ID:   nil,
		train.ID: {state.Running: 1},
	}
	if !maps.EqualFunc(got, want, maps.Equal) {
		t.Errorf("task counts = %v, want %v", got, want)
	}
	var raw map[string][]map[string]any
	e.ok(200, "GET", "/api/v1/flow_runs?task_counts=true&flow_id="+etl.Flow.ID+"&state=Scheduled", dev, nil, &raw)
	if tc := raw["flow_runs"][0]["task_counts"]; !reflect.DeepEqual(tc, map[string]any{"Success": 1.0, "Failed": 1.0}) {
		t.Errorf("task_counts on the wire = %v, want {\"Failed\": 1, \"Success\": 1}", tc)
	}

	// Counts by state of everything a filter selects, for every role
	// that reads runs.
	for _, tok := range []string{e.admin, dev, e.token("agent")} {
		var counts api.FlowRunCounts
		e.ok(200, "GET", "/api/v1/flow_runs/counts", tok, nil, &counts)
		if w := map[state.Kind]int64{state.Scheduled: 2, state.Cancelled: 1}; !maps.Equal(counts.Counts, w) || counts.Total != 3 {
			t.Errorf("counts = %+v, want %v, total 3", counts, w)
		}
	}
	var counts api.FlowRunCounts
	e.ok(200, "GET", "/api/v1/flow_runs/counts?state=Failed", dev, nil, &counts)
	if len(counts.Counts) != 0 || counts.Total != 0 || counts.Counts == nil {
		t.Errorf("counts of no run = %+v, want {} and total 0", counts)
	}
}

// TestRunListFilterBadInput checks that a malformed filter is a 400 that
// says what is wrong, on both routes.
func TestRunListFilterBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.token("developer")
	long := string(make([]byte, 1001))
	cases := []struct {
		query string
		want  string
	}{
		{"param=day", "not name=value"},
		{"param==mon", "not name=value"},
		{"param=day=mon&param=day=tue", "one value"},
		{"state=Done", `unknown state "Done"`},
		{"state=Failed,", `unknown state ""`},
		{"label=", "label"},
		{"q=" + url.QueryEscape(long), "at most 1000"},
		{"created_before=noon", "created_before"},
		{"task_counts=maybe", "task_counts"},
	}
	for _, c := range cases {
		e.fails(400, "GET", "/api/v1/flow_runs?"+c.query, dev, nil, c.want)
		if c.query != "task_counts=maybe" {
			e.fails(400, "GET", "/api/v1/flow_runs/counts?"+c.query, dev, nil, c.want)
		}
	}
	e.fails(404, "GET", "/api/v1/flow_runs/counts?project=nope", dev, nil, "nope")
}
