package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// The helpers below create records with t.Fatal on error, and compare what
// a store returns with what went in. They take testing.TB so benchmarks
// share them.

func createProject(tb testing.TB, s store.Store, name string) store.Project {
	tb.Helper()
	p, err := s.CreateProject(context.Background(), store.Project{Name: name, Description: "project " + name})
	requireNoError(tb, err, "CreateProject(%q)", name)
	return p
}

// registration returns a registration of flow in project with a spec
// whose hash is hash.
func registration(project, flow, hash string) store.Registration {
	return store.Registration{
		Project:  project,
		Flow:     flow,
		SpecHash: hash,
		Spec:     json.RawMessage(fmt.Sprintf(`{"name": %q, "hash": %q, "tasks": [{"id": "extract"}, {"id": "load"}]}`, flow, hash)),
		Storage:  store.Storage{Kind: "docker", Image: "registry.example/etl@sha256:" + strings.Repeat("a", 64)},
		Labels:   []string{"gpu", "linux"},
		RunConfig: store.RunConfig{
			Executor: "parallel",
			Workers:  4,
			CPU:      "500m",
			Memory:   "512Mi",
			Env:      map[string]string{"B": "2", "A": "1"},
		},
	}
}

// kindRegistration returns a registration of flow in project, without
// labels, whose storage is of kind ("local" or "docker").
func kindRegistration(project, flow, kind string) store.Registration {
	r := registration(project, flow, kind)
	r.Labels = nil
	if kind == "local" {
		r.Storage = store.Storage{Kind: "local", Path: "/opt/" + flow}
	}
	return r
}

func register(tb testing.TB, s store.Store, r store.Registration) store.FlowVersion {
	tb.Helper()
	v, _, err := s.RegisterFlow(context.Background(), r)
	requireNoError(tb, err, "RegisterFlow(%s/%s)", r.Project, r.Flow)
	return v
}

func createRun(tb testing.TB, s store.Store, r store.FlowRun) store.FlowRun {
	tb.Helper()
	run, created, err := s.CreateFlowRun(context.Background(), r)
	requireNoError(tb, err, "CreateFlowRun(version %s)", r.FlowVersionID)
	if !created && r.IdempotencyKey == "" {
		tb.Fatalf("CreateFlowRun without an idempotency key: created = false, want true")
	}
	return run
}

// fixture is a project with one flow version and one flow run of it.
type fixture struct {
	project store.Project
	version store.FlowVersion
	run     store.FlowRun
}

// seed creates a fixture in s, named by prefix.
func seed(tb testing.TB, s store.Store, prefix string) fixture {
	tb.Helper()
	p := createProject(tb, s, prefix+"-project")
	v := register(tb, s, registration(p.Name, prefix+"-flow", "hash-1"))
	run := createRun(tb, s, store.FlowRun{FlowVersionID: v.ID})
	return fixture{project: p, version: v, run: run}
}

func writeTasks(tb testing.TB, s store.Store, flowRunID string, writes ...store.TaskRunWrite) []store.TaskRun {
	tb.Helper()
	trs, err := s.WriteTaskRunStates(context.Background(), flowRunID, 0, writes)
	requireNoError(tb, err, "WriteTaskRunStates(%s)", flowRunID)
	if len(trs) != len(writes) {
		tb.Fatalf("WriteTaskRunStates returned %d task runs for %d writes", len(trs), len(writes))
	}
	return trs
}

func history(tb testing.TB, s store.Store, flowRunID, taskRunID string) []state.State {
	tb.Helper()
	h, err := s.History(context.Background(), flowRunID, taskRunID)
	requireNoError(tb, err, "History(%q, %q)", flowRunID, taskRunID)
	return h
}

func getRun(tb testing.TB, s store.Store, id string) store.FlowRun {
	tb.Helper()
	r, err := s.GetFlowRun(context.Background(), id)
	requireNoError(tb, err, "GetFlowRun(%q)", id)
	return r
}

func listTasks(tb testing.TB, s store.Store, flowRunID string) []store.TaskRun {
	tb.Helper()
	trs, err := s.ListTaskRuns(context.Background(), flowRunID)
	requireNoError(tb, err, "ListTaskRuns(%q)", flowRunID)
	return trs
}

// at returns a time with nanoseconds and a zone other than UTC, to check
// that stores keep times to the microsecond whatever their zone.
func at(offset time.Duration) time.Time {
	base := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+2", 2*60*60))
	return base.Add(offset)
}

