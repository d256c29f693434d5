package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
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

// leftRunning starts run's program with an agent that then exits leaving
// it running, and returns the program's pid, what a runner that finds
// programs by itself would find of it (the first agent's record), and a
// process runner that can recover it.
func leftRunning(t *testing.T, e *env, run api.FlowRun) (int, runner.Found, runner.Runner) {
	t.Helper()
	first := t.TempDir()
	a1 := e.startAgent(t, "host-1", first, func(c *agent.Config) { c.StopRunsOnExit = false })
	var pid int
	waitFor(t, "the program of "+run.ID+" started", func() (bool, string) {
		data, err := os.ReadFile(filepath.Join(e.dir, "started-"+run.ID))
		if err != nil {
			return false, err.Error()
		}
		pid, err = strconv.Atoi(string(data))
		return err == nil, string(data)
	})
	a1.stop(t)
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
	return pid, runner.Found{FlowRunID: rec.FlowRunID, Attempt: rec.Attempt, Token: rec.Token, Program: rec.Program, Saved: rec.Handle}, pr
}

// TestRestartFindsProgramsWithoutRecords: an agent that restarts without
// its data directory (a new machine, a lost volume) still adopts the
// programs its runner finds by itself, and their runs finish.
func TestRestartFindsProgramsWithoutRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	run := e.createRun(t, e.register(t, "alive", "wait", api.Storage{}, "test"))
	_, found, pr := leftRunning(t, e, run)
	f := &finding{Runner: pr, found: []runner.Found{found}}

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

// gated is a runner whose starts can be held (like a slow image pull)
// and whose engine can be down (runner.ErrUnavailable, runner.Checker).
type gated struct {
	runner.Runner
	mu         sync.Mutex
	hold       map[string]chan struct{} // by flow run ID: Start waits for it
	holdAll    chan struct{}            // when set, every Start waits for it
	down       bool                     // the engine is down: Check and Start fail
	startFails bool                     // Start fails as if the engine just died
	checks     int
	entered    map[string]bool // by flow run ID: Start was called
}

