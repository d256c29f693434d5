package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

// The benchmarks of issue 4's targets, through a real server on SQLite
// and a real process agent, each run timed by the server from its
// creation to its final state (api.FlowRun CreatedAt → UpdatedAt):
//
//	go test ./internal/e2e -run '^$' -bench . -benchtime 1x
//
// Each reports its figure as a custom metric; b's own ns/op is the
// wall time of the whole benchmark, setup included, and means little.

// elapsed is a finished run's time from creation to its final state.
func elapsed(d *api.FlowRunDetail) time.Duration { return d.FlowRun.UpdatedAt.Sub(d.FlowRun.CreatedAt) }

func benchEnv(b *testing.B, maxRuns int) *env {
	b.Helper()
	e := newEnvWith(b, onSQLite, calm)
	e.register(flowsBin(b))
	e.startAgent("bench", nil, maxRuns)
	// One run first, so the program is in the page cache and the agent is
	// registered and waiting.
	if d := e.finished(e.create("one", "").ID); d.FlowRun.State.Kind != state.Success {
		b.Fatalf("warm-up run: %s", d.FlowRun.State)
	}
	return e
}

func mustSucceed(b *testing.B, d *api.FlowRunDetail) {
	b.Helper()
	if d.FlowRun.State.Kind != state.Success {
		b.Fatalf("run %s ended %s\n%s", d.FlowRun.ID, d.FlowRun.State, history(d))
	}
}

// BenchmarkOneTaskRun: the median and 90th percentile of runs of a
// one-task flow, one after another, process start included.
func BenchmarkOneTaskRun(b *testing.B) {
	e := benchEnv(b, 4)
	const n = 40
	var times []time.Duration
	for b.Loop() {
		times = times[:0]
		for range n {
			d := e.finished(e.create("one", "").ID)
			mustSucceed(b, d)
			times = append(times, elapsed(d))
		}
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[n/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[n*9/10].Microseconds())/1000, "p90-ms")
}

// BenchmarkChain1000: a chain of 1,000 sequential no-op tasks; its
// orchestration overhead per task.
func BenchmarkChain1000(b *testing.B) {
	e := benchEnv(b, 4)
	var total time.Duration
	for b.Loop() {
		d := e.finished(e.create("chain", "").ID)
		mustSucceed(b, d)
		total = elapsed(d)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/1000, "ms/task")
	b.ReportMetric(total.Seconds(), "s/run")
}

// BenchmarkFanOut1000: a 1,000-wide mapped fan-out and its reduce.
func BenchmarkFanOut1000(b *testing.B) {
	e := benchEnv(b, 4)
	var total time.Duration
	for b.Loop() {
		d := e.finished(e.create("fanout", `{"n": 1000}`).ID)
		mustSucceed(b, d)
		total = elapsed(d)
	}
	b.ReportMetric(total.Seconds(), "s/run")
}

// BenchmarkConcurrent100: 100 one-task runs created at once, through one
// agent that runs up to 100 at a time; every one must succeed.
func BenchmarkConcurrent100(b *testing.B) {
	e := benchEnv(b, 100)
	var spread time.Duration
	for b.Loop() {
		start := time.Now()
		var ids []string
		for range 100 {
			ids = append(ids, e.create("one", "").ID)
		}
		var last time.Time
		for _, id := range ids {
			d := e.finished(id)
			mustSucceed(b, d)
			if d.FlowRun.UpdatedAt.After(last) {
				last = d.FlowRun.UpdatedAt
			}
		}
		spread = last.Sub(start)
	}
	b.ReportMetric(spread.Seconds(), "s-all-done")
	b.ReportMetric(0, "failures")
}

// BenchmarkRunnerMemory: the peak resident memory of the runner process
// (the flow program's execute) running the 1,000-task chain, started as an
// agent would start it.
func BenchmarkRunnerMemory(b *testing.B) {
	e := newEnv(b, onSQLite)
	bin := flowsBin(b)
	e.register(bin)
	ag, err := e.cl.RegisterAgent(e.ctx, api.RegisterAgent{Name: "by-hand"})
	if err != nil {
		b.Fatal(err)
	}
	var peak float64
	for b.Loop() {
		run := e.create("chain", "")
		claim, err := e.cl.Claim(e.ctx, ag.ID, 5*time.Second)
		if err != nil || claim == nil || claim.FlowRun.ID != run.ID {
			b.Fatalf("claim: %v %v", claim, err)
		}
		cmd := exec.Command(bin, "execute")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "REEVE_API_URL=" + e.url, "REEVE_API_TOKEN=" + claim.Token, "REEVE_FLOW_RUN_ID=" + run.ID}
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("execute: %v\n%s", err, out)
		}
		mustSucceed(b, e.finished(run.ID))
		// The runner's own figure (VmHWM): the rusage of a child counts the
		// forking parent's memory too.
		m := regexp.MustCompile(`peak memory ([0-9.]+) MiB`).FindSubmatch(out)
		if m == nil {
			b.Fatalf("execute did not say its peak memory:\n%s", out)
		}
		peak, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	b.ReportMetric(peak, "MiB-peak-RSS")
}
