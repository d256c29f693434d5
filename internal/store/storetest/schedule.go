package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// requireSchedule fails unless got is want as stored.
func requireSchedule(tb testing.TB, got, want store.Schedule) {
	tb.Helper()
	if got.ID != want.ID || got.ProjectID != want.ProjectID || got.FlowID != want.FlowID || got.Cron != want.Cron ||
		got.Timezone != want.Timezone || got.Interval != want.Interval || got.Paused != want.Paused ||
		got.FromSpec != want.FromSpec {
		tb.Errorf("schedule = %+v, want %+v", got, want)
	}
	requireJSON(tb, "schedule params", got.Params, want.Params)
	requireTime(tb, "schedule anchor", got.Anchor, want.Anchor)
	requireTime(tb, "schedule created_at", got.CreatedAt, want.CreatedAt)
	requireTime(tb, "schedule updated_at", got.UpdatedAt, want.UpdatedAt)
}

func testSchedules(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Create", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		p := createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))
		cases := []struct {
			name string
			in   store.Schedule
		}{
			{"Cron", store.Schedule{Cron: "30 2 * * *"}},
			{"CronTimezoneParams", store.Schedule{
				Cron: "@daily", Timezone: "Europe/Paris",
				Params: json.RawMessage(`{"limit": 10, "tables": ["a", "b"]}`),
			}},
			{"CronWithSeconds", store.Schedule{Cron: "*/10 * * * * *"}},
			{"Interval", store.Schedule{Interval: 90 * time.Minute, Anchor: at(0)}},
			{"IntervalPausedFromSpec", store.Schedule{Interval: time.Second, Anchor: at(time.Hour), Paused: true, FromSpec: true}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				in := c.in
				in.FlowID = v.FlowID
				in.ProjectID = "ignored"
				sc, err := s.CreateSchedule(t.Context(), in)
				requireNoError(t, err, "CreateSchedule")
				want := in
				want.ID, want.ProjectID, want.Anchor = sc.ID, p.ID, micro(in.Anchor)
				want.CreatedAt, want.UpdatedAt = sc.CreatedAt, sc.CreatedAt
				if sc.ID == "" {
					t.Errorf("CreateSchedule gave no ID")
				}
				requireRecent(t, "created_at", sc.CreatedAt)
				requireSchedule(t, sc, want)
				got, err := s.GetSchedule(t.Context(), sc.ID)
				requireNoError(t, err, "GetSchedule")
				requireSchedule(t, got, want)
			})
		}
	})

	t.Run("IntervalZeroAnchorIsNow", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))
		sc := createSchedule(t, s, store.Schedule{FlowID: v.FlowID, Interval: time.Hour + 1500*time.Nanosecond})
		requireRecent(t, "anchor", sc.Anchor)
		if sc.Interval != time.Hour+time.Microsecond {
			t.Errorf("interval = %v, want %v: kept to the microsecond", sc.Interval, time.Hour+time.Microsecond)
		}
		got, err := s.GetSchedule(t.Context(), sc.ID)
		requireNoError(t, err, "GetSchedule")
		requireSchedule(t, got, sc)
		cron := createSchedule(t, s, store.Schedule{FlowID: v.FlowID, Cron: "@hourly"})
		if !cron.Anchor.IsZero() {
			t.Errorf("a cron schedule got anchor %v, want none", cron.Anchor)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))
		cases := []struct {
			name string
			in   store.Schedule
		}{
			{"Neither", store.Schedule{}},
			{"Both", store.Schedule{Cron: "@daily", Interval: time.Hour}},
			{"BadCron", store.Schedule{Cron: "every day"}},
			{"CronOutOfRange", store.Schedule{Cron: "61 * * * *"}},
			{"NegativeInterval", store.Schedule{Interval: -time.Hour}},
			{"IntervalBelowMicrosecond", store.Schedule{Interval: 999 * time.Nanosecond}},
			{"UnknownTimezone", store.Schedule{Cron: "@daily", Timezone: "Mars/Olympus_Mons"}},
			{"LocalTimezone", store.Schedule{Cron: "@daily", Timezone: "Local"}},
			{"ParamsArray", store.Schedule{Cron: "@daily", Params: json.RawMessage(`[1, 2]`)}},
			{"ParamsNotJSON", store.Schedule{Cron: "@daily", Params: json.RawMessage(`{"a": `)}},
		}
		for _, c := range cases {
			in := c.in
			in.FlowID = v.FlowID
			_, err := s.CreateSchedule(t.Context(), in)
			if err == nil {
				t.Errorf("%s: CreateSchedule = nil error, want ErrInvalid", c.name)
				continue
			}
			requireErrorIs(t, err, reeve.ErrInvalid)
		}
		_, err := s.CreateSchedule(t.Context(), store.Schedule{Cron: "@daily"})
		requireErrorIs(t, err, reeve.ErrInvalid)
		list, err := s.ListSchedules(t.Context(), "")
		requireNoError(t, err, "ListSchedules")
		if len(list) != 0 {
			t.Errorf("invalid schedules were created: %+v", list)
		}
	})

	t.Run("UnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		const flow, id = "0190c7a4-0000-7000-8000-000000000030", "0190c7a4-0000-7000-8000-000000000031"
		_, err := s.CreateSchedule(ctx, store.Schedule{FlowID: flow, Cron: "@daily"})
		requireErrorIs(t, err, reeve.ErrNotFound, flow)
		_, err = s.ListSchedules(ctx, flow)
		requireErrorIs(t, err, reeve.ErrNotFound, flow)
		_, err = s.GetSchedule(ctx, id)
		requireErrorIs(t, err, reeve.ErrNotFound, id)
		_, _, err = s.SetSchedulePaused(ctx, id, true)
		requireErrorIs(t, err, reeve.ErrNotFound, id)
		_, _, err = s.SetSchedulePaused(ctx, id, false)
		requireErrorIs(t, err, reeve.ErrNotFound, id)
		err = s.DeleteSchedule(ctx, id)
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})

	t.Run("ListOldestFirst", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		a := register(t, s, registration("etl", "a", "h"))
		b := register(t, s, registration("etl", "b", "h"))
		c := register(t, s, registration("etl", "c", "h"))
		all, err := s.ListSchedules(ctx, "")
		requireNoError(t, err, "ListSchedules on an empty store")
		if len(all) != 0 {
			t.Fatalf("ListSchedules on an empty store = %+v", all)
		}
		var want []store.Schedule
		for _, flow := range []string{b.FlowID, a.FlowID, b.FlowID} {
			want = append(want, createSchedule(t, s, store.Schedule{FlowID: flow, Cron: "@hourly"}))
		}
		all, err = s.ListSchedules(ctx, "")
		requireNoError(t, err, "ListSchedules")
		requireSchedules(t, "every schedule", all, want)
		ofB, err := s.ListSchedules(ctx, b.FlowID)
		requireNoError(t, err, "ListSchedules(b)")
		requireSchedules(t, "schedules of b", ofB, []store.Schedule{want[0], want[2]})
		ofC, err := s.ListSchedules(ctx, c.FlowID)
		requireNoError(t, err, "ListSchedules(c)")
		if len(ofC) != 0 {
			t.Errorf("schedules of a flow without any = %+v", ofC)
		}
	})

	// runs makes, for pausing and deleting, runs of schedule sc and others.
	type runs struct {
		scheduled, running []store.FlowRun // of the schedule
		kept               []store.FlowRun // of another schedule, or by hand
	}
	mkRuns := func(t *testing.T, s store.Store, v store.FlowVersion, sc, other store.Schedule) runs {
		t.Helper()
		var r runs
		for i := range 2 {
			r.scheduled = append(r.scheduled, createRun(t, s, store.FlowRun{
				FlowVersionID: v.ID, ScheduleID: sc.ID, ScheduledAt: at(time.Duration(i) * time.Hour),
			}))
		}
		run := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, ScheduleID: sc.ID, ScheduledAt: at(-time.Hour)})
		run, err := s.SetFlowRunState(t.Context(), run.ID, 1, state.State{Kind: state.Running})
		requireNoError(t, err, "SetFlowRunState")
		r.running = append(r.running, run)
		r.kept = append(r.kept,
			createRun(t, s, store.FlowRun{FlowVersionID: v.ID, ScheduleID: other.ID}),
			createRun(t, s, store.FlowRun{FlowVersionID: v.ID}),
		)
		// A token of a run goes with the run.
		_, err = s.CreateToken(t.Context(), store.Token{Name: "run", Role: store.RoleRun, FlowRunID: r.scheduled[0].ID,
			Hash: hash(r.scheduled[0].ID)})
		requireNoError(t, err, "CreateToken")
		return r
	}
	requireGone := func(t *testing.T, s store.Store, r runs) {
		t.Helper()
		for _, run := range r.scheduled {
			if runExists(t, s, run.ID) {
				t.Errorf("Scheduled run %s of the schedule is still there", run.ID)
			}
			_, err := s.History(t.Context(), run.ID, "")
			requireErrorIs(t, err, reeve.ErrNotFound, run.ID)
		}
		_, err := s.TokenByHash(t.Context(), hash(r.scheduled[0].ID))
		requireErrorIs(t, err, reeve.ErrNotFound)
		for _, run := range append(r.running, r.kept...) {
			requireRun(t, getRun(t, s, run.ID), run)
		}
	}

	t.Run("Pause", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))
		sc := createSchedule(t, s, store.Schedule{FlowID: v.FlowID, Cron: "@hourly"})
		other := createSchedule(t, s, store.Schedule{FlowID: v.FlowID, Cron: "@daily"})
		r := mkRuns(t, s, v, sc, other)

		boundary()
		paused, n, err := s.SetSchedulePaused(ctx, sc.ID, true)
		requireNoError(t, err, "SetSchedulePaused(true)")
		if n != len(r.scheduled) {
			t.Errorf("pausing deleted %d runs, want the %d Scheduled runs of the schedule", n, len(r.scheduled))
		}
		if !paused.Paused || !paused.UpdatedAt.After(sc.UpdatedAt) {
			t.Errorf("paused schedule = %+v, want paused, updated after %v", paused, sc.UpdatedAt)
		}
		requireSchedule(t, getSchedule(t, s, sc.ID), paused)
		requireGone(t, s, r)

		// Pausing again deletes nothing more and changes nothing.
		again, n, err := s.SetSchedulePaused(ctx, sc.ID, true)
		requireNoError(t, err, "SetSchedulePaused(true) again")
		if n != 0 {
			t.Errorf("pausing a paused schedule deleted %d runs, want 0", n)
		}
		requireSchedule(t, again, paused)

		boundary()
		resumed, n, err := s.SetSchedulePaused(ctx, sc.ID, false)
		requireNoError(t, err, "SetSchedulePaused(false)")
		if n != 0 || resumed.Paused || !resumed.UpdatedAt.After(paused.UpdatedAt) {
			t.Errorf("resume = %+v, %d runs deleted; want not paused, updated, none deleted", resumed, n)
		}
		requireSchedule(t, getSchedule(t, s, sc.ID), resumed)
		requireSchedule(t, getSchedule(t, s, other.ID), other)
		for _, run := range append(r.running, r.kept...) {
			requireRun(t, getRun(t, s, run.ID), run)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))
		sc := createSchedule(t, s, store.Schedule{FlowID: v.FlowID, Cron: "@hourly"})
		other := createSchedule(t, s, store.Schedule{FlowID: v.FlowID, Interval: time.Hour})
		r := mkRuns(t, s, v, sc, other)

		requireNoError(t, s.DeleteSchedule(ctx, sc.ID), "DeleteSchedule")
		_, err := s.GetSchedule(ctx, sc.ID)
		requireErrorIs(t, err, reeve.ErrNotFound, sc.ID)
		requireGone(t, s, r)
		// The runs it made that got further keep naming it.
		if got := getRun(t, s, r.running[0].ID); got.ScheduleID != sc.ID {
			t.Errorf("a run of a deleted schedule names schedule %q, want %q", got.ScheduleID, sc.ID)
		}
		err = s.DeleteSchedule(ctx, sc.ID)
		requireErrorIs(t, err, reeve.ErrNotFound, sc.ID)
		list, err := s.ListSchedules(ctx, v.FlowID)
		requireNoError(t, err, "ListSchedules")
		requireSchedules(t, "after the delete", list, []store.Schedule{other})
	})

	t.Run("ScheduledRuns", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))
		w := register(t, s, registration("etl", "weekly", "h"))
		sc := createSchedule(t, s, store.Schedule{FlowID: v.FlowID, Cron: "@hourly"})

		run := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, ScheduleID: sc.ID, IdempotencyKey: sc.ID + "/1/2026-03-14T15:00"})
		if run.ScheduleID != sc.ID || run.AgentID != "" {
			t.Errorf("CreateFlowRun = schedule %q agent %q, want schedule %q and no agent", run.ScheduleID, run.AgentID, sc.ID)
		}
		requireRun(t, getRun(t, s, run.ID), run)
		listed, _, err := s.ListFlowRuns(ctx, store.FlowRunFilter{FlowID: v.FlowID})
		requireNoError(t, err, "ListFlowRuns")
		if len(listed) != 1 {
			t.Fatalf("ListFlowRuns = %d runs, want 1", len(listed))
		}
		requireRun(t, listed[0], run)
		// AgentID is the claim's to set.
		byHand := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, AgentID: "agent-1"})
		if byHand.AgentID != "" || getRun(t, s, byHand.ID).AgentID != "" {
			t.Errorf("CreateFlowRun kept AgentID %q, want it ignored", byHand.AgentID)
		}

		const unknown = "0190c7a4-0000-7000-8000-000000000032"
		_, _, err = s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v.ID, ScheduleID: unknown})
		requireErrorIs(t, err, reeve.ErrNotFound, unknown)
		_, _, err = s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: w.ID, ScheduleID: sc.ID})
		requireErrorIs(t, err, reeve.ErrInvalid, sc.ID)

		// The run starts, so pausing keeps it.
		run, err = s.SetFlowRunState(ctx, run.ID, 1, state.State{Kind: state.Running})
		requireNoError(t, err, "SetFlowRunState")
		_, _, err = s.SetSchedulePaused(ctx, sc.ID, true)
		requireNoError(t, err, "SetSchedulePaused")
		_, _, err = s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v.ID, ScheduleID: sc.ID})
		requireErrorIs(t, err, reeve.ErrConflict, sc.ID)
		// An idempotent retry still finds the run made before.
		again, created, err := s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v.ID, ScheduleID: sc.ID, IdempotencyKey: run.IdempotencyKey})
		if err != nil || created || again.ID != run.ID {
			t.Errorf("CreateFlowRun with a used key for a paused schedule = %s, created %v, %v; want run %s", again.ID, created, err, run.ID)
		}
		_, _, err = s.SetSchedulePaused(ctx, sc.ID, false)
		requireNoError(t, err, "SetSchedulePaused(false)")

		v2 := register(t, s, registration("etl", "nightly", "h2"))
		_, _, err = s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v.ID, ScheduleID: sc.ID})
		requireErrorIs(t, err, reeve.ErrConflict, v.ID)
		createRun(t, s, store.FlowRun{FlowVersionID: v2.ID, ScheduleID: sc.ID})
		// By hand, an archived version still runs.
		createRun(t, s, store.FlowRun{FlowVersionID: v.ID})
	})

	t.Run("RegisterFlowDeletesScheduledRunsOfOldVersion", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		r1 := registration("etl", "nightly", "h1")
		v1 := register(t, s, r1)
		otherFlow := register(t, s, registration("etl", "weekly", "h1"))
		sc := createSchedule(t, s, store.Schedule{FlowID: v1.FlowID, Cron: "@hourly"})
		scOther := createSchedule(t, s, store.Schedule{FlowID: otherFlow.FlowID, Cron: "@hourly"})

		gone := []store.FlowRun{
			createRun(t, s, store.FlowRun{FlowVersionID: v1.ID, ScheduleID: sc.ID}),
			createRun(t, s, store.FlowRun{FlowVersionID: v1.ID, ScheduleID: sc.ID, ScheduledAt: at(time.Hour)}),
		}
		_, err := s.CreateToken(ctx, store.Token{Name: "run", Role: store.RoleRun, FlowRunID: gone[0].ID, Hash: hash("gone")})
		requireNoError(t, err, "CreateToken")
		writeTasks(t, s, gone[0].ID, store.TaskRunWrite{Key: "extract", Task: "extract", State: state.State{Kind: state.Pending}})
		requireNoError(t, s.AppendLogs(ctx, []store.LogLine{{FlowRunID: gone[0].ID, Level: "INFO", Message: "hi"}}), "AppendLogs")

		byHand := createRun(t, s, store.FlowRun{FlowVersionID: v1.ID})
		running := createRun(t, s, store.FlowRun{FlowVersionID: v1.ID, ScheduleID: sc.ID})
		running, err = s.SetFlowRunState(ctx, running.ID, 1, state.State{Kind: state.Running})
		requireNoError(t, err, "SetFlowRunState")
		cancelled := createRun(t, s, store.FlowRun{FlowVersionID: v1.ID, ScheduleID: sc.ID})
		cancelled, err = s.SetFlowRunState(ctx, cancelled.ID, 1, state.State{Kind: state.Cancelled})
		requireNoError(t, err, "SetFlowRunState")
		ofOtherFlow := createRun(t, s, store.FlowRun{FlowVersionID: otherFlow.ID, ScheduleID: scOther.ID})
		kept := []store.FlowRun{byHand, running, cancelled, ofOtherFlow}

		// An unchanged registration makes no version and deletes nothing.
		_, created, err := s.RegisterFlow(ctx, r1)
		requireNoError(t, err, "RegisterFlow unchanged")
		if created {
			t.Fatalf("an unchanged registration created a version")
		}
		for _, run := range append(gone, kept...) {
			requireRun(t, getRun(t, s, run.ID), run)
		}

		v2 := register(t, s, registration("etl", "nightly", "h2"))
		for _, run := range gone {
			if runExists(t, s, run.ID) {
				t.Errorf("Scheduled run %s that the schedule made of the archived version is still there", run.ID)
			}
			_, err := s.History(ctx, run.ID, "")
			requireErrorIs(t, err, reeve.ErrNotFound, run.ID)
		}
		_, err = s.TokenByHash(ctx, hash("gone"))
		requireErrorIs(t, err, reeve.ErrNotFound)
		for _, run := range kept {
			requireRun(t, getRun(t, s, run.ID), run)
		}

		// Runs of the new version, made after, stay when nothing changes.
		next := createRun(t, s, store.FlowRun{FlowVersionID: v2.ID, ScheduleID: sc.ID})
		register(t, s, registration("etl", "nightly", "h2"))
		requireRun(t, getRun(t, s, next.ID), next)
		// The next version deletes them in turn.
		register(t, s, registration("etl", "nightly", "h3"))
		if runExists(t, s, next.ID) {
			t.Errorf("Scheduled run %s of version 2 survived version 3", next.ID)
		}
	})
}

func getSchedule(tb testing.TB, s store.Store, id string) store.Schedule {
	tb.Helper()
	sc, err := s.GetSchedule(context.Background(), id)
	requireNoError(tb, err, "GetSchedule(%q)", id)
	return sc
}

// requireSchedules fails unless got are want, in order.
func requireSchedules(tb testing.TB, what string, got, want []store.Schedule) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d schedules %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range want {
		requireSchedule(tb, got[i], want[i])
	}
}
