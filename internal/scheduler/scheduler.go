// Package scheduler runs the Reeve server's schedules: it turns each
// schedule of a flow into flow runs of the flow's newest version, created
// ahead of time in state Scheduled for agents to claim when they are due.
//
// [Next] is the pure part: the fire times of a cron or interval schedule,
// with its time zone's daylight-saving changes spelled out. A [Scheduler]
// is the service: every Config.Interval, or at once when [Scheduler.Kick]
// asks, it makes sure every schedule that is not paused has runs for its
// next Config.Runs fire times after now.
//
// # Guarantees
//
//   - Each fire time gets one run, however often passes repeat and however
//     many servers run a Scheduler on one store: a run's idempotency key
//     names its schedule, flow version and time, and the store creates a
//     key's run once.
//   - No run is created in the past. A fire time missed while no scheduler
//     ran (the server was down longer than Runs fire times) is skipped, not
//     caught up.
//   - A schedule's runs belong to its flow's newest version. Registering a
//     new version deletes the old version's Scheduled runs (the store does
//     that), and the next pass makes them anew for the new version; so does
//     resuming a paused schedule.
//   - One schedule failing (bad parameters for a new version, say) is logged
//     with its IDs and does not hold back the others.
package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/spec"
	"github.com/reevehq/reeve/internal/store"
)

// Store is what a Scheduler needs of the server's store; a store.Store has
// it.
type Store interface {
	// ListSchedules returns every schedule (flowID ""), oldest first.
	ListSchedules(ctx context.Context, flowID string) ([]store.Schedule, error)
	// ListFlowVersions returns a flow's versions, newest first.
	ListFlowVersions(ctx context.Context, flowID string) ([]store.FlowVersion, error)
	// CreateFlowRun creates a run, or returns the run that already has its
	// idempotency key with created false. It returns ErrConflict when the
	// run's schedule is paused or its version archived, and ErrNotFound
	// when its schedule is gone.
	CreateFlowRun(ctx context.Context, r store.FlowRun) (run store.FlowRun, created bool, err error)
}

// Defaults of Config.
const (
	DefaultRuns     = 10
	DefaultInterval = 10 * time.Second
)

// Config configures a Scheduler.
type Config struct {
	// Store holds the schedules, flows and runs. Required.
	Store Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Runs is how many future runs each schedule keeps created; 0 means
	// DefaultRuns. Agents see them ahead of time, and runs keep coming
	// for as long as the scheduler may be down for less than Runs fire
	// times.
	Runs int
	// Interval is the time between passes; 0 means DefaultInterval. A
	// schedule firing more often than Runs times per Interval loses the
	// fire times between its last created run and the next pass.
	Interval time.Duration
	// Logger receives what the scheduler does and each schedule's failure;
	// nil means no logging.
	Logger *slog.Logger
}

// Validate reports the first field of c that is not valid.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return reeve.Errorf(reeve.CodeInvalid, "scheduler config: Store is nil: give the server's store")
	case c.Runs < 0:
		return reeve.Errorf(reeve.CodeInvalid, "scheduler config: Runs is %d: give a positive number of runs to keep ahead, or 0 for %d", c.Runs, DefaultRuns)
	case c.Interval < 0:
		return reeve.Errorf(reeve.CodeInvalid, "scheduler config: Interval is %s: give a positive interval between passes, or 0 for %s", c.Interval, DefaultInterval)
	}
	return nil
}

// Scheduler creates the runs of schedules. Its methods are safe for
// concurrent use.
type Scheduler struct {
	store    Store
	now      func() time.Time
	runs     int
	interval time.Duration
	log      *slog.Logger
	kick     chan struct{} // one pending Kick; more coalesce
}

