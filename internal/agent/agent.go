// Package agent is the agent loop: it registers with the server, sends
// heartbeats, long-polls for flow runs its labels cover, starts each
// claimed run's program through a runner.Runner, ships the program's
// output to the run's log, and reports what the program itself cannot: that
// it never started, or that it died mid-run.
//
// # What the agent reports
//
// The flow program sets its run's states itself (Running, then a final
// state). When a program exits, the agent reads the run:
//
//   - still Submitted for the agent's attempt: the program never got as far
//     as starting its runner (missing binary, permission denied, a crash
//     before `execute` set Running). The agent sets the run Failed, with
//     the reason and the last lines of the program's stderr. No run is ever
//     left Submitted by the agent.
//   - still Running or Cancelling for the agent's attempt: the runner died
//     mid-run (a crash, kill -9). The agent reports the attempt lost
//     (POST /flow_runs/{id}/lost), and the server re-queues the run at
//     once, or fails it when it has no recoveries left. A 409 answer means
//     someone else moved the run on, which is fine.
//   - anything else (finished, re-queued, a newer attempt): nothing to do.
//
// # Output
//
// Each line the program writes becomes a line of the run's log: stdout at
// level INFO, stderr at level WARN (Go's log package writes ordinary
// messages to stderr, so ERROR would cry wolf; panics still stand out),
// with the attribute {"stream": "stdout"} or {"stream": "stderr"}. Lines
// are shipped in batches every FlushInterval (200ms). The agent's own
// notes in a run's log carry {"source": "agent"}.
//
// # Restarts and shutdown
//
// The agent keeps a record of each program it starts in its data
// directory (written atomically). When it stops (its context is
// cancelled, e.g. on SIGTERM) it stops claiming and, by default, leaves the
// programs running: they report their states by themselves, and their
// output keeps going to files. An agent started again with the same name
// and data directory lists the runs the server says it claimed, adopts the
// programs that still run (it watches them until they exit, shipping their
// output from then on; what they wrote while no agent watched is not
// shipped, and the run's log says so), and reports the others lost. With
// StopRunsOnExit it instead stops its programs (SIGTERM, then SIGKILL after
// StopGrace) and reports their runs as it would any exit.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/runner"
	"github.com/reevehq/reeve/internal/state"
)

// Defaults of Config's zero fields.
const (
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultClaimWait         = 30 * time.Second
	DefaultFlushInterval     = 200 * time.Millisecond
	DefaultStopGrace         = 30 * time.Second
	// DefaultStartTimeout bounds a runner's Start: an image pull included.
	DefaultStartTimeout = 15 * time.Minute
)

// DefaultMaxRuns is the default limit of runs one agent runs at once: four
// per CPU. A flow program is a whole process with its own parallel
// executor, but most flows wait on networks and databases more than they
// compute.
func DefaultMaxRuns() int { return 4 * runtime.NumCPU() }

// Config configures an agent.
type Config struct {
	// Client calls the server with the agent's token (role agent or
	// admin). Required.
	Client *client.Client
	// Runner starts the programs. Required.
	Runner runner.Runner
	// Kind names the agent's kind in messages, e.g. "process".
	Kind string
	// Name is the agent's name; registering again with the same name is
	// the same agent, which is how a restarted agent finds its runs.
	// Required.
	Name string
	// Labels are the labels of the flows the agent runs.
	Labels []string
	// StorageKinds are the storage kinds of the flows its Runner runs
	// (api.StorageLocal, api.StorageDocker): the server gives the agent
	// only runs of flows stored so. None means every kind.
	StorageKinds []string
	// MaxRuns is how many runs the agent runs at once (≥ 1; required).
	// The agent claims a run only while fewer run.
	MaxRuns int
	// DataDir keeps the records of the running programs, across
	// restarts (required; created with mode 0700). One agent per
	// directory.
	DataDir string
	// APIURL is the server URL given to the programs (REEVE_API_URL);
	// "" means the Client's URL.
	APIURL string
	// StopRunsOnExit makes the agent stop its programs when it stops,
	// instead of leaving them running.
	StopRunsOnExit bool
	// StopGrace is how long a stopped program has between SIGTERM and
	// SIGKILL; 0 means DefaultStopGrace.
	StopGrace time.Duration
	// StartTimeout bounds starting one program (an image pull included);
	// a start that takes longer fails its run. 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// HeartbeatInterval, ClaimWait and FlushInterval: 0 means the
	// Default... constants.
	HeartbeatInterval time.Duration
	ClaimWait         time.Duration
	FlushInterval     time.Duration
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
}

