package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/agent"
	"github.com/reevehq/reeve/internal/runner"
	"github.com/reevehq/reeve/internal/runner/process"
	"github.com/reevehq/reeve/internal/state"
)

// finding is a runner that finds programs by itself, as the Docker runner
// finds its containers by label.
type finding struct {
	runner.Runner
	found []runner.Found
	calls int
}

func (f *finding) Find(context.Context) ([]runner.Found, error) {
	f.calls++
	return f.found, nil
}

// TestRestartFindsProgramsWithoutRecords: an agent that restarts without
// its data directory (a new machine, a lost volume) still adopts the
// programs its runner finds by itself, and their runs finish.
func TestRestartFindsProgramsWithoutRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	run := e.createRun(t, e.register(t, "alive", "wait", api.Storage{}, "test"))
	first := t.TempDir()
	a1 := e.startAgent(t, "host-1", first, func(c *agent.Config) { c.StopRunsOnExit = false })
	waitFor(t, "the program of "+run.ID+" started", func() (bool, string) {
		_, err := os.Stat(filepath.Join(e.dir, "started-"+run.ID))
		return err == nil, fmt.Sprint(err)
	})
	a1.stop(t)

	// What the runner finds: the program of the first agent, as its
	// record described it.
	recs, err := filepath.Glob(filepath.Join(first, "runs", "*.json"))
	if err != nil || len(recs) != 1 {
		t.Fatalf("records of the first agent: %v, %v; want one", recs, err)
	}
	data, err := os.ReadFile(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		FlowRunID string       `json:"flow_run_id"`
		Attempt   int          `json:"attempt"`
		Token     string       `json:"token"`
		Program   string       `json:"program"`
		Handle    runner.Saved `json:"handle"`
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	pr, err := process.New(process.Config{Dir: filepath.Join(first, "output"), PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f := &finding{Runner: pr, found: []runner.Found{{FlowRunID: rec.FlowRunID, Attempt: rec.Attempt, Token: rec.Token, Program: rec.Program, Saved: rec.Handle}}}

	// The agent starts again on a new, empty data directory.
	e.startAgent(t, "host-1", t.TempDir(), func(c *agent.Config) { c.Runner = f })
	e.waitLog(t, run.ID, "WARN", `agent "host-1" restarted and adopted the flow program`)
	if err := os.WriteFile(filepath.Join(e.dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := e.waitRun(t, run.ID, finished); got.State.Kind != state.Success || got.Attempt != 1 {
		t.Errorf("the found run ended %s %q (attempt %d), want Success on attempt 1", got.State.Kind, got.State.Message, got.Attempt)
	}
	if f.calls != 1 {
		t.Errorf("Find was called %d times, want once, at the start", f.calls)
	}
}
