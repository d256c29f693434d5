package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// Defaults of MonitorConfig.
const (
	DefaultMonitorInterval = 5 * time.Second
	DefaultHeartbeat       = 10 * time.Second
	DefaultLostAfter       = 3 // heartbeat intervals
	DefaultSubmitTimeout   = 2 * time.Minute
	DefaultMaxRecoveries   = 3
	DefaultLateAfter       = 30 * time.Second
	// AgentOfflineAfter is how long an agent may go unseen (no heartbeat,
	// no claim) and still count as online.
	AgentOfflineAfter = 90 * time.Second
)

// MonitorStore is what a Monitor needs of the server's store; a
// store.Store has it.
type MonitorStore interface {
	ListFlowRuns(ctx context.Context, f store.FlowRunFilter) ([]store.FlowRun, string, error)
	SetFlowRunState(ctx context.Context, id string, expect int64, s state.State) (store.FlowRun, error)
	RecoverFlowRun(ctx context.Context, id string, expect int64, reason string, maxRecoveries int) (store.FlowRun, error)
	ListAgents(ctx context.Context) ([]store.Agent, error)
	GetFlowVersion(ctx context.Context, id string) (store.FlowVersion, error)
}

// MonitorConfig configures a Monitor. Zero fields take the defaults above.
type MonitorConfig struct {
	Store MonitorStore // required
	Now   func() time.Time
	// Interval is the time between passes.
	Interval time.Duration
	// Heartbeat is how often runners heartbeat; a Running (or Cancelling)
	// run whose runner has not beaten for LostAfter intervals is lost.
	Heartbeat time.Duration
	LostAfter int
	// SubmitTimeout is how long a claimed run may stay Submitted before its
	// runner counts as never started.
	SubmitTimeout time.Duration
	// MaxRecoveries is how often a lost run is re-queued before it fails;
	// negative: never.
	MaxRecoveries int
	// LateAfter is how long past its start a Scheduled run may wait before
	// the monitor says in its state message why no agent takes it.
	LateAfter time.Duration
	// Requeued, if set, is called after a pass re-queued runs (to wake
	// waiting claims). It must not block.
	Requeued func()
	Logger   *slog.Logger
}

// Monitor is the server's watch over runs that nobody will finish: the
// zombie killer and lazarus of the older orchestrators, and the reason a
// late run gives. Each pass:
//
//   - a Submitted run whose runner has not started within SubmitTimeout of
//     the claim, and a Running or Cancelling run whose runner's heartbeats
//     lapsed for LostAfter intervals, takes the lost-run path
//     (store.RecoverFlowRun): its running task runs fail with "runner
//     lost", a Cancelling run ends Cancelled, and any other is re-queued
//     up to MaxRecoveries times, then Failed with the reason;
//   - a Scheduled run more than LateAfter past its start gets a state
//     message saying why it waits: no agent online, no online agent's
//     labels cover its labels (naming them), or none of those runs its
//     flow's storage kind (naming the kinds they run).
//
// Several monitors (server replicas) may run on one store: every change is
// made with the state version the pass read, so a run is recovered once.
type Monitor struct {
	cfg MonitorConfig
}