// New returns a Scheduler with the configuration cfg, or cfg's Validate
// error.
func New(cfg Config) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Scheduler{
		store:    cfg.Store,
		now:      cfg.Now,
		runs:     cfg.Runs,
		interval: cfg.Interval,
		log:      cfg.Logger,
		kick:     make(chan struct{}, 1),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.runs == 0 {
		s.runs = DefaultRuns
	}
	if s.interval == 0 {
		s.interval = DefaultInterval
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Run makes passes (Tick) until ctx ends: one at once, then one every
// Config.Interval, and one soon after each Kick. Each pass logs its
// failures.
func (s *Scheduler) Run(ctx context.Context) {
	ticker := time.NewTicker(s.interval)
	defer ticker.Stop()
	for {
		_ = s.Tick(ctx) // it logged its errors
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-s.kick:
		}
	}
}

// Kick asks Run for a pass now, when a flow was registered or a schedule
// created or resumed. It does not wait; kicks that come while one is
// pending make one pass together. Without a running Run it does nothing
// until Run starts.
func (s *Scheduler) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Log attribute keys.
const (
	logKeySchedule    = "schedule_id"
	logKeyFlowID      = "flow_id"
	logKeyFlowVersion = "flow_version_id"
	logKeyFlow        = "flow"
)

// Tick makes one pass: for every schedule that is not paused, it creates
// the runs of the next Config.Runs fire times after now that do not exist
// yet, for the newest version of the schedule's flow. It logs each failure
// (with the schedule's and the flow's IDs) and goes on with the other
// schedules, and returns the failures joined; when ctx ends, it stops and
// returns ctx's error.
func (s *Scheduler) Tick(ctx context.Context) error {
	now := s.now()
	schedules, err := s.store.ListSchedules(ctx, "")
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err = fmt.Errorf("scheduler: list schedules: %w", err)
		s.log.ErrorContext(ctx, "scheduler pass failed", "err", err)
		return err
	}
	heads := map[string]*head{} // by flow ID
	var errs []error
	for _, sc := range schedules {
		if sc.Paused {
			continue
		}
		h, ok := heads[sc.FlowID]
		if !ok {
			h = s.head(ctx, sc.FlowID)
			heads[sc.FlowID] = h
		}
		log := s.log.With(logKeySchedule, sc.ID, logKeyFlowID, sc.FlowID)
		if h.version != nil {
			log = log.With(logKeyFlow, h.spec.Name, logKeyFlowVersion, h.version.ID)
		}
		created, err := s.schedule(ctx, log, sc, h, now)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			err = fmt.Errorf("schedule %s of flow %s: %w", sc.ID, sc.FlowID, err)
			log.ErrorContext(ctx, "scheduling runs failed", "err", err)
			errs = append(errs, err)
			continue
		}
		if created > 0 {
			log.InfoContext(ctx, "scheduled runs", "runs", created)
		}
	}
	return errors.Join(errs...)
}

// head is the newest version of a flow, as a pass found it.
type head struct {
	version *store.FlowVersion // nil: nothing to schedule (see skip, err)
	spec    *spec.Spec
	skip    string // why there is nothing to schedule, when that is no failure
	err     error
}

// head returns the newest version of a flow and its decoded spec.
func (s *Scheduler) head(ctx context.Context, flowID string) *head {
	versions, err := s.store.ListFlowVersions(ctx, flowID)
	switch {
	case errors.Is(err, reeve.ErrNotFound):
		return &head{skip: "the flow is gone"}
	case err != nil:
		return &head{err: fmt.Errorf("list flow versions: %w", err)}
	case len(versions) == 0:
		return &head{skip: "the flow has no versions"}
	case versions[0].Archived:
		return &head{skip: fmt.Sprintf("the flow's newest version %d is archived", versions[0].Version)}
	}
	v := &versions[0]
	sp, err := spec.Decode(v.Spec)
	if err != nil {
		return &head{err: fmt.Errorf("flow version %d (%s): its spec does not decode: %w", v.Version, v.ID, err)}
	}
	return &head{version: v, spec: sp}
}

// schedule creates the runs of sc's next fire times after now that do not
// exist yet, and returns how many it created.
func (s *Scheduler) schedule(ctx context.Context, log *slog.Logger, sc store.Schedule, h *head, now time.Time) (int, error) {
	if h.err != nil {
		return 0, h.err
	}
	if h.version == nil {
		log.DebugContext(ctx, "schedule skipped", "reason", h.skip)
		return 0, nil
	}
	v := h.version
	times, err := Next(sc, now, s.runs)
	if err != nil {
		return 0, err
	}
	values, err := h.spec.ResolveParams(sc.Params)
	if err != nil {
		return 0, fmt.Errorf("the schedule's parameters do not suit flow version %d: %w", v.Version, err)
	}
	params, err := json.Marshal(values)
	if err != nil {
		return 0, fmt.Errorf("encode parameters: %w", err)
	}
	created := 0
	for _, t := range times {
		_, ok, err := s.store.CreateFlowRun(ctx, store.FlowRun{
			FlowVersionID:  v.ID,
			Name:           runName(h.spec.Name, t),
			Params:         params,
			IdempotencyKey: IdempotencyKey(sc.ID, v.ID, t),
			Labels:         v.Labels,
			ScheduleID:     sc.ID,
			ScheduledAt:    t,
		})
		if errors.Is(err, reeve.ErrConflict) || errors.Is(err, reeve.ErrNotFound) {
			// Paused, deleted, or its version replaced since the pass
			// listed it: what the store deleted must stay deleted, and the
			// next pass sees the change.
			log.DebugContext(ctx, "schedule changed during the pass", "err", err)
			return created, nil
		}
		if err != nil {
			return created, fmt.Errorf("create the run at %s: %w", t.Format(time.RFC3339), err)
		}
		if ok {
			created++
		}
	}
	return created, nil
}

// IdempotencyKey returns the idempotency key of the run that schedule
// scheduleID makes at t for flow version versionID.
func IdempotencyKey(scheduleID, versionID string, t time.Time) string {
	return fmt.Sprintf("schedule/%s/%s/%s", scheduleID, versionID, t.UTC().Format(time.RFC3339Nano))
}

// runName names the run of flow at t (in the schedule's time zone):
// "etl-20250102-0230", with seconds when t has some.
func runName(flow string, t time.Time) string {
	layout := "20060102-1504"
	if t.Second() != 0 || t.Nanosecond() != 0 {
		layout = "20060102-150405"
	}
	return flow + "-" + t.Format(layout)
}