// micro returns t as a store keeps it: truncated to the microsecond.
func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// boundary returns a time that lies at least 2µs after the creation time
// of every record created before it was called, and at least 2µs before
// that of every record created after it returns, so that filters on it do
// not depend on whether a store truncates or rounds, or on whether a bound
// is inclusive.
func boundary() time.Time {
	b := time.Now().Truncate(time.Microsecond).Add(2 * time.Microsecond)
	for !time.Now().After(b.Add(3 * time.Microsecond)) {
		runtime.Gosched()
	}
	return b
}

// requireNoError fails tb now if err is not nil.
func requireNoError(tb testing.TB, err error, format string, args ...any) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: unexpected error: %v", fmt.Sprintf(format, args...), err)
	}
}

// requireErrorIs fails tb now unless errors.Is(err, target) and the message
// contains each of contains.
func requireErrorIs(tb testing.TB, err, target error, contains ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("error = nil, want %v", target)
	}
	if !errors.Is(err, target) {
		tb.Fatalf("error %q (%T) is not %v", err, err, target)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			tb.Errorf("error %q does not mention %q", err, c)
		}
	}
}

func requireTime(tb testing.TB, what string, got, want time.Time) {
	tb.Helper()
	if !got.Equal(want) {
		tb.Errorf("%s = %v, want %v", what, got, want)
	}
}

// requireRecent fails unless t is set and within a minute of now.
func requireRecent(tb testing.TB, what string, t time.Time) {
	tb.Helper()
	if t.IsZero() {
		tb.Errorf("%s is zero, want the time of the change", what)
		return
	}
	if d := time.Since(t); d < -time.Minute || d > time.Minute {
		tb.Errorf("%s = %v, not within a minute of now", what, t)
	}
}

// requireJSON fails unless got and want are the same JSON value (stores may
// reformat JSON, e.g. PostgreSQL's jsonb). An empty want matches an empty
// got or JSON null.
func requireJSON(tb testing.TB, what string, got, want []byte) {
	tb.Helper()
	if len(bytes.TrimSpace(want)) == 0 {
		if g := bytes.TrimSpace(got); len(g) != 0 && string(g) != "null" {
			tb.Errorf("%s = %s, want none", what, got)
		}
		return
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		tb.Errorf("%s = %q is not JSON: %v", what, got, err)
		return
	}
	if err := json.Unmarshal(want, &w); err != nil {
		tb.Fatalf("%s: bad JSON in the test: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("%s = %s, want %s", what, got, want)
	}
}

func requireLabels(tb testing.TB, what string, got, want []string) {
	tb.Helper()
	if !slices.Equal(got, want) {
		tb.Errorf("%s = %q, want %q", what, got, want)
	}
}

// requireState fails unless got is want as a store keeps it: every field,
// times to the microsecond.
func requireState(tb testing.TB, what string, got, want state.State) {
	tb.Helper()
	if got.Kind != want.Kind {
		tb.Errorf("%s: kind = %s, want %s", what, got.Kind, want.Kind)
	}
	if got.Message != want.Message {
		tb.Errorf("%s: message = %q, want %q", what, got.Message, want.Message)
	}
	if !want.Time.IsZero() {
		requireTime(tb, what+": time", got.Time, micro(want.Time))
	} else if got.Time.IsZero() {
		tb.Errorf("%s: time is zero, want the time of the change", what)
	}
	requireTime(tb, what+": start_at", got.StartAt, micro(want.StartAt))
	if got.Attempt != want.Attempt {
		tb.Errorf("%s: attempt = %d, want %d", what, got.Attempt, want.Attempt)
	}
	switch {
	case (got.Result == nil) != (want.Result == nil):
		tb.Errorf("%s: result = %+v, want %+v", what, got.Result, want.Result)
	case got.Result != nil:
		g, w := *got.Result, *want.Result
		g.Value, w.Value = nil, nil
		if g != w {
			tb.Errorf("%s: result = %+v, want %+v", what, g, w)
		}
	}
	switch {
	case (got.Counts == nil) != (want.Counts == nil):
		tb.Errorf("%s: counts = %v, want %v", what, got.Counts, want.Counts)
	case got.Counts != nil && *got.Counts != *want.Counts:
		tb.Errorf("%s: counts = %v, want %v", what, got.Counts, want.Counts)
	}
}

// requireHistory fails unless got holds the states of want, in order.
func requireHistory(tb testing.TB, what string, got, want []state.State) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d states %v, want %d %v", what, len(got), got, len(want), want)
	}
	for i := range want {
		requireState(tb, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

// requireRun fails unless got is the same flow run as want, as stored.
func requireRun(tb testing.TB, got, want store.FlowRun) {
	tb.Helper()
	if got.ID != want.ID || got.ProjectID != want.ProjectID || got.FlowID != want.FlowID ||
		got.FlowVersionID != want.FlowVersionID || got.Name != want.Name || got.IdempotencyKey != want.IdempotencyKey ||
		got.ScheduleID != want.ScheduleID || got.AgentID != want.AgentID || got.Version != want.Version ||
		got.Attempt != want.Attempt || got.Recoveries != want.Recoveries {
		tb.Errorf("flow run = %+v, want %+v", got, want)
	}
	requireTime(tb, "heartbeat_at", got.HeartbeatAt, want.HeartbeatAt)
	requireJSON(tb, "params", got.Params, want.Params)
	requireLabels(tb, "labels", got.Labels, want.Labels)
	requireTime(tb, "scheduled_at", got.ScheduledAt, want.ScheduledAt)
	requireTime(tb, "created_at", got.CreatedAt, want.CreatedAt)
	requireTime(tb, "updated_at", got.UpdatedAt, want.UpdatedAt)
	requireState(tb, "state", got.State, want.State)
}

// requireTaskRun fails unless got is the same task run as want, as stored.
func requireTaskRun(tb testing.TB, got, want store.TaskRun) {
	tb.Helper()
	if got.ID != want.ID || got.FlowRunID != want.FlowRunID || got.Key != want.Key || got.Task != want.Task ||
		got.MapIndex != want.MapIndex || got.Version != want.Version {
		tb.Errorf("task run = %+v, want %+v", got, want)
	}
	requireTime(tb, "task run created_at", got.CreatedAt, want.CreatedAt)
	requireTime(tb, "task run updated_at", got.UpdatedAt, want.UpdatedAt)
	requireState(tb, "task run "+want.Key+" state", got.State, want.State)
}

func runIDs(runs []store.FlowRun) []string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	return ids
}

// requireSameIDs fails unless got and want hold the same IDs, in any order.
func requireSameIDs(tb testing.TB, what string, got, want []string) {
	tb.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		tb.Errorf("%s: IDs %v, want %v", what, got, want)
	}
}

