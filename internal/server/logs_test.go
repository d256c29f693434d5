package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

func TestLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("f", "")})
	run := e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	var tr api.TaskRuns
	e.ok(200, "POST", "/api/v1/flow_runs/"+run.ID+"/task_run_states", e.admin, api.WriteTaskRunStates{Writes: []api.TaskRunWrite{{Key: "a", Task: "a", State: state.State{Kind: state.Running}}}}, &tr)

	batch := make([]api.LogLine, 25)
	for i := range batch {
		batch[i] = api.LogLine{Level: "info", Message: fmt.Sprintf("line %d", i), Attrs: json.RawMessage(`{"i":` + fmt.Sprint(i) + `}`)}
		if i%5 == 0 {
			batch[i].TaskRunID = tr.TaskRuns[0].ID
		}
	}
	e.ok(204, "POST", "/api/v1/flow_runs/"+run.ID+"/logs", e.admin, api.AppendLogs{Logs: batch}, nil)

	var page api.Logs
	e.ok(200, "GET", "/api/v1/flow_runs/"+run.ID+"/logs?limit=10", e.admin, nil, &page)
	if len(page.Logs) != 10 || page.Logs[0].Message != "line 0" || page.Logs[0].Level != "INFO" {
		t.Fatalf("page 1 = %+v", page)
	}
	var rest api.Logs
	e.ok(200, "GET", fmt.Sprintf("/api/v1/flow_runs/%s/logs?after=%d", run.ID, page.NextAfter), e.admin, nil, &rest)
	if len(rest.Logs) != 15 || rest.Logs[0].Message != "line 10" {
		t.Errorf("rest = %d lines from %q", len(rest.Logs), rest.Logs[0].Message)
	}
	var task api.Logs
	e.ok(200, "GET", "/api/v1/flow_runs/"+run.ID+"/logs?task_run_id="+tr.TaskRuns[0].ID, e.admin, nil, &task)
	if len(task.Logs) != 5 {
		t.Errorf("task run's lines = %d, want 5", len(task.Logs))
	}
	e.fails(400, "POST", "/api/v1/flow_runs/"+run.ID+"/logs", e.admin, api.AppendLogs{Logs: []api.LogLine{{Level: "LOUD", Message: "x"}}}, `level "LOUD"`)
	e.fails(400, "POST", "/api/v1/flow_runs/"+run.ID+"/logs", e.admin, `{"logs":[{"level":"INFO","message":"x","attrs":[1]}]}`, "attrs must be a JSON object")
	e.fails(404, "POST", "/api/v1/flow_runs/nope/logs", e.admin, api.AppendLogs{Logs: batch[:1]})
}

// TestFollowLogs: a follower gets the lines written before it started and
// after, in order, and the stream ends when the run finishes.
func TestFollowLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("f", "")})
	run := e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	e.ok(204, "POST", "/api/v1/flow_runs/"+run.ID+"/logs", e.admin, api.AppendLogs{Logs: []api.LogLine{{Level: "INFO", Message: "before"}}}, nil)

	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.url+"/api/v1/flow_runs/"+run.ID+"/logs?follow=true", nil)
	req.Header.Set("Authorization", "Bearer "+e.admin)
	res, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("follow = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	events := make(chan [2]string)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(res.Body)
		var event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				events <- [2]string{event, strings.TrimPrefix(line, "data: ")}
			}
		}
	}()
	next := func() (string, string) {
		ev, ok := <-events
		if !ok {
			t.Fatal("the stream ended early")
		}
		return ev[0], ev[1]
	}
	if ev, data := next(); ev != "log" || !strings.Contains(data, `"before"`) {
		t.Fatalf("first event = %s %s", ev, data)
	}
	for i := range 3 {
		e.ok(204, "POST", "/api/v1/flow_runs/"+run.ID+"/logs", e.admin, api.AppendLogs{Logs: []api.LogLine{{Level: "INFO", Message: fmt.Sprint("after ", i)}}}, nil)
		if ev, data := next(); ev != "log" || !strings.Contains(data, fmt.Sprintf(`"after %d"`, i)) {
			t.Fatalf("event = %s %s, want line after %d", ev, data, i)
		}
	}
	e.ok(200, "POST", "/api/v1/flow_runs/"+run.ID+"/cancel", e.admin, nil, nil)
	if ev, data := next(); ev != "end" || !strings.Contains(data, `"Cancelled"`) {
		t.Fatalf("event = %s %s, want end with the final state", ev, data)
	}
	if _, ok := <-events; ok {
		t.Error("the stream goes on after end")
	}
	e.fails(404, "GET", "/api/v1/flow_runs/nope/logs?follow=true", e.admin, nil)
}
