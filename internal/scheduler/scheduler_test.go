package scheduler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/spec"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
	"github.com/reevehq/reeve/internal/store/sqlite"
)

// TestMain fails the package's tests if a goroutine is left running: Run
// returns when its context ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is an injectable clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// openStore opens a real SQLite store in a temporary directory; path, if
// given, is a database file to open (again).
func openStore(t *testing.T, path ...string) *sqlite.Store {
	t.Helper()
	p := filepath.Join(t.TempDir(), "reeve.db")
	if len(path) > 0 {
		p = path[0]
	}
	st, err := sqlite.Open(t.Context(), p)
	if err != nil {
		t.Fatalf("open the SQLite store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close the store: %v", err)
		}
	})
	return st
}

// flowSpec returns a valid spec of flow name with three parameters: day
// (required), limit (default 10) and region (default region).
func flowSpec(name, region string) *spec.Spec {
	return &spec.Spec{
		SpecVersion: spec.Version,
		Name:        name,
		Labels:      []string{"linux"},
		Parameters: []spec.Parameter{
			{Name: "day", Type: "string", GoType: "string", Required: true},
			{Name: "limit", Type: "integer", GoType: "int", Default: json.RawMessage(`10`)},
			{Name: "region", Type: "string", GoType: "string", Default: json.RawMessage(fmt.Sprintf("%q", region))},
		},
		Tasks: []spec.Task{{
			ID:     "extract",
			Task:   "extract",
			Inputs: []spec.Input{{Kind: spec.InputParam, Param: "day"}, {Kind: spec.InputParam, Param: "limit"}, {Kind: spec.InputParam, Param: "region"}},
		}},
	}
}

// register registers sp in project (created if needed) and returns the
// new version.
func register(t *testing.T, st store.Store, project string, sp *spec.Spec) store.FlowVersion {
	t.Helper()
	ctx := t.Context()
	if _, err := st.GetProject(ctx, project); errors.Is(err, reeve.ErrNotFound) {
		if _, err := st.CreateProject(ctx, store.Project{Name: project}); err != nil {
			t.Fatalf("CreateProject: %v", err)
		}
	}
	doc, err := spec.Encode(sp)
	if err != nil {
		t.Fatalf("encode spec: %v", err)
	}
	v, _, err := st.RegisterFlow(ctx, store.Registration{
		Project:  project,
		Flow:     sp.Name,
		SpecHash: sp.Hash(),
		Spec:     doc,
		Storage:  store.Storage{Kind: "local", Path: "/usr/local/bin/" + sp.Name},
		Labels:   []string{"linux", "team-data"},
	})
	if err != nil {
		t.Fatalf("RegisterFlow(%s): %v", sp.Name, err)
	}
	return v
}

func createSchedule(t *testing.T, st store.Store, sc store.Schedule) store.Schedule {
	t.Helper()
	sc, err := st.CreateSchedule(t.Context(), sc)
	if err != nil {
		t.Fatalf("CreateSchedule: %v", err)
	}
	return sc
}

// runsOf returns the runs of a flow, by ScheduledAt.
func runsOf(t *testing.T, st store.Store, flowID string) []store.FlowRun {
	t.Helper()
	runs, next, err := st.ListFlowRuns(t.Context(), store.FlowRunFilter{FlowID: flowID, Limit: 1000})
	if err != nil || next != "" {
		t.Fatalf("ListFlowRuns = %d runs, next %q, %v", len(runs), next, err)
	}
	slices.SortFunc(runs, func(a, b store.FlowRun) int { return a.ScheduledAt.Compare(b.ScheduledAt) })
	return runs
}

func scheduledAts(runs []store.FlowRun) []time.Time {
	out := make([]time.Time, len(runs))
	for i, r := range runs {
		out[i] = r.ScheduledAt
	}
	return out
}

func newScheduler(t *testing.T, cfg scheduler.Config) *scheduler.Scheduler {
	t.Helper()
	s, err := scheduler.New(cfg)
	if err != nil {
		t.Fatalf("scheduler.New: %v", err)
	}
	return s
}

func tick(t *testing.T, s *scheduler.Scheduler) {
	t.Helper()
	if err := s.Tick(t.Context()); err != nil {
		t.Fatalf("Tick: %v", err)
	}
}