func (g *gated) Start(ctx context.Context, spec runner.Spec) (runner.Handle, error) {
	g.mu.Lock()
	if g.entered == nil {
		g.entered = map[string]bool{}
	}
	g.entered[spec.FlowRunID] = true
	hold, down := g.hold[spec.FlowRunID], g.down || g.startFails
	if hold == nil {
		hold = g.holdAll
	}
	g.mu.Unlock()
	if down {
		return nil, fmt.Errorf("the engine at unix:///test.sock is unreachable: %w", runner.ErrUnavailable)
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Runner.Start(ctx, spec)
}

func (g *gated) Check(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checks++
	if g.down {
		return fmt.Errorf("still down: %w", runner.ErrUnavailable)
	}
	return nil
}

func (g *gated) set(f func(g *gated)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

func gatedRunner(t *testing.T, dataDir string) *gated {
	t.Helper()
	pr, err := process.New(process.Config{Dir: filepath.Join(dataDir, "output"), PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &gated{Runner: pr, hold: map[string]chan struct{}{}}
}

// TestSlowStartDoesNotBlockClaims: while one run's program is slow to
// start (an image pull), the agent claims and runs others, and it
// heartbeats the starting run so the server does not take it for lost.
func TestSlowStartDoesNotBlockClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	flow := e.register(t, "ok", "ok", api.Storage{}, "test")
	slow := e.createRun(t, flow)
	dataDir := t.TempDir()
	g := gatedRunner(t, dataDir)
	release := make(chan struct{})
	g.set(func(g *gated) { g.hold[slow.ID] = release })
	e.startAgent(t, "host-1", dataDir, func(c *agent.Config) { c.Runner = g; c.HeartbeatInterval = 50 * time.Millisecond })
	e.waitRun(t, slow.ID, func(fr api.FlowRun) bool { return fr.State.Kind == state.Submitted })

	fast := e.createRun(t, flow)
	if got := e.waitRun(t, fast.ID, finished); got.State.Kind != state.Success {
		t.Fatalf("the run behind a slow start ended %s %q, want Success", got.State.Kind, got.State.Message)
	}
	// The starting run is heartbeated: its heartbeat is newer than its claim.
	waitFor(t, "a heartbeat of the starting run", func() (bool, string) {
		d, err := e.admin.FlowRun(t.Context(), slow.ID)
		if err != nil {
			return false, err.Error()
		}
		return d.FlowRun.HeartbeatAt.After(d.FlowRun.UpdatedAt), fmt.Sprintf("heartbeat %v, updated %v", d.FlowRun.HeartbeatAt, d.FlowRun.UpdatedAt)
	})
	close(release)
	if got := e.waitRun(t, slow.ID, finished); got.State.Kind != state.Success {
		t.Errorf("the slow run ended %s %q, want Success", got.State.Kind, got.State.Message)
	}
}

// TestEngineDownPausesClaims: while the runner's engine is down, the
// agent claims nothing (the runs wait, none fails for it), and once it is
// back they run. A start that fails because the engine died right after
// the check fails its run with the reason.
func TestEngineDownPausesClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	flow := e.register(t, "ok", "ok", api.Storage{}, "test")
	dataDir := t.TempDir()
	g := gatedRunner(t, dataDir)
	g.set(func(g *gated) { g.down = true })
	e.startAgent(t, "host-1", dataDir, func(c *agent.Config) { c.Runner = g; c.MaxRuns = 4 })

	var runs []api.FlowRun
	for range 4 {
		runs = append(runs, e.createRun(t, flow))
	}
	waitFor(t, "the agent checking the engine twice", func() (bool, string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.checks >= 2, fmt.Sprint(g.checks, " checks")
	})
	for _, r := range runs {
		if d, err := e.admin.FlowRun(t.Context(), r.ID); err != nil || d.FlowRun.State.Kind != state.Scheduled {
			t.Fatalf("while the engine is down, run %s is %v (%v), want Scheduled: not claimed", r.ID, d.FlowRun.State, err)
		}
	}
	g.set(func(g *gated) { g.down = false })
	for _, r := range runs {
		if got := e.waitRun(t, r.ID, finished); got.State.Kind != state.Success {
			t.Errorf("once the engine is back, run %s ended %s %q, want Success", r.ID, got.State.Kind, got.State.Message)
		}
	}

	// The engine dies between the check and the start.
	g.set(func(g *gated) { g.startFails = true })
	r := e.createRun(t, flow)
	got := e.waitRun(t, r.ID, finished)
	if got.State.Kind != state.Failed || !strings.Contains(got.State.Message, "unix:///test.sock is unreachable") {
		t.Fatalf("the run ended %s %q, want Failed saying the engine is unreachable", got.State.Kind, got.State.Message)
	}
}

// TestRestartStopsProgramsOfRunsThatMovedOn: a program an agent finds
// after a restart whose attempt is no longer its run's is stopped, not
// adopted; the run's current attempt runs normally.
func TestRestartStopsProgramsOfRunsThatMovedOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	run := e.createRun(t, e.register(t, "alive", "wait", api.Storage{}, "test"))
	pid, found, pr := leftRunning(t, e, run)
	// The runner finds the program under an attempt the run no longer has.
	found.Attempt = 7
	f := &finding{Runner: pr, found: []runner.Found{found}}
	e.startAgent(t, "host-1", t.TempDir(), func(c *agent.Config) { c.Runner = f; c.StopGrace = time.Second })
	waitFor(t, fmt.Sprintf("the stale program (pid %d) stopped", pid), func() (bool, string) {
		err := syscall.Kill(pid, 0)
		return errors.Is(err, syscall.ESRCH), fmt.Sprint(err)
	})
	// Attempt 1 lost its program: reported lost, it runs again.
	if err := os.WriteFile(filepath.Join(e.dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := e.waitRun(t, run.ID, finished); got.State.Kind != state.Success || got.Attempt != 2 {
		t.Errorf("the run ended %s %q on attempt %d, want Success on attempt 2", got.State.Kind, got.State.Message, got.Attempt)
	}
}

// TestStartTimeoutAndShutdown: a start that never ends fails its run once
// the agent's start timeout passes; one in progress when the agent stops
// is cancelled after the stop grace and its run handed back to the server.
func TestStartTimeoutAndShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	flow := e.register(t, "ok", "ok", api.Storage{}, "test")
	dataDir := t.TempDir()
	g := gatedRunner(t, dataDir)
	g.set(func(g *gated) { g.holdAll = make(chan struct{}) }) // never released
	stuck := e.createRun(t, flow)
	a := e.startAgent(t, "host-1", dataDir, func(c *agent.Config) {
		c.Runner = g
		c.StartTimeout = time.Second
		c.StopGrace = 100 * time.Millisecond
		c.MaxRuns = 1
	})
	got := e.waitRun(t, stuck.ID, finished)
	if got.State.Kind != state.Failed || !strings.Contains(got.State.Message, "did not start within 1s (the agent's start timeout)") {
		t.Fatalf("the stuck start ended %s %q, want Failed naming the start timeout", got.State.Kind, got.State.Message)
	}

	// Another stuck start, which holds the agent's one slot.
	back := e.createRun(t, flow)
	deadline := time.Now().Add(30 * time.Second)
	for !g.startEntered(back.ID) {
		if time.Now().After(deadline) {
			t.Fatal("the agent never began to start the second run")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A run the server gave the agent whose claim's answer the agent never
	// read (as when it stops during a claim): claimed here in its name.
	unread := e.createRun(t, flow)
	ac, err := client.New(e.url, e.agentToken)
	if err != nil {
		t.Fatal(err)
	}
	if cl, err := ac.Claim(t.Context(), a.a.ID(), time.Second); err != nil || cl == nil || cl.FlowRun.ID != unread.ID {
		t.Fatalf("claim in the agent's name = %v, %v; want the run %s", cl, err, unread.ID)
	}

	// The agent stops: both runs go back, each saying why.
	a.stop(t)
	got = e.waitRun(t, back.ID, func(fr api.FlowRun) bool { return fr.State.Kind == state.Scheduled })
	if !strings.Contains(got.State.Message, `agent "host-1" stopped while it started the flow program`) {
		t.Errorf("the handed-back run is %s %q, want Scheduled saying the agent stopped while starting it", got.State.Kind, got.State.Message)
	}
	got = e.waitRun(t, unread.ID, func(fr api.FlowRun) bool { return fr.State.Kind == state.Scheduled })
	if !strings.Contains(got.State.Message, `agent "host-1" stopped as it claimed the run`) {
		t.Errorf("the unread claim's run is %s %q, want Scheduled saying the agent stopped as it claimed it", got.State.Kind, got.State.Message)
	}
}

// startEntered reports whether the agent called Start for a run.
func (g *gated) startEntered(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.entered[id]
}