// Validate checks the configuration, naming the offending field.
func (c Config) Validate() error {
	switch {
	case c.Client == nil:
		return errors.New("agent: Config.Client is nil")
	case c.Runner == nil:
		return errors.New("agent: Config.Runner is nil")
	case strings.TrimSpace(c.Name) == "":
		return errors.New("agent: Config.Name is empty: give the agent a name (the host name is a good one)")
	case c.MaxRuns < 1:
		return fmt.Errorf("agent: Config.MaxRuns is %d: give how many runs the agent may run at once (at least 1)", c.MaxRuns)
	case c.DataDir == "":
		return errors.New("agent: Config.DataDir is empty: give the directory for the agent's records")
	case c.StopGrace < 0, c.HeartbeatInterval < 0, c.ClaimWait < 0, c.FlushInterval < 0:
		return errors.New("agent: Config.StopGrace, HeartbeatInterval, ClaimWait and FlushInterval must not be negative")
	}
	return nil
}

// Agent runs flow runs. Create it with New and start it with Run.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	records records
	apiURL  string

	id        string // set by Run's registration
	slots     chan struct{}
	wg        sync.WaitGroup // the watchers
	launching sync.WaitGroup // the launches in progress
	// starts bounds the starts in progress: cancelled when the agent
	// stops and they do not end within StopGrace.
	starts      context.Context
	cancelStart context.CancelFunc
	// unavailable is set while the runner's engine is down: claims wait
	// until the runner's Check passes again.
	unavailable atomic.Bool

	mu      sync.Mutex
	running map[string]*run // by runKey
}

// New returns an agent with cfg.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Kind == "" {
		cfg.Kind = "process"
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.ClaimWait == 0 {
		cfg.ClaimWait = DefaultClaimWait
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{
		cfg:     cfg,
		log:     log.With("agent", cfg.Name),
		records: records{dir: filepath.Join(cfg.DataDir, "runs")},
		apiURL:  cfg.APIURL,
		slots:   make(chan struct{}, cfg.MaxRuns),
		running: map[string]*run{},
	}
	a.starts, a.cancelStart = context.WithCancel(context.Background())
	if a.apiURL == "" {
		a.apiURL = cfg.Client.URL()
	}
	return a, nil
}

// ID returns the agent's ID once Run has registered it, else "".
func (a *Agent) ID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id
}

// Running returns how many programs the agent watches now.
func (a *Agent) Running() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.running)
}

// run is a program the agent watches.
type run struct {
	id      string
	attempt int
	program string // path or image, for messages
	handle  runner.Handle
	logs    *shipper // nil: the output is not shipped
	slot    bool     // holds one of the agent's slots
	stopped bool     // the agent stopped the program (under a.mu)
}