// NewMonitor returns a Monitor for cfg.
func NewMonitor(cfg MonitorConfig) (*Monitor, error) {
	if cfg.Store == nil {
		return nil, errors.New("monitor config: Store is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Interval, DefaultMonitorInterval)
	def(&cfg.Heartbeat, DefaultHeartbeat)
	def(&cfg.SubmitTimeout, DefaultSubmitTimeout)
	def(&cfg.LateAfter, DefaultLateAfter)
	if cfg.LostAfter <= 0 {
		cfg.LostAfter = DefaultLostAfter
	}
	switch {
	case cfg.MaxRecoveries == 0:
		cfg.MaxRecoveries = DefaultMaxRecoveries
	case cfg.MaxRecoveries < 0:
		cfg.MaxRecoveries = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Requeued == nil {
		cfg.Requeued = func() {}
	}
	return &Monitor{cfg: cfg}, nil
}

// Run makes a pass every Interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		if err := m.Tick(ctx); err != nil && ctx.Err() == nil {
			m.cfg.Logger.ErrorContext(ctx, "run monitor pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick makes one pass. It returns the first error that stopped it from
// looking at runs; a run that moved meanwhile is skipped, not an error.
func (m *Monitor) Tick(ctx context.Context) error {
	now := m.cfg.Now()
	requeued := 0
	err := m.each(ctx, []state.Kind{state.Submitted, state.Running, state.Cancelling}, func(run store.FlowRun) error {
		reason := m.lost(run, now)
		if reason == "" {
			return nil
		}
		out, err := m.cfg.Store.RecoverFlowRun(ctx, run.ID, run.Version, reason, m.cfg.MaxRecoveries)
		if errors.Is(err, reeve.ErrConflict) {
			return nil // it moved meanwhile (the runner came back, another replica recovered it)
		}
		if err != nil {
			return err
		}
		if out.State.Kind == state.Scheduled {
			requeued++
		}
		m.cfg.Logger.WarnContext(ctx, "flow run lost its runner", "flow_run", run.ID, "attempt", run.Attempt, "reason", reason, "now", out.State.String())
		return nil
	})
	if requeued > 0 {
		m.cfg.Requeued()
	}
	return errors.Join(err, m.late(ctx, now))
}

// lost says why run's runner counts as lost at now, or "".
func (m *Monitor) lost(run store.FlowRun, now time.Time) string {
	switch run.State.Kind {
	case state.Submitted:
		// UpdatedAt is the store's time of the last change (the claim):
		// a state's own time may come from a runner's clock. An agent
		// that is still starting the program (pulling its image)
		// heartbeats the run meanwhile.
		last := run.UpdatedAt
		if run.HeartbeatAt.After(last) {
			last = run.HeartbeatAt
		}
		if now.Sub(last) > m.cfg.SubmitTimeout {
			return fmt.Sprintf("no runner started within %v of the claim by agent %s (attempt %d), or of the agent's last sign that it was still starting it: the agent may have died or could not start the flow program; see the agent's log",
				m.cfg.SubmitTimeout, run.AgentID, run.Attempt)
		}
	case state.Running, state.Cancelling:
		last := run.UpdatedAt
		if run.HeartbeatAt.After(last) {
			last = run.HeartbeatAt
		}
		lapse := time.Duration(m.cfg.LostAfter) * m.cfg.Heartbeat
		if now.Sub(last) > lapse {
			return fmt.Sprintf("no heartbeat from the runner of attempt %d for %v (it beats every %v): its process or machine is gone, or cannot reach the server",
				run.Attempt, now.Sub(last).Round(time.Second), m.cfg.Heartbeat)
		}
	}
	return ""
}

// late gives each late Scheduled run the reason it waits.
func (m *Monitor) late(ctx context.Context, now time.Time) error {
	var agents []store.Agent
	loaded := false
	kinds := make(map[string]string) // flow version ID → storage kind
	return m.each(ctx, []state.Kind{state.Scheduled}, func(run store.FlowRun) error {
		if now.Sub(run.ScheduledAt) <= m.cfg.LateAfter {
			return nil
		}
		if !loaded {
			var err error
			if agents, err = m.cfg.Store.ListAgents(ctx); err != nil {
				return err
			}
			loaded = true
		}
		kind, ok := kinds[run.FlowVersionID]
		if !ok {
			v, err := m.cfg.Store.GetFlowVersion(ctx, run.FlowVersionID)
			if errors.Is(err, reeve.ErrNotFound) {
				return nil // deleted since the page was read
			}
			if err != nil {
				return err
			}
			kind = v.Storage.Kind
			kinds[run.FlowVersionID] = kind
		}
		why := Stranded(agents, run.Labels, kind, now)
		if why == "" {
			why = "waiting for a free agent: every agent that can run it is busy (raise --max-runs or start more agents)"
		}
		msg := "late: " + why
		if run.State.Message == msg {
			return nil
		}
		_, err := m.cfg.Store.SetFlowRunState(ctx, run.ID, run.Version, state.State{Kind: state.Scheduled, Message: msg})
		if errors.Is(err, reeve.ErrConflict) {
			return nil
		}
		return err
	})
}

// each calls fn for every run in one of kinds, page by page. A run fn
// fails on does not keep it from the others: the errors are joined.
func (m *Monitor) each(ctx context.Context, kinds []state.Kind, fn func(store.FlowRun) error) error {
	f := store.FlowRunFilter{States: kinds, Limit: 500}
	var errs []error
	for {
		runs, next, err := m.cfg.Store.ListFlowRuns(ctx, f)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, run := range runs {
			if err := fn(run); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				errs = append(errs, fmt.Errorf("flow run %s: %w", run.ID, err))
			}
		}
		if next == "" {
			return errors.Join(errs...)
		}
		f.Cursor = next
	}
}

// Stranded says why no agent can take a run with labels, of a flow whose
// storage is of kind, at now: no agent online; none whose labels cover
// them (naming the labels); or none of those that runs kind (naming the
// kinds they run). It is "" when an online agent's labels cover them and
// it runs kind (an agent without kinds runs every kind; an empty kind
// suits every agent).
func Stranded(agents []store.Agent, labels []string, kind string, now time.Time) string {
	var online []store.Agent
	for _, a := range agents {
		if now.Sub(a.LastSeenAt) <= AgentOfflineAfter {
			online = append(online, a)
		}
	}
	start := "reeve agent process"
	if kind == "docker" {
		start = "reeve agent docker"
	}
	if len(labels) > 0 {
		start += " --labels " + strings.Join(labels, ",")
	}
	if len(online) == 0 {
		return fmt.Sprintf("no agent is online: start one, e.g. `%s`", start)
	}
	var seen, other []string
	for _, a := range online {
		if !covers(a.Labels, labels) {
			seen = append(seen, fmt.Sprintf("%s [%s]", a.Name, strings.Join(a.Labels, " ")))
			continue
		}
		if kind == "" || len(a.StorageKinds) == 0 || slices.Contains(a.StorageKinds, kind) {
			return ""
		}
		other = append(other, fmt.Sprintf("%s runs %s", a.Name, strings.Join(a.StorageKinds, ", ")))
	}
	if len(other) == 0 {
		return fmt.Sprintf("no online agent's labels cover the labels [%s]; online agents: %s; start one with `%s`",
			strings.Join(labels, " "), strings.Join(seen, ", "), start)
	}
	return fmt.Sprintf("no online agent runs %s flows with labels [%s] (online: %s); start one with `%s`",
		kind, strings.Join(labels, " "), strings.Join(other, "; "), start)
}

// covers reports whether have holds every label of want.
func covers(have, want []string) bool {
	for _, l := range want {
		if !slices.Contains(have, l) {
			return false
		}
	}
	return true
}
