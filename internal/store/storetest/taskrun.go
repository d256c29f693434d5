package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

func pending(offset time.Duration) state.State {
	return state.State{Kind: state.Pending, Time: at(offset)}
}

func running(offset time.Duration, attempt int) state.State {
	return state.State{Kind: state.Running, Time: at(offset), Attempt: attempt}
}

func testTaskRuns(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Create", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		writes := []store.TaskRunWrite{
			{Key: "transform[1]", Task: "transform", MapIndex: 1, State: pending(0)},
			{Key: "extract", Task: "extract", MapIndex: -1, State: running(0, 1)},
			{Key: "transform[0]", Task: "transform", MapIndex: 0, State: pending(time.Second)},
		}
		trs := writeTasks(t, s, f.run.ID, writes...)
		ids := map[string]bool{}
		for i, tr := range trs {
			w := writes[i]
			if tr.ID == "" || ids[tr.ID] || tr.FlowRunID != f.run.ID || tr.Key != w.Key || tr.Task != w.Task ||
				tr.MapIndex != w.MapIndex || tr.Version != 1 {
				t.Errorf("task run %d = %+v, want a new ID, flow run %s, key %q, task %q, map index %d, version 1",
					i, tr, f.run.ID, w.Key, w.Task, w.MapIndex)
			}
			ids[tr.ID] = true
			requireState(t, w.Key, tr.State, w.State)
			requireRecent(t, w.Key+" created_at", tr.CreatedAt)
			requireTime(t, w.Key+" updated_at", tr.UpdatedAt, tr.CreatedAt)
		}

		listed := listTasks(t, s, f.run.ID)
		byKey := []store.TaskRun{trs[1], trs[2], trs[0]} // extract, transform[0], transform[1]
		if len(listed) != len(byKey) {
			t.Fatalf("ListTaskRuns = %d task runs, want %d", len(listed), len(byKey))
		}
		for i := range byKey {
			requireTaskRun(t, listed[i], byKey[i])
		}
	})

	t.Run("UpdatesInOrderInOneBatch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		created := writeTasks(t, s, f.run.ID, store.TaskRunWrite{Key: "load", Task: "load", State: pending(0)})[0]

		// The second write to one key expects the version the first gives it.
		run1, ok := running(time.Second, 1), state.State{
			Kind: state.Success, Time: at(2 * time.Second), Attempt: 1,
			Result: &state.Result{Store: "file:///r", Key: "load.json", Serializer: "json"},
		}
		trs := writeTasks(t, s, f.run.ID,
			store.TaskRunWrite{Key: "load", Task: "load", Expect: 1, State: run1},
			store.TaskRunWrite{Key: "load", Task: "load", Expect: 2, State: ok},
		)
		if trs[0].Version != 2 || trs[1].Version != 3 || trs[0].ID != created.ID || trs[1].ID != created.ID {
			t.Errorf("batch returned versions %d, %d of %s, %s; want 2, 3 of %s", trs[0].Version, trs[1].Version,
				trs[0].ID, trs[1].ID, created.ID)
		}
		requireState(t, "first write", trs[0].State, run1)
		requireState(t, "second write", trs[1].State, ok)
		requireTime(t, "created_at", trs[1].CreatedAt, created.CreatedAt)
		if trs[1].UpdatedAt.Before(created.UpdatedAt) {
			t.Errorf("updated_at %v went back from %v", trs[1].UpdatedAt, created.UpdatedAt)
		}

		listed := listTasks(t, s, f.run.ID)
		if len(listed) != 1 {
			t.Fatalf("ListTaskRuns = %d task runs, want 1", len(listed))
		}
		requireTaskRun(t, listed[0], trs[1])
		requireHistory(t, "history", history(t, s, f.run.ID, created.ID), []state.State{pending(0), run1, ok})
	})

	t.Run("CreateAndUpdateInOneBatch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		trs := writeTasks(t, s, f.run.ID,
			store.TaskRunWrite{Key: "a", Task: "a", State: pending(0)},
			store.TaskRunWrite{Key: "b", Task: "b", State: pending(0)},
			store.TaskRunWrite{Key: "a", Task: "a", Expect: 1, State: running(time.Second, 1)},
		)
		if trs[0].ID != trs[2].ID || trs[2].Version != 2 || trs[1].Version != 1 {
			t.Errorf("batch = %+v, want a at 1 then 2, b at 1", trs)
		}
		requireHistory(t, "history of a", history(t, s, f.run.ID, trs[0].ID), []state.State{pending(0), running(time.Second, 1)})
	})

	t.Run("LargeBatch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		const n = 300
		var writes []store.TaskRunWrite
		for i := range n {
			k := fmt.Sprintf("transform[%03d]", i)
			writes = append(writes, store.TaskRunWrite{Key: k, Task: "transform", MapIndex: i, State: pending(0)})
		}
		for i := range n {
			k := fmt.Sprintf("transform[%03d]", i)
			writes = append(writes, store.TaskRunWrite{Key: k, Task: "transform", MapIndex: i, Expect: 1, State: running(time.Second, 1)})
		}
		trs := writeTasks(t, s, f.run.ID, writes...)
		for i, tr := range trs {
			if want := int64(1 + i/n); tr.Key != writes[i].Key || tr.Version != want || tr.ID != trs[i%n].ID {
				t.Fatalf("write %d returned %s at version %d (%s), want %s at version %d (%s)",
					i, tr.Key, tr.Version, tr.ID, writes[i].Key, want, trs[i%n].ID)
			}
		}
		listed := listTasks(t, s, f.run.ID)
		if len(listed) != n {
			t.Fatalf("ListTaskRuns = %d task runs, want %d", len(listed), n)
		}
		for i, tr := range listed {
			requireTaskRun(t, tr, trs[n+i])
		}
		requireHistory(t, "history of the last", history(t, s, f.run.ID, trs[n-1].ID),
			[]state.State{pending(0), running(time.Second, 1)})
	})

	t.Run("StaleWriteAppliesNone", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		f := seed(t, s, "etl")
		before := writeTasks(t, s, f.run.ID,
			store.TaskRunWrite{Key: "extract", Task: "extract", State: pending(0)},
			store.TaskRunWrite{Key: "load", Task: "load", State: pending(0)},
		)
		_, err := s.WriteTaskRunStates(ctx, f.run.ID, 0, []store.TaskRunWrite{
			{Key: "extract", Task: "extract", Expect: 1, State: running(time.Second, 1)},
			{Key: "load", Task: "load", Expect: 5, State: running(time.Second, 1)}, // stale
			{Key: "report", Task: "report", State: pending(time.Second)},
		})
		requireErrorIs(t, err, reeve.ErrConflict, "load")
		requireUnchanged(t, s, f.run.ID, before)
	})

	t.Run("CreateExistingIsConflict", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		before := writeTasks(t, s, f.run.ID, store.TaskRunWrite{Key: "extract", Task: "extract", State: pending(0)})
		_, err := s.WriteTaskRunStates(t.Context(), f.run.ID, 0, []store.TaskRunWrite{
			{Key: "extract", Task: "extract", Expect: 0, State: running(time.Second, 1)},
		})
		requireErrorIs(t, err, reeve.ErrConflict, "extract")
		requireUnchanged(t, s, f.run.ID, before)

		// Two creates of one key in one batch: the second is stale.
		_, err = s.WriteTaskRunStates(t.Context(), f.run.ID, 0, []store.TaskRunWrite{
			{Key: "twice", Task: "twice", State: pending(0)},
			{Key: "twice", Task: "twice", State: pending(0)},
		})
		requireErrorIs(t, err, reeve.ErrConflict, "twice")
		requireUnchanged(t, s, f.run.ID, before)
	})

	t.Run("UpdateMissingIsConflict", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		// A task run that does not exist is at version 0: a write that
		// expects any other version is stale.
		_, err := s.WriteTaskRunStates(t.Context(), f.run.ID, 0, []store.TaskRunWrite{
			{Key: "ghost", Task: "ghost", Expect: 3, State: running(0, 1)},
		})
		requireErrorIs(t, err, reeve.ErrConflict, "ghost")
		requireUnchanged(t, s, f.run.ID, nil)
	})

	t.Run("InvalidWriteAppliesNone", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		for name, bad := range map[string]store.TaskRunWrite{
			"UnknownKind":     {Key: "b", Task: "b", State: state.State{Kind: state.Kind(200), Time: at(0)}},
			"NoKey":           {Task: "b", State: pending(0)},
			"NegativeVersion": {Key: "b", Task: "b", Expect: -1, State: pending(0)},
		} {
			_, err := s.WriteTaskRunStates(t.Context(), f.run.ID, 0, []store.TaskRunWrite{
				{Key: "a", Task: "a", State: pending(0)}, bad,
			})
			if err == nil {
				t.Errorf("%s: WriteTaskRunStates = nil error, want ErrInvalid", name)
				continue
			}
			requireErrorIs(t, err, reeve.ErrInvalid)
		}
		requireUnchanged(t, s, f.run.ID, nil)
	})

	t.Run("UnknownFlowRunIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const id = "0190c7a4-0000-7000-8000-000000000005"
		_, err := s.WriteTaskRunStates(t.Context(), id, 0, []store.TaskRunWrite{{Key: "a", Task: "a", State: pending(0)}})
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})

	t.Run("EmptyBatch", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		trs, err := s.WriteTaskRunStates(t.Context(), f.run.ID, 0, nil)
		requireNoError(t, err, "WriteTaskRunStates(nil)")
		if len(trs) != 0 {
			t.Errorf("empty batch returned %+v", trs)
		}
	})

	t.Run("ConcurrentCreateOneWins", func(t *testing.T) {
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
				_, errs[i] = s.WriteTaskRunStates(t.Context(), f.run.ID, 0, []store.TaskRunWrite{
					{Key: "once", Task: "once", State: pending(time.Duration(i))},
					{Key: "once", Task: "once", Expect: 1, State: running(time.Second, 1)},
				})
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
			t.Errorf("%d of %d concurrent batches creating one key won, want 1", winners, n)
		}
		trs := listTasks(t, s, f.run.ID)
		if len(trs) != 1 || trs[0].Version != 2 {
			t.Fatalf("after the race: %+v, want one task run at version 2", trs)
		}
		if h := history(t, s, f.run.ID, trs[0].ID); len(h) != 2 {
			t.Errorf("after the race: %d states in the history, want 2", len(h))
		}
	})

	t.Run("KeysArePerFlowRun", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		other := createRun(t, s, store.FlowRun{FlowVersionID: f.version.ID})
		a := writeTasks(t, s, f.run.ID, store.TaskRunWrite{Key: "extract", Task: "extract", State: pending(0)})[0]
		b := writeTasks(t, s, other.ID, store.TaskRunWrite{Key: "extract", Task: "extract", State: pending(0)})[0]
		if a.ID == b.ID || b.Version != 1 || b.FlowRunID != other.ID {
			t.Errorf("one key in two flow runs: %+v and %+v, want two task runs at version 1", a, b)
		}
		if trs := listTasks(t, s, other.ID); len(trs) != 1 || trs[0].ID != b.ID {
			t.Errorf("ListTaskRuns(other) = %+v, want only %s", trs, b.ID)
		}
	})

	t.Run("ListByKey", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		if trs := listTasks(t, s, f.run.ID); len(trs) != 0 {
			t.Errorf("ListTaskRuns of a run without task runs = %+v", trs)
		}
		for _, k := range []string{"load", "extract", "transform", "clean"} {
			writeTasks(t, s, f.run.ID, store.TaskRunWrite{Key: k, Task: k, State: pending(0)})
		}
		var keys []string
		for _, tr := range listTasks(t, s, f.run.ID) {
			keys = append(keys, tr.Key)
		}
		if want := []string{"clean", "extract", "load", "transform"}; !slices.Equal(keys, want) {
			t.Errorf("ListTaskRuns keys = %q, want %q", keys, want)
		}
	})

	t.Run("ListUnknownFlowRunIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const id = "0190c7a4-0000-7000-8000-000000000006"
		_, err := s.ListTaskRuns(t.Context(), id)
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})
}