// Run registers the agent, adopts or reports the runs it had before a
// restart, then claims and runs flow runs until ctx ends. It returns nil
// when ctx ends, and an error when the agent cannot work at all (its token
// is refused, its data directory cannot be written).
func (a *Agent) Run(ctx context.Context) error {
	if err := os.MkdirAll(a.records.dir, 0o700); err != nil {
		return fmt.Errorf("agent %s: create its data directory: %w", a.cfg.Name, err)
	}
	unlock, err := lockDir(a.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("agent %s: %w", a.cfg.Name, err)
	}
	defer unlock()
	ag, err := a.register(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.mu.Lock()
	a.id = ag.ID
	a.mu.Unlock()
	a.log.InfoContext(ctx, "agent registered", "agent_id", ag.ID, "labels", ag.Labels, "max_runs", a.cfg.MaxRuns)
	if len(a.cfg.StorageKinds) > 0 && len(ag.StorageKinds) == 0 {
		a.log.WarnContext(ctx, "the server does not know storage kinds (it is older than this agent): it may give this agent runs it cannot run, which then fail; upgrade the server", "storage_kinds", a.cfg.StorageKinds)
	}

	// The watchers wait for the programs until the agent stops, or with
	// StopRunsOnExit, until the programs the agent stops exit.
	waitCtx := ctx
	if a.cfg.StopRunsOnExit {
		waitCtx = context.WithoutCancel(ctx)
	}
	if err := a.recover(ctx, waitCtx); err != nil && ctx.Err() == nil {
		a.wg.Wait()
		return err
	}

	var bg sync.WaitGroup
	bg.Go(func() { a.heartbeats(ctx) })
	a.claims(ctx, waitCtx)
	bg.Wait()
	// Programs being started now are watched (and stopped below) too;
	// starts that do not end within the grace are cancelled, and their
	// runs handed back to the server.
	a.waitStarts()
	a.handBackUnread()

	if a.cfg.StopRunsOnExit {
		a.mu.Lock()
		for _, r := range a.running {
			r.stopped = true
			a.log.Info("stopping the flow program", "flow_run", r.id, "program", r.handle.ID())
			if err := r.handle.Stop(context.Background(), a.cfg.StopGrace); err != nil {
				a.log.Warn("cannot stop the flow program", "flow_run", r.id, "err", err)
			}
		}
		a.mu.Unlock()
	} else if n := a.Running(); n > 0 {
		a.log.Info("agent stopping; its flow programs keep running, and an agent started again with the same name and data directory adopts them", "running", n)
	}
	a.wg.Wait()
	return nil
}

// register registers the agent, trying again while the server cannot be
// reached.
func (a *Agent) register(ctx context.Context) (*api.Agent, error) {
	b := backoff{}
	for {
		ag, err := a.cfg.Client.RegisterAgent(ctx, api.RegisterAgent{Name: a.cfg.Name, Labels: a.cfg.Labels, StorageKinds: a.cfg.StorageKinds})
		if err == nil {
			return ag, nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("agent %s: %w", a.cfg.Name, err)
		}
		a.log.WarnContext(ctx, "cannot register the agent; will retry", "err", err)
		if !b.sleep(ctx) {
			return nil, ctx.Err()
		}
	}
}

func (a *Agent) heartbeats(ctx context.Context) {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := a.cfg.Client.Heartbeat(ctx, a.ID()); err != nil && ctx.Err() == nil {
			a.log.WarnContext(ctx, "agent heartbeat failed", "err", err)
			if errors.Is(err, errs.ErrNotFound) {
				// The agent was deleted: register again, under the same name.
				if ag, err := a.register(ctx); err == nil {
					a.mu.Lock()
					a.id = ag.ID
					a.mu.Unlock()
				}
			}
		}
	}
}

// claims long-polls for runs while a slot is free, until ctx ends.
func (a *Agent) claims(ctx, waitCtx context.Context) {
	b := backoff{}
	for {
		select {
		case a.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if !a.waitAvailable(ctx) {
			<-a.slots
			return
		}
		claim, err := a.cfg.Client.Claim(ctx, a.ID(), a.cfg.ClaimWait)
		if claim != nil {
			// A claimed run is started even if the agent is stopping:
			// leaving it Submitted would strand it. Starting may take long
			// (an image pull): claims go on meanwhile.
			b = backoff{}
			a.launching.Go(func() { a.launch(context.WithoutCancel(ctx), waitCtx, claim) })
			continue
		}
		<-a.slots
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			a.log.WarnContext(ctx, "claim failed; will retry", "err", err)
			if !b.sleep(ctx) {
				return
			}
		default:
			b = backoff{}
		}
	}
}

