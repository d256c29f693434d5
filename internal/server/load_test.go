package server_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

// TestConcurrentWritersOnSQLite: 50 writers at once (creating runs, moving
// task runs, appending logs) get no "database is locked" error and lose no
// write.
func TestConcurrentWritersOnSQLite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("load", "")})
	const writers, rounds = 50, 20

	var wg sync.WaitGroup
	runs := make([]string, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fe := *e
			res := fe.do("POST", "/api/v1/flow_runs", e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID, IdempotencyKey: fmt.Sprint("w", w)})
			if res.status != 201 {
				t.Errorf("writer %d: create run: %v", w, res)
				return
			}
			var created api.CreatedFlowRun
			mustJSON(t, res.body, &created)
			id := created.FlowRun.ID
			runs[w] = id
			for i := range rounds {
				res := fe.do("POST", "/api/v1/flow_runs/"+id+"/task_run_states", e.admin, api.WriteTaskRunStates{Writes: []api.TaskRunWrite{
					{Key: "t", Task: "t", ExpectVersion: int64(i), State: state.State{Kind: state.Running}},
				}})
				if res.status != 200 {
					t.Errorf("writer %d round %d: task state: %v", w, i, res)
					return
				}
				res = fe.do("POST", "/api/v1/flow_runs/"+id+"/logs", e.admin, api.AppendLogs{Logs: []api.LogLine{{Level: "INFO", Message: fmt.Sprint("round ", i)}}})
				if res.status != 204 {
					t.Errorf("writer %d round %d: logs: %v", w, i, res)
					return
				}
				if strings.Contains(string(res.body), "locked") {
					t.Errorf("writer %d: %s", w, res.body)
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for w, id := range runs {
		var trs api.TaskRuns
		e.ok(200, "GET", "/api/v1/task_runs?flow_run_id="+id, e.admin, nil, &trs)
		if len(trs.TaskRuns) != 1 || trs.TaskRuns[0].Version != rounds {
			t.Errorf("writer %d: task runs %+v, want one at version %d", w, trs.TaskRuns, rounds)
		}
		var logs api.Logs
		e.ok(200, "GET", "/api/v1/flow_runs/"+id+"/logs", e.admin, nil, &logs)
		if len(logs.Logs) != rounds {
			t.Errorf("writer %d: %d log lines, want %d", w, len(logs.Logs), rounds)
		}
	}
	var page api.FlowRuns
	e.ok(200, "GET", "/api/v1/flow_runs?limit=1000", e.admin, nil, &page)
	if len(page.FlowRuns) != writers {
		t.Errorf("%d runs, want %d", len(page.FlowRuns), writers)
	}
}

func mustJSON(t testing.TB, data []byte, v any) {
	t.Helper()
	if err := jsonUnmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}
