package storetest

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

func testFlowRuns(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CreateDefaults", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		p := createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))

		run, created, err := s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v.ID})
		requireNoError(t, err, "CreateFlowRun")
		if !created {
			t.Errorf("created = false, want true")
		}
		if run.ID == "" || run.ProjectID != p.ID || run.FlowID != v.FlowID || run.FlowVersionID != v.ID {
			t.Errorf("CreateFlowRun = %+v, want an ID, project %s, flow %s, version %s", run, p.ID, v.FlowID, v.ID)
		}
		if run.State.Kind != state.Scheduled || run.Version != 1 {
			t.Errorf("new run: state %s version %d, want Scheduled version 1", run.State.Kind, run.Version)
		}
		requireRecent(t, "state time", run.State.Time)
		requireRecent(t, "scheduled_at", run.ScheduledAt)
		requireRecent(t, "created_at", run.CreatedAt)
		requireRecent(t, "updated_at", run.UpdatedAt)

		requireRun(t, getRun(t, s, run.ID), run)
		requireHistory(t, "history", history(t, s, run.ID, ""), []state.State{run.State})
	})

	t.Run("CreateKeepsFields", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))

		in := store.FlowRun{
			FlowVersionID: v.ID,
			Name:          "brave-otter",
			Params:        json.RawMessage(`{"day": "2026-03-14", "limit": 10, "tables": ["a", "b"]}`),
			Labels:        []string{"gpu"},
			ScheduledAt:   at(time.Hour),
			State:         state.State{Kind: state.Scheduled, Message: "by schedule", Time: at(0), StartAt: at(time.Hour)},
		}
		run, _, err := s.CreateFlowRun(ctx, in)
		requireNoError(t, err, "CreateFlowRun")
		if run.Name != in.Name || run.Version != 1 {
			t.Errorf("CreateFlowRun = %+v, want name %q version 1", run, in.Name)
		}
		requireJSON(t, "params", run.Params, in.Params)
		requireLabels(t, "labels", run.Labels, in.Labels)
		requireTime(t, "scheduled_at", run.ScheduledAt, micro(in.ScheduledAt))
		requireState(t, "state", run.State, in.State)

		got := getRun(t, s, run.ID)
		requireRun(t, got, run)
		requireState(t, "stored state", got.State, in.State)
		requireHistory(t, "history", history(t, s, run.ID, ""), []state.State{in.State})
	})

	t.Run("CreateInGivenState", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))
		st := state.State{Kind: state.Running, Message: "started by hand", Time: at(0)}
		run := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, State: st})
		if run.Version != 1 {
			t.Errorf("version = %d, want 1", run.Version)
		}
		requireState(t, "state", run.State, st)
		requireHistory(t, "history", history(t, s, run.ID, ""), []state.State{st})
	})

	t.Run("IdempotencyKeyReturnsExisting", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))

		first := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, IdempotencyKey: "2026-03-14", Name: "first"})
		again, created, err := s.CreateFlowRun(ctx, store.FlowRun{
			FlowVersionID: v.ID, IdempotencyKey: "2026-03-14", Name: "second", Params: json.RawMessage(`{"x": 1}`),
		})
		requireNoError(t, err, "CreateFlowRun again")
		if created {
			t.Errorf("second CreateFlowRun with the key: created = true, want false")
		}
		requireRun(t, again, first)

		runs, _, err := s.ListFlowRuns(ctx, store.FlowRunFilter{FlowID: v.FlowID})
		requireNoError(t, err, "ListFlowRuns")
		if len(runs) != 1 {
			t.Errorf("%d runs after two creates with one key, want 1", len(runs))
		}

		// A new version of the same flow shares the flow's keys.
		v2 := register(t, s, registration("etl", "nightly", "h2"))
		other, created, err := s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v2.ID, IdempotencyKey: "2026-03-14"})
		requireNoError(t, err, "CreateFlowRun of the next version")
		if created || other.ID != first.ID {
			t.Errorf("the key on the flow's next version: created %v, run %s; want the existing run %s", created, other.ID, first.ID)
		}
	})

	t.Run("IdempotencyKeyPerFlow", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createProject(t, s, "etl")
		a := register(t, s, registration("etl", "a", "h"))
		b := register(t, s, registration("etl", "b", "h"))
		ra := createRun(t, s, store.FlowRun{FlowVersionID: a.ID, IdempotencyKey: "k"})
		rb, created, err := s.CreateFlowRun(t.Context(), store.FlowRun{FlowVersionID: b.ID, IdempotencyKey: "k"})
		requireNoError(t, err, "CreateFlowRun of flow b")
		if !created || rb.ID == ra.ID || rb.FlowID != b.FlowID {
			t.Errorf("a key used by another flow: created %v, run %+v; want a new run of flow b", created, rb)
		}
	})

	t.Run("NoIdempotencyKeyCreatesEachTime", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))
		a := createRun(t, s, store.FlowRun{FlowVersionID: v.ID})
		b := createRun(t, s, store.FlowRun{FlowVersionID: v.ID})
		if a.ID == b.ID {
			t.Errorf("two creates without a key returned one run %s", a.ID)
		}
	})

	t.Run("ConcurrentIdempotencyKey", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))
		const n = 10
		var (
			wg      sync.WaitGroup
			ids     [n]string
			created [n]bool
			errs    [n]error
		)
		for i := range n {
			wg.Go(func() {
				r, c, err := s.CreateFlowRun(t.Context(), store.FlowRun{FlowVersionID: v.ID, IdempotencyKey: "once"})
				ids[i], created[i], errs[i] = r.ID, c, err
			})
		}
		wg.Wait()
		winners := 0
		for i := range n {
			requireNoError(t, errs[i], "concurrent CreateFlowRun %d", i)
			if created[i] {
				winners++
			}
			if ids[i] != ids[0] {
				t.Errorf("concurrent creates with one key returned runs %s and %s", ids[0], ids[i])
			}
		}
		if winners != 1 {
			t.Errorf("%d of %d concurrent creates with one key created a run, want 1", winners, n)
		}
	})

	t.Run("CreateUnknownVersionIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const id = "0190c7a4-0000-7000-8000-000000000002"
		_, _, err := s.CreateFlowRun(t.Context(), store.FlowRun{FlowVersionID: id})
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})

	t.Run("CreateParamsNotObjectIsInvalid", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		createProject(t, s, "etl")
		v := register(t, s, registration("etl", "nightly", "h"))
		_, _, err := s.CreateFlowRun(t.Context(), store.FlowRun{FlowVersionID: v.ID, Params: json.RawMessage(`[1, 2]`)})
		requireErrorIs(t, err, reeve.ErrInvalid)
	})

	t.Run("GetUnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const id = "0190c7a4-0000-7000-8000-000000000003"
		_, err := s.GetFlowRun(t.Context(), id)
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})

	t.Run("SetState", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		f := seed(t, s, "etl")
		scheduled := f.run.State

		running := state.State{Kind: state.Running, Message: "started on agent-1", Time: at(time.Minute)}
		run, err := s.SetFlowRunState(ctx, f.run.ID, 1, running)
		requireNoError(t, err, "SetFlowRunState(expect 1)")
		if run.Version != 2 || run.ID != f.run.ID {
			t.Errorf("SetFlowRunState = run %s version %d, want run %s version 2", run.ID, run.Version, f.run.ID)
		}
		requireState(t, "returned state", run.State, running)
		if run.UpdatedAt.Before(run.CreatedAt) {
			t.Errorf("updated_at %v is before created_at %v", run.UpdatedAt, run.CreatedAt)
		}
		requireRun(t, getRun(t, s, f.run.ID), run)

		done := state.State{
			Kind: state.Success, Message: "all tasks succeeded", Time: at(2 * time.Minute),
			Result: &state.Result{Store: "file:///var/reeve/results", Key: "etl/run/flow.json", Serializer: "json"},
		}
		run, err = s.SetFlowRunState(ctx, f.run.ID, 2, done)
		requireNoError(t, err, "SetFlowRunState(expect 2)")
		if run.Version != 3 {
			t.Errorf("version = %d, want 3", run.Version)
		}
		requireState(t, "final state", getRun(t, s, f.run.ID).State, done)
		requireHistory(t, "history", history(t, s, f.run.ID, ""), []state.State{scheduled, running, done})
	})

	t.Run("SetStateStaleIsConflict", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		f := seed(t, s, "etl")
		running := state.State{Kind: state.Running, Time: at(0)}
		before, err := s.SetFlowRunState(ctx, f.run.ID, 1, running)
		requireNoError(t, err, "SetFlowRunState")

		for _, expect := range []int64{1, 3, 0} {
			_, err = s.SetFlowRunState(ctx, f.run.ID, expect, state.State{Kind: state.Cancelled, Time: at(time.Second)})
			requireErrorIs(t, err, reeve.ErrConflict, f.run.ID)
		}
		requireRun(t, getRun(t, s, f.run.ID), before)
		requireHistory(t, "history", history(t, s, f.run.ID, ""), []state.State{f.run.State, running})
	})

	t.Run("SetStateUnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const id = "0190c7a4-0000-7000-8000-000000000004"
		_, err := s.SetFlowRunState(t.Context(), id, 1, state.State{Kind: state.Running})
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})

	t.Run("SetStateInvalidKindIsInvalid", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		_, err := s.SetFlowRunState(t.Context(), f.run.ID, 1, state.State{Kind: state.Kind(200), Time: at(0)})
		requireErrorIs(t, err, reeve.ErrInvalid)
		requireRun(t, getRun(t, s, f.run.ID), f.run)
		requireHistory(t, "history", history(t, s, f.run.ID, ""), []state.State{f.run.State})
	})

	t.Run("SetStateConcurrentOneWins", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		const n = 10
		var (
			wg   sync.WaitGroup
			errs [n]error
		)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = s.SetFlowRunState(t.Context(), f.run.ID, 1,
					state.State{Kind: state.Submitted, Message: "claimed", Time: at(time.Duration(i) * time.Second)})
			})
		}
		wg.Wait()
		winners := 0
		for _, err := range errs {
			if err == nil {
				winners++
				continue
			}
			requireErrorIs(t, err, reeve.ErrConflict)
		}
		if winners != 1 {
			t.Errorf("%d of %d writers with one expected version won, want exactly 1", winners, n)
		}
		run := getRun(t, s, f.run.ID)
		if run.Version != 2 || run.State.Kind != state.Submitted {
			t.Errorf("after the race: version %d state %s, want version 2 Submitted", run.Version, run.State.Kind)
		}
		if h := history(t, s, f.run.ID, ""); len(h) != 2 {
			t.Errorf("after the race: %d states in the history, want 2", len(h))
		}
	})
}