// waitStarts waits for the starts in progress, cancelling them after
// StopGrace.
func (a *Agent) waitStarts() {
	done := make(chan struct{})
	go func() {
		a.launching.Wait()
		close(done)
	}()
	t := time.NewTimer(a.cfg.StopGrace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	a.log.Warn("cancelling the flow programs still being started: their runs go back to the server")
	a.cancelStart()
	<-done
}

// handBackUnread hands back to the server the runs it has as Submitted to
// this agent that the agent never started: a claim the server granted
// just as the agent stopped, whose answer the agent never read (the
// request was cancelled in flight). Without it such a run would wait for
// the server's monitor to find it lost. It runs once every start has
// ended; a run the agent started has a record in its data directory
// (kept until the run is settled, also when its program outlives the
// agent), so it is never among them.
func (a *Agent) handBackUnread() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mine := map[string]bool{}
	a.mu.Lock()
	for key := range a.running {
		mine[key] = true
	}
	a.mu.Unlock()
	recs, bad, err := a.records.load()
	if err != nil || len(bad) > 0 {
		// A record it cannot read may be a started run's: hand back none.
		a.log.Warn("cannot read the agent's records; the server's monitor will find any run it did not start", "err", errors.Join(append(bad, err)...))
		return
	}
	for _, rec := range recs {
		mine[runKey(rec.FlowRunID, rec.Attempt)] = true
	}
	for fr, err := range a.cfg.Client.AllFlowRuns(ctx, client.FlowRunFilter{AgentID: a.ID(), States: []state.Kind{state.Submitted}}) {
		if err != nil {
			a.log.Warn("cannot list this agent's submitted runs; the server's monitor will find any it did not start", "err", err)
			return
		}
		if mine[runKey(fr.ID, fr.Attempt)] {
			continue
		}
		reason := fmt.Sprintf("agent %q stopped as it claimed the run, before it started the flow program", a.cfg.Name)
		a.log.Warn("handing back a run claimed as the agent stopped", "flow_run", fr.ID, "attempt", fr.Attempt)
		if _, err := a.cfg.Client.ReportLost(ctx, fr.ID, api.ReportLost{Attempt: fr.Attempt, Reason: reason}); err != nil {
			a.log.Warn("cannot hand the run back; the server's monitor will", "flow_run", fr.ID, "err", err)
		}
	}
}

