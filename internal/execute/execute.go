// Package execute runs one flow run for a Reeve server: the `execute`
// command of a flow program.
//
// An agent that claimed a flow run starts the flow program as
// `PROGRAM execute` with REEVE_API_URL, REEVE_API_TOKEN (a run token for
// the attempt it claimed) and REEVE_FLOW_RUN_ID. [Run] then:
//
//  1. reads the run (with its task runs) and its flow version;
//  2. finds the flow among the program's by the spec's name and checks
//     that the program was built for the registered spec (same spec hash);
//     a mismatch fails the run, naming both hashes;
//  3. moves the run to Running with the state version it read: when two
//     runners race for one run, exactly one wins; the other runs nothing;
//  4. runs the engine with the run's parameters, the task runs earlier
//     attempts finished (engine.Config.Prior), every result checkpointed,
//     secrets read from the server, and a [Reporter] that ships task-run
//     states and log lines in batches;
//  5. heartbeats all along: the server's answer may ask it to cancel (the
//     engine's context is cancelled and the run ends Cancelled), or, with
//     409 Conflict, say that the runner was superseded (it stops at once
//     and writes nothing more);
//  6. writes the final state: the engine's, or Scheduled with the time of
//     a parked long retry, for the server to re-queue the run then.
//
// The package does not import the SDK (the root package): the program
// hands it its flows as engine graphs with their spec hashes.
package execute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/result/apiblob"
	"github.com/reevehq/reeve/internal/state"
)

// Defaults of Config.
const (
	DefaultMaxRetryWait      = 60 * time.Second
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultFinalFlushTimeout = 5 * time.Minute
	startTimeout             = 2 * time.Minute // how long reads at start retry an unreachable server
)

// Flow is one flow of the program: the graph to run and the hash of the
// spec it was built from.
type Flow struct {
	Graph    *engine.Graph
	SpecHash string
	Err      error // the flow's spec could not be made; it cannot run
}

// Config configures Run.
type Config struct {
	Client    *client.Client // holding the run token
	FlowRunID string
	// Flows are the program's flows by name.
	Flows map[string]Flow
	// MaxRetryWait is the longest retry delay the runner waits out itself;
	// a longer one parks the run Scheduled. 0 means DefaultMaxRetryWait.
	MaxRetryWait time.Duration
	// Heartbeat is the first heartbeat interval (the server's answers set
	// the next ones); 0 means DefaultHeartbeatInterval.
	Heartbeat time.Duration
	// FinalFlushTimeout bounds the wait, at the end, for queued states and
	// log lines to reach the server; 0 means DefaultFinalFlushTimeout.
	FinalFlushTimeout time.Duration
	// Stderr receives the runner's own lines; nil means os.Stderr.
	Stderr io.Writer
	// Reporter tunes the API reporter (batching); Client, FlowRunID,
	// TaskRuns and the callbacks are set by Run.
	Reporter ReporterConfig
}

// Outcome is how a Run ended.
type Outcome struct {
	State state.State // the flow run's final state as written; zero if none was
}

// Errors of Run, for errors.Is.
var (
	// ErrLostRace: another runner started the run first, or it moved.
	ErrLostRace = errors.New("another runner holds this flow run")
	// ErrSpecMismatch: the program was not built for the registered spec.
	ErrSpecMismatch = errors.New("the program was not built for the flow's registered spec")
)

// execution is one Run.
type execution struct {
	cfg    Config
	c      *client.Client
	id     string
	log    *slog.Logger
	rep    *Reporter
	run    api.FlowRun // as last written or read
	cancel context.CancelCauseFunc

	mu         sync.Mutex
	superseded error
}