// requireUnchanged fails unless the flow run's task runs are exactly
// before, each with a history of one state per version.
func requireUnchanged(t *testing.T, s store.Store, flowRunID string, before []store.TaskRun) {
	t.Helper()
	want := slices.Clone(before)
	slices.SortFunc(want, func(a, b store.TaskRun) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	got := listTasks(t, s, flowRunID)
	if len(got) != len(want) {
		t.Fatalf("task runs changed: %+v, want %+v", got, want)
	}
	for i := range want {
		requireTaskRun(t, got[i], want[i])
		if h := history(t, s, flowRunID, want[i].ID); int64(len(h)) != want[i].Version {
			t.Errorf("task run %q: %d states in the history, want %d", want[i].Key, len(h), want[i].Version)
		}
	}
}

func testHistory(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("FlowRun", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		want := []state.State{f.run.State}
		for i, st := range []state.State{
			{Kind: state.Submitted, Message: "claimed by agent-1", Time: at(time.Second)},
			{Kind: state.Running, Message: "started", Time: at(2 * time.Second)},
			{Kind: state.Retrying, Message: "connection reset; retrying", Time: at(3 * time.Second), StartAt: at(time.Hour)},
			{Kind: state.Running, Time: at(time.Hour + time.Nanosecond)},
			{Kind: state.Failed, Message: "task load failed: boom", Time: at(2 * time.Hour)},
		} {
			_, err := s.SetFlowRunState(t.Context(), f.run.ID, int64(i+1), st)
			requireNoError(t, err, "SetFlowRunState %d", i)
			want = append(want, st)
		}
		requireHistory(t, "flow run history", history(t, s, f.run.ID, ""), want)
	})

	t.Run("TaskRun", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		counts := state.Counts{}
		counts[state.Success], counts[state.Failed], counts[state.Cached] = 8, 2, 1
		states := []state.State{
			pending(0),
			running(time.Second, 1),
			{Kind: state.Retrying, Message: "timeout after 30s", Time: at(31 * time.Second), StartAt: at(time.Minute), Attempt: 1},
			running(time.Minute, 2),
			{Kind: state.Success, Message: "ok", Time: at(2 * time.Minute), Attempt: 2,
				Result: &state.Result{Store: "s3://bucket/results?region=eu-west-1", Key: "etl/run/transform.json", Serializer: "json"}},
		}
		mapped := []state.State{
			pending(0),
			{Kind: state.Mapped, Message: "11 children", Time: at(3 * time.Minute), Counts: &counts,
				Result: &state.Result{Store: "file:///var/reeve", Key: "etl/run/transform.json", Serializer: "gob"}},
		}
		var writes []store.TaskRunWrite
		for i, st := range states {
			writes = append(writes, store.TaskRunWrite{Key: "transform", Task: "transform", Expect: int64(i), State: st})
		}
		for i, st := range mapped {
			writes = append(writes, store.TaskRunWrite{Key: "fanout", Task: "fanout", Expect: int64(i), State: st})
		}
		trs := writeTasks(t, s, f.run.ID, writes...)
		requireHistory(t, "transform history", history(t, s, f.run.ID, trs[0].ID), states)
		requireHistory(t, "fanout history", history(t, s, f.run.ID, trs[len(trs)-1].ID), mapped)

		// The flow run's own history holds none of its task runs' states.
		requireHistory(t, "flow run history", history(t, s, f.run.ID, ""), []state.State{f.run.State})

		// The task runs' current states are their last.
		for _, tr := range listTasks(t, s, f.run.ID) {
			want := states[len(states)-1]
			if tr.Key == "fanout" {
				want = mapped[len(mapped)-1]
			}
			requireState(t, tr.Key, tr.State, want)
		}
	})

	t.Run("UnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		other := createRun(t, s, store.FlowRun{FlowVersionID: f.version.ID})
		tr := writeTasks(t, s, other.ID, store.TaskRunWrite{Key: "a", Task: "a", State: pending(0)})[0]

		const runID, taskID = "0190c7a4-0000-7000-8000-000000000007", "0190c7a4-0000-7000-8000-000000000008"
		_, err := s.History(t.Context(), runID, "")
		requireErrorIs(t, err, reeve.ErrNotFound, runID)
		_, err = s.History(t.Context(), f.run.ID, taskID)
		requireErrorIs(t, err, reeve.ErrNotFound, taskID)
		// A task run of another flow run is not one of this run's.
		_, err = s.History(t.Context(), f.run.ID, tr.ID)
		requireErrorIs(t, err, reeve.ErrNotFound, tr.ID)
	})
}