// requireNewestFirst fails unless runs are ordered by creation, newest
// first.
func requireNewestFirst(tb testing.TB, runs []store.FlowRun) {
	tb.Helper()
	for i := 1; i < len(runs); i++ {
		if runs[i].CreatedAt.After(runs[i-1].CreatedAt) {
			tb.Errorf("run %d (%s, created %v) is newer than run %d (%s, created %v): want newest first",
				i, runs[i].ID, runs[i].CreatedAt, i-1, runs[i-1].ID, runs[i-1].CreatedAt)
		}
	}
}

func createSchedule(tb testing.TB, s store.Store, sc store.Schedule) store.Schedule {
	tb.Helper()
	out, err := s.CreateSchedule(context.Background(), sc)
	requireNoError(tb, err, "CreateSchedule(flow %s)", sc.FlowID)
	return out
}

func registerAgent(tb testing.TB, s store.Store, name string, labels ...string) store.Agent {
	tb.Helper()
	a, err := s.RegisterAgent(context.Background(), name, labels, nil)
	requireNoError(tb, err, "RegisterAgent(%q)", name)
	return a
}

// registerKindAgent registers an agent without labels that runs the
// storage kinds kinds.
func registerKindAgent(tb testing.TB, s store.Store, name string, kinds ...string) store.Agent {
	tb.Helper()
	a, err := s.RegisterAgent(context.Background(), name, nil, kinds)
	requireNoError(tb, err, "RegisterAgent(%q, kinds %q)", name, kinds)
	return a
}

// runExists reports whether the flow run id exists, failing tb on any
// error but ErrNotFound.
func runExists(tb testing.TB, s store.Store, id string) bool {
	tb.Helper()
	_, err := s.GetFlowRun(context.Background(), id)
	if errors.Is(err, reeve.ErrNotFound) {
		return false
	}
	requireNoError(tb, err, "GetFlowRun(%q)", id)
	return true
}