// Run runs the flow run cfg.FlowRunID to its end and writes its final
// state. The error is non-nil when the runner could not do its job: the
// run was not found, another runner holds it, the program's spec differs
// from the registered one (the run is then Failed), or the runner was
// superseded (ErrSuperseded).
func Run(ctx context.Context, cfg Config) (Outcome, error) {
	if cfg.Client == nil || cfg.FlowRunID == "" {
		return Outcome{}, errors.New("execute: Config.Client and Config.FlowRunID are required")
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = DefaultMaxRetryWait
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeatInterval
	}
	if cfg.FinalFlushTimeout <= 0 {
		cfg.FinalFlushTimeout = DefaultFinalFlushTimeout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	x := &execution{
		cfg: cfg, c: cfg.Client, id: cfg.FlowRunID,
		log: slog.New(slog.NewTextHandler(cfg.Stderr, nil)).With("flow_run_id", cfg.FlowRunID),
	}
	return x.execute(ctx)
}

func (x *execution) execute(ctx context.Context) (Outcome, error) {
	var detail *api.FlowRunDetail
	err := retryStart(ctx, func(ctx context.Context) (err error) {
		detail, err = x.c.FlowRun(ctx, x.id)
		return err
	})
	if err != nil {
		return Outcome{}, fmt.Errorf("read flow run %s: %w", x.id, err)
	}
	x.run = detail.FlowRun
	switch k := x.run.State.Kind; {
	case k == state.Cancelling:
		o, err := x.setFinal(ctx, state.State{Kind: state.Cancelled, Message: "cancelled before its runner started", Time: time.Now()})
		if err == nil {
			fmt.Fprintf(x.cfg.Stderr, "flow run %s was cancelled before it started: nothing ran\n", x.id)
		}
		return o, err
	case k.Finished():
		return Outcome{}, fmt.Errorf("flow run %s already finished (%s): nothing to run", x.id, k)
	case k == state.Running:
		return Outcome{}, fmt.Errorf("flow run %s is already Running under another runner (attempt %d): %w; this runner exits without running anything", x.id, x.run.Attempt, ErrLostRace)
	}

	var v *api.FlowVersion
	err = retryStart(ctx, func(ctx context.Context) (err error) {
		v, err = x.c.FlowVersion(ctx, x.run.FlowVersionID)
		return err
	})
	if errs.CodeOf(err) == errs.CodeForbidden {
		return Outcome{}, fmt.Errorf("flow run %s: the server at %s does not let the run token read the run's flow version %s, which the runner needs (spec hash, run configuration): upgrade the server: %w",
			x.id, x.c.URL(), x.run.FlowVersionID, err)
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("flow run %s: read its flow version %s: %w", x.id, x.run.FlowVersionID, err)
	}
	var head struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(v.Spec, &head); err != nil || head.Name == "" {
		return x.fail(ctx, fmt.Sprintf("flow version %s has a spec without a flow name (%v): register the flow again", v.ID, err), nil)
	}

	f, ok := x.cfg.Flows[head.Name]
	switch {
	case !ok:
		names := make([]string, 0, len(x.cfg.Flows))
		for n := range x.cfg.Flows {
			names = append(names, n)
		}
		slices.Sort(names)
		return x.fail(ctx, fmt.Sprintf("this program has no flow %q (it has: %s): register the flow from the program that defines it", head.Name, strings.Join(names, ", ")), nil)
	case f.Err != nil:
		return x.fail(ctx, fmt.Sprintf("flow %q of this program is invalid: %v", head.Name, f.Err), nil)
	case f.SpecHash != v.SpecHash:
		return x.fail(ctx, fmt.Sprintf("flow %q: this program was built for spec %s, but version %d of the flow was registered with spec %s: rebuild the program from the code that was registered, or register this program's flows again (its register command, or reeve deploy)",
			head.Name, f.SpecHash, v.Version, v.SpecHash), ErrSpecMismatch)
	}

	if err := x.setRunning(ctx); err != nil {
		return Outcome{}, err
	}
	return x.runFlow(ctx, f, v, detail.TaskRuns)
}

// setRunning moves the run to Running with the version read. A 409 means
// another runner won (or the run moved): nothing runs. An unreachable
// server is retried; when the answer was lost, the run read again tells
// whether the write went through.
func (x *execution) setRunning(ctx context.Context) error {
	host, _ := os.Hostname()
	s := state.State{Kind: state.Running, Message: fmt.Sprintf("runner started on %s (pid %d, attempt %d)", host, os.Getpid(), x.run.Attempt), Time: time.Now()}
	expect := x.run.Version
	deadline := time.Now().Add(startTimeout)
	for try := 0; ; try++ {
		running, err := x.c.SetFlowRunState(ctx, x.id, api.SetState{ExpectVersion: expect, State: s})
		if err == nil {
			x.run = *running
			return nil
		}
		code := errs.CodeOf(err)
		if code == errs.CodeConflict {
			return fmt.Errorf("flow run %s: %w (it moved since it was read): this runner exits without running anything: %w", x.id, ErrLostRace, err)
		}
		if ctx.Err() != nil || (code != errs.CodeUnavailable && code != errs.CodeInternal) || time.Now().After(deadline) || !backoff(ctx, try) {
			return err
		}
		var detail *api.FlowRunDetail
		if rerr := retryStart(ctx, func(ctx context.Context) (err error) {
			detail, err = x.c.FlowRun(ctx, x.id)
			return err
		}); rerr != nil {
			return fmt.Errorf("flow run %s: set Running: %w (and reading it again: %v)", x.id, err, rerr)
		}
		now := detail.FlowRun
		switch {
		case now.Attempt == x.run.Attempt && sameState(now.State, s):
			x.run = now // the write went through; its answer was lost
			return nil
		case now.Version != expect:
			return fmt.Errorf("flow run %s: %w (it is %s now): this runner exits without running anything", x.id, ErrLostRace, now.State.Kind)
		}
	}
}

// runFlow runs the engine with heartbeats and the reporter, and writes the
// final state.
func (x *execution) runFlow(ctx context.Context, f Flow, v *api.FlowVersion, taskRuns []api.TaskRun) (Outcome, error) {
	engCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	x.cancel = cancel

	rc := x.cfg.Reporter
	rc.Client, rc.FlowRunID, rc.Attempt, rc.TaskRuns = x.c, x.id, x.run.Attempt, taskRuns
	rc.OnSuperseded = x.supersede
	rc.Warn = func(msg string) { x.log.Warn(msg) }
	rc.Delivered = apiblob.Delivered
	x.rep = NewReporter(rc)
	defer func() {
		x.rep.Abandon(errors.New("the runner ended"))
		<-x.rep.done // the sender is gone when Run returns
	}()

	hbCtx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		x.heartbeat(hbCtx)
	}()
	stopHeartbeat := func() { stopHB(); <-hbDone }
	defer stopHeartbeat()

	prior := make(map[string]state.State, len(taskRuns))
	for _, tr := range taskRuns {
		prior[tr.Key] = tr.State
	}
	params := map[string]any{}
	if len(x.run.Params) > 0 {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(x.run.Params, &raw); err != nil {
			stopHeartbeat()
			return x.fail(ctx, fmt.Sprintf("the run's parameters are not a JSON object: %v", err), nil)
		}
		for k, v := range raw {
			params[k] = v
		}
	}
	workers := 1
	switch v.RunConfig.Executor {
	case "", "parallel":
		workers = v.RunConfig.Workers
		if workers <= 0 {
			workers = engine.DefaultWorkers()
		}
	case "sequential":
	default:
		stopHeartbeat()
		return x.fail(ctx, fmt.Sprintf("the flow version's run config names executor %q: use sequential or parallel", v.RunConfig.Executor), nil)
	}
	x.rep.RunnerLog(slog.LevelInfo, "runner started", slog.String("flow", f.Graph.Flow), slog.Int("version", v.Version),
		slog.Int("attempt", x.run.Attempt), slog.Int("prior_task_runs", len(taskRuns)), slog.Int("workers", workers))

	// A flow that names no result store keeps its results in the server's
	// own store, so resumed runs (retries, lost runners, restarts) reuse
	// them with no extra infrastructure.
	resultStore := ""
	if f.Graph.ResultStore == "" {
		// Results ride along with the task-run states that name them (one
		// request per batch, not one per result).
		apiblob.RegisterDeferred(x.c, x.id, x.rep, api.DefaultMaxResultBytes)
		resultStore = apiblob.URL
	}
	out, err := engine.Execute(engCtx, f.Graph, engine.Config{
		ResultStore:   resultStore,
		FlowRunID:     x.id,
		Params:        params,
		Workers:       workers,
		Reporter:      x.rep,
		Secrets:       &serverSecrets{c: x.c, id: x.id},
		Logger:        x.log,
		Prior:         prior,
		MaxRetryWait:  x.cfg.MaxRetryWait,
		CheckpointAll: true,
	})
	if err != nil {
		stopHeartbeat()
		return x.fail(ctx, err.Error(), nil)
	}
	if err := x.supersededErr(); err != nil {
		return Outcome{}, err
	}

	final := out.State
	if final.Kind == state.Scheduled {
		final.Message = fmt.Sprintf("a task waits to retry at %s, past the %v the runner waits itself: re-queued for then; %s",
			final.StartAt.Format(time.RFC3339), x.cfg.MaxRetryWait, final.Message)
	}
	flushCtx, cancelFlush := context.WithTimeout(context.WithoutCancel(ctx), x.cfg.FinalFlushTimeout)
	defer cancelFlush()
	if err := x.rep.Flush(flushCtx); err != nil {
		if errors.Is(err, ErrSuperseded) {
			return Outcome{}, x.supersededOr(err)
		}
		return Outcome{}, fmt.Errorf("flow run %s ended %s, but its task-run states did not all reach the server, so the final state is not written: %w", x.id, final.Kind, err)
	}
	if err := x.supersededErr(); err != nil {
		return Outcome{}, err
	}
	// Heartbeats go on until the final state is written: a server that is
	// down for a while then must not find the run's runner lost (and redo
	// its work) while the runner retries its last write. A heartbeat that
	// lands after that write is refused; its refusal changes nothing now.
	o, err := x.setFinal(flushCtx, final)
	stopHeartbeat()
	if err != nil {
		return o, err
	}
	x.rep.RunnerLog(slog.LevelInfo, "flow run ended "+final.Kind.String(), slog.String("message", final.Message))
	if err := x.rep.Close(flushCtx); err != nil && !errors.Is(err, ErrSuperseded) {
		x.log.Warn("the runner's last log lines did not reach the server", "error", err)
	}
	return o, nil
}

