package server_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/state"
)

// TestSchedules drives schedules through the API with the real scheduler
// (ticked by hand) on the same store.
func TestSchedules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sch, err := scheduler.New(scheduler.Config{Store: e.store, Runs: 3})
	if err != nil {
		t.Fatal(err)
	}
	dev := e.token("developer")

	// A spec's schedule becomes the flow's schedule at registration.
	reg := e.register(dev, api.RegisterFlow{Spec: specJSON("nightly", `"schedule":{"cron":"0 6 * * *","timezone":"Europe/Paris"}`)})
	var detail api.FlowDetail
	e.ok(200, "GET", "/api/v1/flows/"+reg.Flow.ID, dev, nil, &detail)
	if len(detail.Schedules) != 1 || !detail.Schedules[0].FromSpec || detail.Schedules[0].Timezone != "Europe/Paris" || len(detail.Schedules[0].NextRuns) != 5 {
		t.Fatalf("schedules = %+v, want the spec's, with 5 next runs", detail.Schedules)
	}
	if h := detail.Schedules[0].NextRuns[0].In(mustLoc(t, "Europe/Paris")).Hour(); h != 6 {
		t.Errorf("next run at %v, want 06:00 in Paris", detail.Schedules[0].NextRuns[0])
	}

	// An interval schedule with its own parameter values.
	withP := e.register(dev, api.RegisterFlow{Spec: specJSON("hourly", `"parameters":[{"name":"n","type":"integer","go_type":"int","default":1}]`)})
	e.fails(400, "POST", "/api/v1/schedules", dev, api.CreateSchedule{FlowID: withP.Flow.ID, Interval: api.Duration(time.Hour), Params: json.RawMessage(`{"n":"x"}`)}, `parameter "n" must be of type integer`)
	e.fails(400, "POST", "/api/v1/schedules", dev, api.CreateSchedule{FlowID: withP.Flow.ID}, "exactly one of cron")
	e.fails(400, "POST", "/api/v1/schedules", dev, api.CreateSchedule{FlowID: withP.Flow.ID, Cron: "every day"})
	e.fails(400, "POST", "/api/v1/schedules", dev, api.CreateSchedule{FlowID: withP.Flow.ID, Cron: "0 0 30 2 *"}, "never fires")
	e.fails(400, "POST", "/api/v1/schedules", dev, api.CreateSchedule{FlowID: withP.Flow.ID, Cron: "0 6 * * *", Timezone: "Mars/Olympus"})
	var sc api.Schedule
	e.ok(201, "POST", "/api/v1/schedules", dev, api.CreateSchedule{FlowID: withP.Flow.ID, Interval: api.Duration(time.Hour), Params: json.RawMessage(`{"n":7}`)}, &sc)

	if err := sch.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := sch.Tick(t.Context()); err != nil { // idempotent
		t.Fatal(err)
	}
	var runs api.FlowRuns
	e.ok(200, "GET", "/api/v1/flow_runs?flow_id="+withP.Flow.ID, dev, nil, &runs)
	if len(runs.FlowRuns) != 3 {
		t.Fatalf("%d runs of the interval schedule, want 3", len(runs.FlowRuns))
	}
	for _, r := range runs.FlowRuns {
		if r.ScheduleID != sc.ID || r.State.Kind != state.Scheduled || !r.ScheduledAt.After(time.Now()) || string(r.Params) != `{"n":7}` {
			t.Errorf("scheduled run = %+v", r)
		}
	}

	// Pausing deletes the schedule's runs that have not started.
	var paused api.Schedule
	e.ok(200, "POST", "/api/v1/schedules/"+sc.ID+"/pause", dev, nil, &paused)
	if !paused.Paused || len(paused.NextRuns) != 0 {
		t.Errorf("paused = %+v", paused)
	}
	e.ok(200, "GET", "/api/v1/flow_runs?flow_id="+withP.Flow.ID, dev, nil, &runs)
	if len(runs.FlowRuns) != 0 {
		t.Errorf("%d runs after pausing, want 0", len(runs.FlowRuns))
	}
	if err := sch.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.ok(200, "GET", "/api/v1/flow_runs?flow_id="+withP.Flow.ID, dev, nil, &runs)
	if len(runs.FlowRuns) != 0 {
		t.Errorf("a paused schedule made %d runs", len(runs.FlowRuns))
	}
	e.ok(200, "POST", "/api/v1/schedules/"+sc.ID+"/resume", dev, nil, nil)
	if err := sch.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.ok(200, "GET", "/api/v1/flow_runs?flow_id="+withP.Flow.ID, dev, nil, &runs)
	if len(runs.FlowRuns) != 3 {
		t.Errorf("%d runs after resuming, want 3", len(runs.FlowRuns))
	}

	// A new version's schedule replaces the old one's future runs.
	e.register(dev, api.RegisterFlow{Spec: specJSON("hourly", `"description":"v2","parameters":[{"name":"n","type":"integer","go_type":"int","default":1}]`)})
	if err := sch.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.ok(200, "GET", "/api/v1/flow_runs?flow_id="+withP.Flow.ID, dev, nil, &runs)
	if len(runs.FlowRuns) != 3 {
		t.Fatalf("%d runs after a new version, want 3", len(runs.FlowRuns))
	}
	for _, r := range runs.FlowRuns {
		if r.FlowVersionID == withP.Version.ID {
			t.Errorf("run %s is still of the archived version", r.ID)
		}
	}

	e.ok(204, "DELETE", "/api/v1/schedules/"+sc.ID, dev, nil, nil)
	e.fails(404, "GET", "/api/v1/schedules/"+sc.ID, dev, nil)
	e.ok(200, "GET", "/api/v1/flow_runs?flow_id="+withP.Flow.ID, dev, nil, &runs)
	if len(runs.FlowRuns) != 0 {
		t.Errorf("%d runs after deleting the schedule, want 0", len(runs.FlowRuns))
	}
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