func jsonEqual(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("params %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(g, w)
}

func TestTickCreatesRuns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		schedule store.Schedule
		now      string
		runs     int
		want     []string // ScheduledAt
		names    []string // run names
	}{
		{
			name:     "hourly",
			schedule: store.Schedule{Cron: "@hourly"},
			now:      "2030-01-01T10:20:00Z",
			runs:     3,
			want:     []string{"2030-01-01T11:00:00Z", "2030-01-01T12:00:00Z", "2030-01-01T13:00:00Z"},
			names:    []string{"etl-20300101-1100", "etl-20300101-1200", "etl-20300101-1300"},
		},
		{
			name:     "daily in Paris over a clock change",
			schedule: store.Schedule{Cron: "30 2 * * *", Timezone: "Europe/Paris"},
			now:      "2030-03-30T12:00:00Z",
			runs:     2,
			want:     []string{"2030-03-31T03:00:00+02:00", "2030-04-01T02:30:00+02:00"},
			names:    []string{"etl-20300331-0300", "etl-20300401-0230"},
		},
		{
			name:     "interval from an anchor",
			schedule: store.Schedule{Interval: 45 * time.Minute, Anchor: ts(t, "2030-01-01T00:00:30Z")},
			now:      "2030-01-01T01:00:00Z",
			runs:     2,
			want:     []string{"2030-01-01T01:30:30Z", "2030-01-01T02:15:30Z"},
			names:    []string{"etl-20300101-013030", "etl-20300101-021530"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			v := register(t, st, "data", flowSpec("etl", "eu"))
			sc := tc.schedule
			sc.FlowID = v.FlowID
			sc.Params = json.RawMessage(`{"day": "monday", "limit": 5}`)
			sc = createSchedule(t, st, sc)
			s := newScheduler(t, scheduler.Config{Store: st, Now: newClock(ts(t, tc.now)).Now, Runs: tc.runs})

			tick(t, s)
			runs := runsOf(t, st, v.FlowID)
			if len(runs) != len(tc.want) {
				t.Fatalf("after a tick: %d runs at %v, want %d", len(runs), scheduledAts(runs), len(tc.want))
			}
			for i, r := range runs {
				if w := ts(t, tc.want[i]); !r.ScheduledAt.Equal(w) {
					t.Errorf("run %d scheduled at %s, want %s", i, r.ScheduledAt, w)
				}
				if r.Name != tc.names[i] {
					t.Errorf("run %d named %q, want %q", i, r.Name, tc.names[i])
				}
				if r.FlowVersionID != v.ID || r.ScheduleID != sc.ID || r.State.Kind != state.Scheduled {
					t.Errorf("run %d: version %s, schedule %s, state %s; want %s, %s, Scheduled", i, r.FlowVersionID, r.ScheduleID, r.State.Kind, v.ID, sc.ID)
				}
				if !jsonEqual(t, r.Params, `{"day": "monday", "limit": 5, "region": "eu"}`) {
					t.Errorf("run %d params %s, want the schedule's over the defaults", i, r.Params)
				}
				if !slices.Equal(r.Labels, v.Labels) {
					t.Errorf("run %d labels %v, want the version's %v", i, r.Labels, v.Labels)
				}
				if want := scheduler.IdempotencyKey(sc.ID, v.ID, r.ScheduledAt); r.IdempotencyKey != want {
					t.Errorf("run %d idempotency key %q, want %q", i, r.IdempotencyKey, want)
				}
			}

			tick(t, s)
			if again := runsOf(t, st, v.FlowID); len(again) != len(runs) {
				t.Errorf("a second tick made %d runs more, want none", len(again)-len(runs))
			}
		})
	}
}

func TestTickReplicasCreateEachRunOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "reeve.db")
	stores := []*sqlite.Store{openStore(t, path), openStore(t, path)} // two servers, one database
	v := register(t, stores[0], "data", flowSpec("etl", "eu"))
	createSchedule(t, stores[0], store.Schedule{FlowID: v.FlowID, Cron: "*/5 * * * *", Params: json.RawMessage(`{"day": "friday"}`)})
	createSchedule(t, stores[0], store.Schedule{FlowID: v.FlowID, Interval: 7 * time.Minute, Anchor: ts(t, "2030-01-01T00:00:00Z"), Params: json.RawMessage(`{"day": "friday"}`)})
	now := newClock(ts(t, "2030-01-01T10:00:00Z"))

	const runs, ticks = 10, 3
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(stores)*ticks)
	for range 2 { // two schedulers on each replica
		for _, st := range stores {
			s := newScheduler(t, scheduler.Config{Store: st, Now: now.Now, Runs: runs})
			wg.Go(func() {
				for range ticks {
					errs <- s.Tick(t.Context())
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Tick: %v", err)
		}
	}

	got := runsOf(t, stores[1], v.FlowID)
	if len(got) != 2*runs {
		t.Fatalf("%d runs, want %d: %d schedules × %d runs each, once", len(got), 2*runs, 2, runs)
	}
	seen := map[string]bool{}
	for _, r := range got {
		key := r.ScheduleID + " " + r.ScheduledAt.String()
		if seen[key] {
			t.Errorf("schedule %s has two runs at %s", r.ScheduleID, r.ScheduledAt)
		}
		seen[key] = true
	}
}

func TestTickKeepsRunsAhead(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	v := register(t, st, "data", flowSpec("etl", "eu"))
	sc := createSchedule(t, st, store.Schedule{FlowID: v.FlowID, Interval: time.Hour, Anchor: ts(t, "2030-01-01T00:00:00Z"), Params: json.RawMessage(`{"day": "sunday"}`)})
	now := newClock(ts(t, "2030-01-01T00:30:00Z"))
	s := newScheduler(t, scheduler.Config{Store: st, Now: now.Now, Runs: 3})

	for _, step := range []struct {
		now  string
		want []string // every run of the schedule, by time
	}{
		{"2030-01-01T00:30:00Z", []string{"01:00", "02:00", "03:00"}},
		{"2030-01-01T02:10:00Z", []string{"01:00", "02:00", "03:00", "04:00", "05:00"}},
		{"2030-01-01T02:50:00Z", []string{"01:00", "02:00", "03:00", "04:00", "05:00"}},
		{"2030-01-01T05:00:00Z", []string{"01:00", "02:00", "03:00", "04:00", "05:00", "06:00", "07:00", "08:00"}},
		{"2030-01-01T12:34:00Z", []string{"01:00", "02:00", "03:00", "04:00", "05:00", "06:00", "07:00", "08:00", "13:00", "14:00", "15:00"}}, // down for hours: no catching up
	} {
		now.Set(ts(t, step.now))
		before := runsOf(t, st, v.FlowID)
		tick(t, s)
		runs := runsOf(t, st, v.FlowID)
		var got []string
		for _, r := range runs {
			got = append(got, r.ScheduledAt.UTC().Format("15:04"))
			if r.ScheduleID != sc.ID {
				t.Errorf("run of schedule %q, want %q", r.ScheduleID, sc.ID)
			}
		}
		if !slices.Equal(got, step.want) {
			t.Errorf("at %s: runs at %v, want %v", step.now, got, step.want)
		}
		for _, r := range runs[len(before):] {
			if !r.ScheduledAt.After(now.Now()) {
				t.Errorf("at %s: a tick made a run in the past, at %s", step.now, r.ScheduledAt)
			}
		}
	}
}

func TestTickPausedSchedule(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	v := register(t, st, "data", flowSpec("etl", "eu"))
	sc := createSchedule(t, st, store.Schedule{FlowID: v.FlowID, Cron: "@daily", Params: json.RawMessage(`{"day": "monday"}`), Paused: true})
	s := newScheduler(t, scheduler.Config{Store: st, Now: newClock(ts(t, "2030-01-01T10:00:00Z")).Now, Runs: 4})

	tick(t, s)
	if runs := runsOf(t, st, v.FlowID); len(runs) != 0 {
		t.Fatalf("a paused schedule got %d runs, want none", len(runs))
	}

	if _, _, err := st.SetSchedulePaused(t.Context(), sc.ID, false); err != nil {
		t.Fatal(err)
	}
	tick(t, s)
	if runs := runsOf(t, st, v.FlowID); len(runs) != 4 {
		t.Fatalf("a resumed schedule got %d runs, want 4", len(runs))
	}

	if _, deleted, err := st.SetSchedulePaused(t.Context(), sc.ID, true); err != nil || deleted != 4 {
		t.Fatalf("pause: deleted %d runs, %v; want 4", deleted, err)
	}
	tick(t, s)
	if runs := runsOf(t, st, v.FlowID); len(runs) != 0 {
		t.Fatalf("a schedule paused again got %d runs, want none", len(runs))
	}
}

func TestTickNewFlowVersion(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	v1 := register(t, st, "data", flowSpec("etl", "eu"))
	createSchedule(t, st, store.Schedule{FlowID: v1.FlowID, Cron: "0 */6 * * *", Params: json.RawMessage(`{"day": "monday"}`)})
	s := newScheduler(t, scheduler.Config{Store: st, Now: newClock(ts(t, "2030-01-01T01:00:00Z")).Now, Runs: 3})

	tick(t, s)
	first := runsOf(t, st, v1.FlowID)
	if len(first) != 3 {
		t.Fatalf("%d runs of version 1, want 3", len(first))
	}

	v2 := register(t, st, "data", flowSpec("etl", "us")) // a new default region
	if v2.ID == v1.ID || v2.Version != 2 {
		t.Fatalf("registering a changed spec gave version %d (%s), want 2", v2.Version, v2.ID)
	}
	tick(t, s)
	runs := runsOf(t, st, v1.FlowID)
	if !slices.EqualFunc(scheduledAts(runs), scheduledAts(first), time.Time.Equal) {
		t.Fatalf("after a new version: runs at %v, want the same times %v", scheduledAts(runs), scheduledAts(first))
	}
	for i, r := range runs {
		if r.FlowVersionID != v2.ID {
			t.Errorf("run %d is of version %s, want the new version %s", i, r.FlowVersionID, v2.ID)
		}
		if !jsonEqual(t, r.Params, `{"day": "monday", "limit": 10, "region": "us"}`) {
			t.Errorf("run %d params %s, want the new version's defaults", i, r.Params)
		}
	}
}

func TestTickFailingScheduleDoesNotStopOthers(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	bad := register(t, st, "data", flowSpec("bad", "eu"))
	good := register(t, st, "data", flowSpec("good", "eu"))
	badSc := createSchedule(t, st, store.Schedule{FlowID: bad.FlowID, Cron: "@hourly", Params: json.RawMessage(`{"day": "monday", "colour": "red"}`)})
	missing := createSchedule(t, st, store.Schedule{FlowID: bad.FlowID, Cron: "@hourly"}) // no day
	createSchedule(t, st, store.Schedule{FlowID: good.FlowID, Cron: "@hourly", Params: json.RawMessage(`{"day": "monday"}`)})

	var logs bytes.Buffer
	s := newScheduler(t, scheduler.Config{
		Store:  st,
		Now:    newClock(ts(t, "2030-01-01T10:00:00Z")).Now,
		Runs:   2,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	err := s.Tick(t.Context())
	if err == nil {
		t.Fatal("Tick: no error, want the bad schedules'")
	}
	for _, want := range []string{badSc.ID, `no parameter "colour"`, missing.ID, `parameter "day" (string) is required`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Tick error %q does not say %q", err, want)
		}
	}
	if runs := runsOf(t, st, good.FlowID); len(runs) != 2 {
		t.Errorf("the good schedule got %d runs, want 2", len(runs))
	}
	if runs := runsOf(t, st, bad.FlowID); len(runs) != 0 {
		t.Errorf("the bad schedules got %d runs, want none", len(runs))
	}

	var failures int
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["level"] != "ERROR" {
			continue
		}
		failures++
		if rec["schedule_id"] != badSc.ID && rec["schedule_id"] != missing.ID || rec["flow_id"] != bad.FlowID || rec["flow"] != "bad" {
			t.Errorf("failure logged without the bad schedule's and flow's IDs: %s", line)
		}
	}
	if failures != 2 {
		t.Errorf("%d failures logged, want 2:\n%s", failures, logs.String())
	}
}

func TestRunAndKick(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	v := register(t, st, "data", flowSpec("etl", "eu"))
	createSchedule(t, st, store.Schedule{FlowID: v.FlowID, Cron: "@hourly", Params: json.RawMessage(`{"day": "monday"}`)})
	s := newScheduler(t, scheduler.Config{
		Store:    st,
		Now:      newClock(ts(t, "2030-01-01T10:00:00Z")).Now,
		Runs:     2,
		Interval: time.Hour, // passes come from the start and from Kick only
	})

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	waitRuns(t, st, v.FlowID, 2, "the first pass, at start")

	createSchedule(t, st, store.Schedule{FlowID: v.FlowID, Cron: "30 * * * *", Params: json.RawMessage(`{"day": "tuesday"}`)})
	s.Kick()
	s.Kick() // coalesces
	waitRuns(t, st, v.FlowID, 4, "a pass after Kick")

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context ending")
	}
}

// waitRuns polls until a flow has want runs, failing after a deadline.
func waitRuns(t *testing.T, st store.Store, flowID string, want int, why string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runs := runsOf(t, st, flowID)
		if len(runs) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d runs after 10s, want %d", why, len(runs), want)
		}
		time.Sleep(5 * time.Millisecond) // polling, with a deadline
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  scheduler.Config
		want string
	}{
		{"no store", scheduler.Config{}, "Store is nil"},
		{"negative runs", scheduler.Config{Store: nopStore{}, Runs: -1}, "Runs is -1"},
		{"negative interval", scheduler.Config{Store: nopStore{}, Interval: -time.Second}, "Interval is -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := scheduler.New(tc.cfg)
			if err == nil || !errors.Is(err, reeve.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an ErrInvalid saying %q", err, tc.want)
			}
		})
	}
	if _, err := scheduler.New(scheduler.Config{Store: nopStore{}}); err != nil {
		t.Fatalf("New with defaults: %v", err)
	}
}

// nopStore is a Store that is never called: New only checks it is there.
type nopStore struct{ scheduler.Store }