// setFinal writes the run's final (or Scheduled) state. On a 409 it reads
// the run again: a cancel asked for meanwhile (Cancelling) of the same
// attempt takes the state anyway, with the new version; a newer attempt
// means this runner was superseded.
func (x *execution) setFinal(ctx context.Context, s state.State) (Outcome, error) {
	if s.Time.IsZero() {
		s.Time = time.Now()
	}
	expect := x.run.Version
	for try := 0; ; try++ {
		run, err := x.c.SetFlowRunState(ctx, x.id, api.SetState{State: s, ExpectVersion: expect})
		if err == nil {
			x.run = *run
			return Outcome{State: run.State}, nil
		}
		if ctx.Err() != nil {
			return Outcome{}, fmt.Errorf("flow run %s: write the final state %s: %w", x.id, s.Kind, err)
		}
		switch errs.CodeOf(err) {
		case errs.CodeUnavailable, errs.CodeInternal:
			if !backoff(ctx, try) {
				return Outcome{}, err
			}
			continue
		case errs.CodeConflict, errs.CodeUnauthorized:
		default:
			return Outcome{}, err
		}
		// Look again: which state is the run in, and whose attempt?
		var detail *api.FlowRunDetail
		rerr := retryStart(ctx, func(ctx context.Context) (err error) {
			detail, err = x.c.FlowRun(ctx, x.id)
			return err
		})
		if rerr != nil {
			return Outcome{}, fmt.Errorf("flow run %s: write the final state %s: %w (and reading the run again: %v)", x.id, s.Kind, err, rerr)
		}
		now := detail.FlowRun
		switch {
		case now.Attempt != x.run.Attempt:
			return Outcome{}, x.supersededOr(fmt.Errorf("%w: flow run %s is at attempt %d, this runner held attempt %d; it writes nothing", ErrSuperseded, x.id, now.Attempt, x.run.Attempt))
		case sameState(now.State, s):
			x.run = now // our write went through; its answer was lost
			return Outcome{State: now.State}, nil
		case now.State.Kind == state.Cancelling && try < 10:
			expect = now.Version // the work finished: record how
			continue
		}
		return Outcome{}, x.supersededOr(fmt.Errorf("%w: flow run %s moved to %s meanwhile (%v); this runner writes nothing", ErrSuperseded, x.id, now.State.Kind, err))
	}
}