// waitAvailable returns once the runner can start programs. A runner
// that depends on an engine (runner.Checker) is checked before every
// claim, so that a dead engine fails no run it did not have to; while
// the check fails, it retries with backoff. It reports false when ctx
// ended first.
func (a *Agent) waitAvailable(ctx context.Context) bool {
	c, ok := a.cfg.Runner.(runner.Checker)
	if !ok {
		return ctx.Err() == nil
	}
	b := backoff{}
	for {
		err := c.Check(ctx)
		if err == nil {
			if a.unavailable.Swap(false) {
				a.log.InfoContext(ctx, "the runner's engine is back: claiming runs again")
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if !a.unavailable.Swap(true) {
			a.log.WarnContext(ctx, "not claiming runs until the runner's engine is back", "err", err)
		}
		if !b.sleep(ctx) {
			return false
		}
	}
}

// beatWhileStarting heartbeats run id with the run's client until done is
// closed, so that a slow start (an image pull) is not taken for a dead
// agent by the server's monitor.
func (a *Agent) beatWhileStarting(ctx context.Context, rc *client.Client, id string, done <-chan struct{}) {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := rc.RunHeartbeat(ctx, id); err != nil {
			a.log.DebugContext(ctx, "heartbeat of a starting flow run failed", "flow_run", id, "err", err)
		}
	}
}

// launch starts a claimed run's program, holding one slot until its
// watcher ends. A program that cannot start fails its run.
func (a *Agent) launch(ctx, waitCtx context.Context, claim *api.Claim) {
	fr, v := claim.FlowRun, claim.FlowVersion
	log := a.log.With("flow_run", fr.ID, "attempt", fr.Attempt)
	program := v.Storage.Path
	if program == "" {
		program = v.Storage.Image
	}
	rc, err := client.New(a.cfg.Client.URL(), claim.Token, client.WithUserAgent("reeve-agent/"+a.cfg.Kind))
	if err != nil {
		a.failStart(ctx, log, fr.ID, fr.Attempt, nil, fmt.Errorf("the agent cannot use the claim's run token: %w", err))
		<-a.slots
		return
	}
	logs := newShipper(rc, fr.ID, a.cfg.FlushInterval, log)
	spec := runner.Spec{
		FlowRunID: fr.ID,
		Attempt:   fr.Attempt,
		Storage:   v.Storage,
		Env:       v.RunConfig.Env,
		CPU:       v.RunConfig.CPU,
		Memory:    v.RunConfig.Memory,
		Platform:  v.RunConfig.Platform,
		APIURL:    a.apiURL,
		APIToken:  claim.Token,
		Output:    logs.output,
		Note:      func(msg string) { logs.note("INFO", msg) },
	}
	startCtx, cancel := context.WithTimeout(a.starts, a.cfg.StartTimeout)
	starting := make(chan struct{})
	var beats sync.WaitGroup
	beats.Go(func() { a.beatWhileStarting(startCtx, rc, fr.ID, starting) })
	h, err := a.cfg.Runner.Start(startCtx, spec)
	close(starting)
	beats.Wait()
	timedOut := startCtx.Err() == context.DeadlineExceeded
	cancel()
	if err != nil && a.starts.Err() != nil {
		// The agent stopped while the program was being started: the run
		// goes back to the server for another agent, or this one again.
		log.WarnContext(ctx, "the agent stopped while it started the flow program", "program", program, "err", err)
		logs.note("WARN", fmt.Sprintf("agent %q stopped while it started the flow program %s", a.cfg.Name, program))
		logs.close()
		lctx, lcancel := context.WithTimeout(ctx, 30*time.Second)
		_, rerr := a.cfg.Client.ReportLost(lctx, fr.ID, api.ReportLost{Attempt: fr.Attempt, Reason: fmt.Sprintf("agent %q stopped while it started the flow program", a.cfg.Name)})
		lcancel()
		if rerr != nil {
			log.WarnContext(ctx, "cannot hand the run back; the server's monitor will", "err", rerr)
		}
		<-a.slots
		return
	}
	if err != nil && timedOut {
		err = fmt.Errorf("the flow program %s did not start within %v (the agent's start timeout): %w", program, a.cfg.StartTimeout, err)
	}
	if err != nil {
		if errors.Is(err, runner.ErrUnavailable) {
			a.unavailable.Store(true)
		}
		log.WarnContext(ctx, "the flow program could not start", "program", program, "err", err)
		a.failStart(ctx, log, fr.ID, fr.Attempt, logs, err)
		<-a.slots
		return
	}
	log.InfoContext(ctx, "flow program started", "program", program, "handle", h.ID())
	logs.note("INFO", fmt.Sprintf("agent %q started the flow program %s (%s) for attempt %d", a.cfg.Name, program, h.ID(), fr.Attempt))
	rec := record{FlowRunID: fr.ID, Attempt: fr.Attempt, Token: claim.Token, Program: program, Handle: h.Saved()}
	if err := a.records.save(rec); err != nil {
		// The run goes on; only an agent restart would not find it.
		log.ErrorContext(ctx, "cannot save the record of the flow program: an agent restart will report its run lost", "err", err)
	}
	a.watch(waitCtx, &run{id: fr.ID, attempt: fr.Attempt, program: program, handle: h, logs: logs, slot: true})
}

// watch watches r until its program exits, in a goroutine that holds a
// slot, then settles its run.
func (a *Agent) watch(waitCtx context.Context, r *run) {
	a.mu.Lock()
	a.running[runKey(r.id, r.attempt)] = r
	a.mu.Unlock()
	a.wg.Go(func() {
		defer func() {
			if r.slot {
				<-a.slots
			}
		}()
		defer func() {
			a.mu.Lock()
			delete(a.running, runKey(r.id, r.attempt))
			a.mu.Unlock()
		}()
		log := a.log.With("flow_run", r.id, "attempt", r.attempt)
		// The program outlives the agent's context unless the agent stops
		// its programs: then Wait ends when they do.
		exit, err := r.handle.Wait(waitCtx)
		if err != nil {
			r.logs.close()
			log.Info("no longer watching the flow program: the agent stops", "handle", r.handle.ID())
			return
		}
		log.Info("flow program exited", "handle", r.handle.ID(), "exit", exit.String())
		r.logs.close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := a.settle(ctx, log, r.id, r.attempt, a.exitReason(r, exit), exit.StartErr != nil); err != nil {
			log.Error("cannot report how the flow program ended: the record stays, and a restarted agent reports the run lost", "err", err)
			return
		}
		if err := a.records.remove(r.id, r.attempt); err != nil {
			log.Warn("cannot remove the record of the flow program", "err", err)
		}
	})
}

// exitReason says how a program ended, for the run's state: the exit, and
// the last lines of its stderr.
func (a *Agent) exitReason(r *run, exit runner.Exit) string {
	if exit.StartErr != nil {
		return exit.StartErr.Error()
	}
	msg := fmt.Sprintf("the flow program %s (%s) %s", r.program, r.handle.ID(), exit)
	a.mu.Lock()
	if r.stopped {
		msg += fmt.Sprintf(" after agent %q stopped it on its way out", a.cfg.Name)
	}
	a.mu.Unlock()
	if lines := r.logs.lastLines(); len(lines) > 0 {
		msg += "; its last lines on stderr:\n" + strings.Join(lines, "\n")
	}
	return msg
}

// failStart fails a run whose program did not start.
func (a *Agent) failStart(ctx context.Context, log *slog.Logger, runID string, attempt int, logs *shipper, cause error) {
	if logs != nil {
		logs.note("ERROR", cause.Error())
		logs.close()
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := a.settle(ctx, log, runID, attempt, cause.Error(), true); err != nil {
		log.ErrorContext(ctx, "cannot fail the flow run whose program did not start; the server's monitor will find it stuck in Submitted", "err", err)
	}
}

// settle reports a run whose program ended, by the run's current state: a
// run still Submitted for attempt fails with reason (prefixed with what
// happened unless noStart says the reason already says it), one still
// Running or Cancelling is reported lost; any other is left alone.
func (a *Agent) settle(ctx context.Context, log *slog.Logger, runID string, attempt int, reason string, noStart bool) error {
	b := backoff{}
	for tries := 0; ; tries++ {
		err := a.settleOnce(ctx, log, runID, attempt, reason, noStart)
		if err == nil || errors.Is(err, errs.ErrNotFound) {
			return nil
		}
		if errors.Is(err, errs.ErrConflict) && tries < 10 {
			continue // the run moved meanwhile: read it again
		}
		if !retryable(err) {
			return err
		}
		log.WarnContext(ctx, "cannot report how the flow program ended; will retry", "err", err)
		if !b.sleep(ctx) {
			return err
		}
	}
}

func (a *Agent) settleOnce(ctx context.Context, log *slog.Logger, runID string, attempt int, reason string, noStart bool) error {
	d, err := a.cfg.Client.FlowRun(ctx, runID)
	if err != nil {
		return err
	}
	fr := d.FlowRun
	if fr.Attempt != attempt {
		log.InfoContext(ctx, "the flow run moved on to another attempt; nothing to report", "now_attempt", fr.Attempt, "state", fr.State.Kind)
		return nil
	}
	switch fr.State.Kind {
	case state.Submitted:
		msg := reason
		if !noStart {
			msg = beforeRunner(reason)
		}
		_, err := a.cfg.Client.SetFlowRunState(ctx, runID, api.SetState{
			State:         state.State{Kind: state.Failed, Message: msg, Time: time.Now()},
			ExpectVersion: fr.Version,
		})
		if err == nil {
			log.InfoContext(ctx, "flow run failed: its program did not start its runner", "reason", msg)
		}
		return err
	case state.Running, state.Cancelling:
		_, err := a.cfg.Client.ReportLost(ctx, runID, api.ReportLost{Attempt: attempt, Reason: reason})
		if errors.Is(err, errs.ErrConflict) {
			// Someone else moved the run on (it finished, a monitor
			// found it lost first): read it again to be sure.
			d2, err2 := a.cfg.Client.FlowRun(ctx, runID)
			if err2 == nil && (d2.FlowRun.Attempt != attempt || d2.FlowRun.State.Kind != fr.State.Kind || d2.FlowRun.Version != fr.Version) {
				return nil
			}
			return err
		}
		if err == nil {
			log.WarnContext(ctx, "flow run reported lost", "reason", reason)
		}
		return err
	}
	return nil
}

// beforeRunner words the reason of a program that exited while its run
// was still Submitted.
func beforeRunner(reason string) string {
	head, tail, found := strings.Cut(reason, "; its last lines on stderr:")
	head += " before its runner started (is it a Reeve flow program? it must run flow runs with `" + runner.Command + "`)"
	if found {
		head += "; its last lines on stderr:" + tail
	}
	return head
}

// backoff sleeps between retries: 1s, doubling up to 30s, with jitter.
type backoff struct{ n int }

func (b *backoff) sleep(ctx context.Context) bool {
	d := min(time.Second<<min(b.n, 5), 30*time.Second)
	b.n++
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// recover finds the runs the agent had before it restarted: it adopts the
// programs that still run and reports the runs of the others lost.
func (a *Agent) recover(ctx, waitCtx context.Context) error {
	recs, bad, err := a.records.load()
	if err != nil {
		return fmt.Errorf("agent %s: %w", a.cfg.Name, err)
	}
	for _, err := range bad {
		a.log.WarnContext(ctx, "skipping a record the agent cannot read", "err", err)
	}
	recs = a.found(ctx, recs)
	active, err := a.claimedRuns(ctx)
	if err != nil {
		return fmt.Errorf("agent %s: list the runs it claimed before: %w", a.cfg.Name, err)
	}
	type key struct {
		id      string
		attempt int
	}
	current := map[key]bool{}
	for _, fr := range active {
		current[key{fr.ID, fr.Attempt}] = true
	}
	handled := map[key]bool{}
	for _, rec := range recs {
		k := key{rec.FlowRunID, rec.Attempt}
		log := a.log.With("flow_run", rec.FlowRunID, "attempt", rec.Attempt)
		var logs *shipper
		if current[k] {
			if rc, err := client.New(a.cfg.Client.URL(), rec.Token, client.WithUserAgent("reeve-agent/"+a.cfg.Kind)); err == nil {
				logs = newShipper(rc, rec.FlowRunID, a.cfg.FlushInterval, log)
			}
		}
		var out func(runner.Line)
		if logs != nil {
			out = logs.output
		}
		h, err := a.cfg.Runner.Recover(ctx, rec.Handle, out)
		if err == nil && !current[k] {
			// Its attempt was superseded or its run ended meanwhile: the
			// server fences its writes; it has nothing left to do.
			log.WarnContext(ctx, "stopping a flow program whose run moved on while the agent was away", "handle", h.ID())
			if err := h.Stop(ctx, a.cfg.StopGrace); err != nil {
				log.WarnContext(ctx, "cannot stop the flow program", "handle", h.ID(), "err", err)
				continue // keep the record: the next start tries again
			}
			// Keep the record until it exited: an agent stopped meanwhile
			// finds it again.
			wctx, wcancel := context.WithTimeout(ctx, a.cfg.StopGrace+10*time.Second)
			_, werr := h.Wait(wctx)
			wcancel()
			if werr != nil {
				log.WarnContext(ctx, "the stopped flow program has not exited yet; its record stays", "handle", h.ID(), "err", werr)
				continue
			}
			if err := a.records.remove(rec.FlowRunID, rec.Attempt); err != nil {
				log.WarnContext(ctx, "cannot remove the record of the flow program", "err", err)
			}
			continue
		}
		if err == nil {
			handled[k] = true
			log.InfoContext(ctx, "adopted a flow program that kept running while the agent restarted", "handle", h.ID())
			logs.note("WARN", fmt.Sprintf("agent %q restarted and adopted the flow program %s (%s) of attempt %d: what it wrote while no agent watched is not in this log", a.cfg.Name, rec.Program, h.ID(), rec.Attempt))
			r := &run{id: rec.FlowRunID, attempt: rec.Attempt, program: rec.Program, handle: h, logs: logs}
			select {
			case a.slots <- struct{}{}:
				r.slot = true
			default: // more adopted programs than MaxRuns: they run anyway
			}
			a.watch(waitCtx, r)
			continue
		}
		logs.close()
		if !errors.Is(err, runner.ErrGone) {
			log.WarnContext(ctx, "cannot recover the flow program", "err", err)
		}
		if current[k] {
			handled[k] = true
			if err := a.reportLost(ctx, log, rec.FlowRunID, rec.Attempt); err != nil {
				continue // keep the record: the next start tries again
			}
		}
		if err := a.records.remove(rec.FlowRunID, rec.Attempt); err != nil {
			log.WarnContext(ctx, "cannot remove the record of the flow program", "err", err)
		}
	}
	for _, fr := range active {
		if !handled[key{fr.ID, fr.Attempt}] {
			_ = a.reportLost(ctx, a.log.With("flow_run", fr.ID, "attempt", fr.Attempt), fr.ID, fr.Attempt)
		}
	}
	return nil
}

// found adds to recs the programs a runner that is a runner.Finder finds
// by itself (the Docker runner, by its containers' labels) and the agent
// has no record of: its data directory was lost or is on another machine.
// The runner removes what is left of programs that ended.
func (a *Agent) found(ctx context.Context, recs []record) []record {
	f, ok := a.cfg.Runner.(runner.Finder)
	if !ok {
		return recs
	}
	found, err := f.Find(ctx)
	if err != nil {
		a.log.WarnContext(ctx, "cannot list the agent's programs; only its records are used", "err", err)
		return recs
	}
	have := map[string]bool{}
	for _, rec := range recs {
		have[runKey(rec.FlowRunID, rec.Attempt)] = true
	}
	for _, fd := range found {
		if have[runKey(fd.FlowRunID, fd.Attempt)] {
			continue
		}
		a.log.InfoContext(ctx, "found a running flow program the agent had no record of", "flow_run", fd.FlowRunID, "attempt", fd.Attempt, "program", fd.Program)
		rec := record{FlowRunID: fd.FlowRunID, Attempt: fd.Attempt, Token: fd.Token, Program: fd.Program, Handle: fd.Saved}
		if err := a.records.save(rec); err != nil {
			a.log.WarnContext(ctx, "cannot save the record of a found flow program", "err", err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// claimedRuns lists the runs the server says this agent claimed and did
// not finish, trying again while the server cannot be reached.
func (a *Agent) claimedRuns(ctx context.Context) ([]api.FlowRun, error) {
	b := backoff{}
	for {
		var out []api.FlowRun
		var err error
		for fr, e := range a.cfg.Client.AllFlowRuns(ctx, client.FlowRunFilter{
			AgentID: a.ID(),
			States:  []state.Kind{state.Submitted, state.Running, state.Cancelling},
			Limit:   1000,
		}) {
			if e != nil {
				err = e
				break
			}
			if fr.AgentID == a.ID() {
				out = append(out, fr)
			}
		}
		if err == nil || !retryable(err) {
			return out, err
		}
		a.log.WarnContext(ctx, "cannot list the agent's runs; will retry", "err", err)
		if !b.sleep(ctx) {
			return nil, ctx.Err()
		}
	}
}

// reportLost reports the runner of a run's attempt gone after a restart.
func (a *Agent) reportLost(ctx context.Context, log *slog.Logger, runID string, attempt int) error {
	reason := fmt.Sprintf("the agent %q restarted and the runner of attempt %d is gone", a.cfg.Name, attempt)
	_, err := a.cfg.Client.ReportLost(ctx, runID, api.ReportLost{Attempt: attempt, Reason: reason})
	switch {
	case err == nil:
		log.WarnContext(ctx, "flow run reported lost", "reason", reason)
	case errors.Is(err, errs.ErrConflict), errors.Is(err, errs.ErrNotFound):
		log.InfoContext(ctx, "the flow run moved on meanwhile; nothing to report", "err", err)
		return nil
	default:
		log.ErrorContext(ctx, "cannot report the flow run lost", "err", err)
	}
	return err
}

func runKey(id string, attempt int) string { return fmt.Sprintf("%s#%d", id, attempt) }
