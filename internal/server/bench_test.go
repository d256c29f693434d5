package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

// reportLatency reports the median and 90th percentile of ds.
func reportLatency(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)*9/10].Microseconds())/1000, "p90-ms")
}

// BenchmarkStateChange is one flow-run state change over loopback HTTP, as
// a runner makes it: its run token, the version it last saw.
func BenchmarkStateChange(b *testing.B) {
	e := newEnv(b)
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("f", "")})
	run := e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	var tok api.NewToken
	e.ok(201, "POST", "/api/v1/flow_runs/"+run.ID+"/tokens", e.admin, nil, &tok)
	version := run.Version
	kinds := []state.Kind{state.Running, state.Retrying}
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		res := e.do("POST", "/api/v1/flow_runs/"+run.ID+"/state", tok.Secret, api.SetState{State: state.State{Kind: kinds[i%2]}, ExpectVersion: version})
		ds = append(ds, time.Since(start))
		if res.status != 200 {
			b.Fatalf("set state: %v", res)
		}
		version++
	}
	reportLatency(b, ds)
}

// BenchmarkTaskStateBatch writes task-run states over HTTP in batches of
// 500, as the runner ships them.
func BenchmarkTaskStateBatch(b *testing.B) {
	e := newEnv(b)
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("f", "")})
	run := e.run(e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
	var tok api.NewToken
	e.ok(201, "POST", "/api/v1/flow_runs/"+run.ID+"/tokens", e.admin, nil, &tok)
	const batch = 500
	n := 0
	b.ResetTimer()
	for b.Loop() {
		writes := make([]api.TaskRunWrite, batch)
		for i := range writes {
			writes[i] = api.TaskRunWrite{Key: fmt.Sprintf("t[%d]", n), Task: "t", MapIndex: n, State: state.State{Kind: state.Success}}
			n++
		}
		res := e.do("POST", "/api/v1/flow_runs/"+run.ID+"/task_run_states", tok.Secret, api.WriteTaskRunStates{Writes: writes})
		if res.status != 200 {
			b.Fatalf("write: %v", res)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "states/s")
}

// BenchmarkRunToAgent is the time from creating a run to a long-polling
// agent holding its claim.
func BenchmarkRunToAgent(b *testing.B) {
	e := newEnv(b)
	ag := e.token("agent")
	var a api.Agent
	e.ok(200, "POST", "/api/v1/agents", ag, api.RegisterAgent{Name: "bench"}, &a)
	reg := e.register(e.admin, api.RegisterFlow{Spec: specJSON("f", "")})

	claims := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, "POST", e.url+"/api/v1/agents/"+a.ID+"/claim?wait=1s", nil)
			req.Header.Set("Authorization", "Bearer "+ag)
			res, err := e.http.Do(req)
			if err != nil {
				continue
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				claims <- time.Now()
			}
		}
	}()
	defer wg.Wait()
	defer cancel()
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		// Let the agent get back to waiting first.
		time.Sleep(2 * time.Millisecond)
		start := time.Now()
		res := e.do("POST", "/api/v1/flow_runs", e.admin, api.CreateFlowRun{FlowID: reg.Flow.ID})
		if res.status != 201 {
			b.Fatalf("create: %v", res)
		}
		got := <-claims
		ds = append(ds, got.Sub(start))
	}
	b.StopTimer()
	reportLatency(b, ds)
}

var _ = json.Marshal