// fail ends the run Failed with msg, before anything ran.
func (x *execution) fail(ctx context.Context, msg string, kind error) (Outcome, error) {
	o, err := x.setFinal(ctx, state.State{Kind: state.Failed, Message: msg, Time: time.Now()})
	if err != nil {
		return o, fmt.Errorf("flow run %s: %s (and failing the run: %w)", x.id, msg, err)
	}
	if kind != nil {
		return o, fmt.Errorf("flow run %s failed: %s: %w", x.id, msg, kind)
	}
	return o, fmt.Errorf("flow run %s failed: %s", x.id, msg)
}

// heartbeat beats until ctx ends. A cancel request cancels the engine; a
// 409 supersedes the runner.
func (x *execution) heartbeat(ctx context.Context) {
	interval := x.cfg.Heartbeat
	cancelled := false
	failing := 0
	for {
		hb, err := x.c.RunHeartbeat(ctx, x.id)
		switch {
		case err == nil:
			failing = 0
			if hb.Interval > 0 {
				interval = time.Duration(hb.Interval)
			}
			if hb.MaxResultBytes > 0 {
				apiblob.SetLimit(hb.MaxResultBytes)
			}
			if hb.Cancel && !cancelled {
				cancelled = true
				x.log.Info("the server asks to cancel the flow run: cancelling its tasks")
				x.rep.RunnerLog(slog.LevelInfo, "cancel requested on the server: cancelling the tasks")
				x.cancel(errors.New("cancel requested on the server"))
			}
		case ctx.Err() != nil:
			return
		case errs.CodeOf(err) == errs.CodeConflict || errs.CodeOf(err) == errs.CodeUnauthorized:
			x.supersede(fmt.Errorf("%w: %w", ErrSuperseded, err))
			return
		default:
			failing++
			if failing == 1 || failing%10 == 0 {
				x.log.Warn("heartbeat failed; retrying (the server may be restarting)", "error", err, "failures", failing)
			}
		}
		wait := interval
		if err != nil {
			wait = min(interval, time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// supersede stops everything at once: the reporter sends nothing more and
// the engine's tasks are cancelled.
func (x *execution) supersede(err error) {
	x.mu.Lock()
	first := x.superseded == nil
	if first {
		x.superseded = err
	}
	x.mu.Unlock()
	if !first {
		return
	}
	fmt.Fprintf(x.cfg.Stderr, "flow run %s: superseded: %v; stopping without writing anything more\n", x.id, err)
	x.rep.Abandon(err)
	x.cancel(err)
}

func (x *execution) supersededErr() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.superseded
}

func (x *execution) supersededOr(err error) error {
	if s := x.supersededErr(); s != nil {
		return s
	}
	if x.rep != nil {
		x.rep.Abandon(err)
	}
	return err
}

// retryStart calls fn until it succeeds, fails for good, or the server was
// unreachable for startTimeout.
func retryStart(ctx context.Context, fn func(context.Context) error) error {
	deadline := time.Now().Add(startTimeout)
	for try := 0; ; try++ {
		err := fn(ctx)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		if c := errs.CodeOf(err); c != errs.CodeUnavailable && c != errs.CodeInternal {
			return err
		}
		if !backoff(ctx, try) {
			return err
		}
	}
}

// serverSecrets reads the run's secrets from the server, once each: tasks
// that ask for a secret at the same time share one request. A failed read
// is not kept, so a later call tries again.
type serverSecrets struct {
	c  *client.Client
	id string

	mu    sync.Mutex
	cache map[string]*secretEntry
}

type secretEntry struct {
	done  chan struct{}
	value string
	err   error
}

func (s *serverSecrets) Secret(ctx context.Context, name string) (string, error) {
	s.mu.Lock()
	if s.cache == nil {
		s.cache = map[string]*secretEntry{}
	}
	e, ok := s.cache[name]
	if !ok {
		e = &secretEntry{done: make(chan struct{})}
		s.cache[name] = e
	}
	s.mu.Unlock()
	if !ok {
		e.err = retryStart(ctx, func(ctx context.Context) (err error) {
			e.value, err = s.c.RunSecret(ctx, s.id, name)
			return err
		})
		if e.err != nil {
			s.mu.Lock()
			delete(s.cache, name)
			s.mu.Unlock()
		}
		close(e.done)
	}
	select {
	case <-e.done:
		return e.value, e.err
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}
