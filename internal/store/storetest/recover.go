package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// claim has agent claim the due run that has waited longest, and fails tb
// unless it is want.
func claim(tb testing.TB, s store.Store, agent store.Agent, want string) store.FlowRun {
	tb.Helper()
	run, err := s.ClaimFlowRun(tb.Context(), agent.ID, time.Now())
	requireNoError(tb, err, "ClaimFlowRun(%s)", agent.Name)
	if run.ID != want {
		tb.Fatalf("agent %s claimed run %s, want %s", agent.Name, run.ID, want)
	}
	return run
}

// setState moves run to st at its current version, failing tb on error.
func setState(tb testing.TB, s store.Store, run store.FlowRun, st state.State) store.FlowRun {
	tb.Helper()
	out, err := s.SetFlowRunState(tb.Context(), run.ID, run.Version, st)
	requireNoError(tb, err, "SetFlowRunState(%s, %s)", run.ID, st.Kind)
	return out
}

func testAttempts(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("NewRunHasNone", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		if f.run.Attempt != 0 || f.run.Recoveries != 0 || !f.run.HeartbeatAt.IsZero() {
			t.Errorf("new run: attempt %d, recoveries %d, heartbeat_at %v; want 0, 0, none",
				f.run.Attempt, f.run.Recoveries, f.run.HeartbeatAt)
		}
		requireRun(t, getRun(t, s, f.run.ID), f.run)
	})

	t.Run("ClaimCountsAttempts", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		f := seed(t, s, "etl")
		a, b := registerAgent(t, s, "agent-a"), registerAgent(t, s, "agent-b")

		first := claim(t, s, a, f.run.ID)
		if first.Attempt != 1 || !first.HeartbeatAt.IsZero() {
			t.Errorf("first claim: attempt %d, heartbeat_at %v; want 1, none", first.Attempt, first.HeartbeatAt)
		}
		beat, err := s.HeartbeatFlowRun(ctx, first.ID, 1)
		requireNoError(t, err, "HeartbeatFlowRun")
		runningRun := setState(t, s, beat, state.State{Kind: state.Running})
		if runningRun.Attempt != 1 || runningRun.AgentID != a.ID {
			t.Errorf("Running: attempt %d, agent %q; want attempt 1 of agent %s kept", runningRun.Attempt, runningRun.AgentID, a.ID)
		}

		// Re-queued, the run has no agent, and the next claim is attempt 2
		// with no heartbeat yet.
		requeued := setState(t, s, runningRun, state.State{Kind: state.Scheduled, Message: "restart"})
		if requeued.AgentID != "" || requeued.Attempt != 1 {
			t.Errorf("re-queued: agent %q, attempt %d; want no agent, attempt 1 until the next claim", requeued.AgentID, requeued.Attempt)
		}
		requireTime(t, "re-queued scheduled_at (no StartAt)", requeued.ScheduledAt, f.run.ScheduledAt)
		second := claim(t, s, b, f.run.ID)
		if second.Attempt != 2 || second.AgentID != b.ID || !second.HeartbeatAt.IsZero() {
			t.Errorf("second claim: attempt %d, agent %q, heartbeat_at %v; want 2, %s, none",
				second.Attempt, second.AgentID, second.HeartbeatAt, b.ID)
		}
		requireRun(t, getRun(t, s, f.run.ID), second)
	})

	t.Run("RequeueAt", func(t *testing.T) {
		t.Parallel()
		base := time.Now().Truncate(time.Microsecond)
		// Nanoseconds and a zone: kept to the microsecond, in UTC.
		later := base.Add(time.Hour + 789*time.Nanosecond).In(time.FixedZone("UTC+2", 2*60*60))
		cases := []struct {
			name      string
			startAt   time.Time // of the Scheduled state
			scheduled time.Time // the run's ScheduledAt after it
		}{
			{"StartAtMovesScheduledAt", later, later},
			{"StartAtInThePast", base.Add(-time.Hour), base.Add(-time.Hour)},
			{"ZeroStartAtKeepsScheduledAt", time.Time{}, base.Add(-10 * time.Minute)},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				ctx := t.Context()
				createProject(t, s, "etl")
				v := register(t, s, registration("etl", "nightly", "h"))
				run := createRun(t, s, store.FlowRun{FlowVersionID: v.ID, ScheduledAt: base.Add(-10 * time.Minute)})
				a := registerAgent(t, s, "agent-1")
				run = claim(t, s, a, run.ID)
				run = setState(t, s, run, state.State{Kind: state.Running})

				requeued := setState(t, s, run, state.State{Kind: state.Scheduled, Message: "retry later", StartAt: c.startAt})
				requireTime(t, "scheduled_at", requeued.ScheduledAt, micro(c.scheduled))
				requireTime(t, "state start_at", requeued.State.StartAt, micro(c.startAt))
				if requeued.AgentID != "" {
					t.Errorf("re-queued run has agent %q, want none", requeued.AgentID)
				}
				requireRun(t, getRun(t, s, run.ID), requeued)

				// Claimable at its new time, not a microsecond before.
				due := micro(c.scheduled)
				if due.After(base) {
					_, err := s.ClaimFlowRun(ctx, a.ID, base)
					requireErrorIs(t, err, reeve.ErrNotFound)
					_, err = s.ClaimFlowRun(ctx, a.ID, due.Add(-time.Microsecond))
					requireErrorIs(t, err, reeve.ErrNotFound)
				}
				claimAt := base
				if due.After(base) {
					claimAt = due
				}
				got, err := s.ClaimFlowRun(ctx, a.ID, claimAt)
				requireNoError(t, err, "ClaimFlowRun at %v", due)
				if got.ID != run.ID || got.Attempt != 2 {
					t.Errorf("claim at %v = run %s attempt %d, want run %s attempt 2", due, got.ID, got.Attempt, run.ID)
				}
			})
		}
	})

	t.Run("OtherStatesKeepAgentAndScheduledAt", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		a := registerAgent(t, s, "agent-1")
		run := claim(t, s, a, f.run.ID)
		for _, st := range []state.State{
			{Kind: state.Running},
			{Kind: state.Retrying, StartAt: at(time.Hour)}, // a StartAt moves only a Scheduled run
			{Kind: state.Cancelling},
			{Kind: state.Cancelled},
		} {
			run = setState(t, s, run, st)
			if run.AgentID != a.ID || run.Attempt != 1 {
				t.Errorf("%s: agent %q, attempt %d; want agent %s, attempt 1", st.Kind, run.AgentID, run.Attempt, a.ID)
			}
			requireTime(t, st.Kind.String()+": scheduled_at", run.ScheduledAt, f.run.ScheduledAt)
		}
	})
}

func testFencing(t *testing.T, open func(t *testing.T) store.Store) {
	// superseded returns a run that attempt 1 ran, with task runs it
	// wrote, and that agent b then claimed again as attempt 2.
	superseded := func(t *testing.T, s store.Store) (store.FlowRun, []store.TaskRun) {
		t.Helper()
		f := seed(t, s, "etl")
		a, b := registerAgent(t, s, "agent-a"), registerAgent(t, s, "agent-b")
		run := claim(t, s, a, f.run.ID)
		run = setState(t, s, run, state.State{Kind: state.Running})
		trs, err := s.WriteTaskRunStates(t.Context(), run.ID, 1, []store.TaskRunWrite{
			{Key: "extract", Task: "extract", State: running(0, 1)},
			{Key: "load", Task: "load", State: pending(0)},
		})
		requireNoError(t, err, "WriteTaskRunStates(attempt 1)")
		run = setState(t, s, run, state.State{Kind: state.Scheduled, Message: "runner lost"})
		run = claim(t, s, b, run.ID)
		if run.Attempt != 2 {
			t.Fatalf("second claim: attempt %d, want 2", run.Attempt)
		}
		return run, trs
	}

	t.Run("SupersededWriteChangesNothing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		run, before := superseded(t, s)
		_, err := s.WriteTaskRunStates(t.Context(), run.ID, 1, []store.TaskRunWrite{
			{Key: "extract", Task: "extract", Expect: 1, State: state.State{Kind: state.Success, Attempt: 1}},
			{Key: "report", Task: "report", State: pending(0)},
		})
		requireErrorIs(t, err, reeve.ErrConflict, run.ID, "attempt 1", "superseded by attempt 2")
		requireUnchanged(t, s, run.ID, before)
	})

	t.Run("RequeuedRunTakesNoWritesBeforeItsNextClaim", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		f := seed(t, s, "etl")
		a := registerAgent(t, s, "agent-a")
		run := claim(t, s, a, f.run.ID)
		run = setState(t, s, run, state.State{Kind: state.Running})
		before, err := s.WriteTaskRunStates(t.Context(), run.ID, 1, []store.TaskRunWrite{{Key: "extract", Task: "extract", State: running(0, 1)}})
		requireNoError(t, err, "WriteTaskRunStates(attempt 1)")
		setState(t, s, run, state.State{Kind: state.Scheduled, Message: "re-queued"})
		_, err = s.WriteTaskRunStates(t.Context(), run.ID, 1, []store.TaskRunWrite{
			{Key: "extract", Task: "extract", Expect: before[0].Version, State: state.State{Kind: state.Success, Attempt: 1}},
		})
		requireErrorIs(t, err, reeve.ErrConflict, run.ID, "re-queued", "attempt 1 must stop")
		requireUnchanged(t, s, run.ID, before)
		// Unfenced writers (agents, admins) still may.
		_, err = s.WriteTaskRunStates(t.Context(), run.ID, 0, []store.TaskRunWrite{{Key: "note", Task: "note", State: pending(0)}})
		requireNoError(t, err, "WriteTaskRunStates(attempt 0)")
	})

	t.Run("CurrentAndUnfencedWritesApply", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		run, _ := superseded(t, s)
		for _, attempt := range []int{2, 0} {
			key := fmt.Sprintf("step-%d", attempt)
			trs, err := s.WriteTaskRunStates(t.Context(), run.ID, attempt, []store.TaskRunWrite{
				{Key: key, Task: "step", State: pending(0)},
			})
			requireNoError(t, err, "WriteTaskRunStates(attempt %d)", attempt)
			if len(trs) != 1 || trs[0].Key != key || trs[0].Version != 1 {
				t.Errorf("attempt %d wrote %+v, want task run %s at version 1", attempt, trs, key)
			}
		}
	})

	t.Run("AttemptNotYetClaimedIsConflict", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		run, before := superseded(t, s)
		_, err := s.WriteTaskRunStates(t.Context(), run.ID, 3, []store.TaskRunWrite{{Key: "x", Task: "x", State: pending(0)}})
		requireErrorIs(t, err, reeve.ErrConflict, run.ID, "attempt 2")
		requireUnchanged(t, s, run.ID, before)
	})

	t.Run("UnknownFlowRunIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const id = "0190c7a4-0000-7000-8000-000000000050"
		_, err := s.WriteTaskRunStates(t.Context(), id, 1, []store.TaskRunWrite{{Key: "a", Task: "a", State: pending(0)}})
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})
}

func testRunHeartbeats(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("RecordsTimeOnly", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		f := seed(t, s, "etl")
		run := claim(t, s, registerAgent(t, s, "agent-1"), f.run.ID)
		run = setState(t, s, run, state.State{Kind: state.Running})

		boundary()
		beat, err := s.HeartbeatFlowRun(ctx, run.ID, run.Attempt)
		requireNoError(t, err, "HeartbeatFlowRun")
		requireRecent(t, "heartbeat_at", beat.HeartbeatAt)
		if !beat.HeartbeatAt.After(run.UpdatedAt) {
			t.Errorf("heartbeat_at = %v, want after the last change %v", beat.HeartbeatAt, run.UpdatedAt)
		}
		// Neither the state, nor its version, nor the run's other fields
		// change.
		want := run
		want.HeartbeatAt = beat.HeartbeatAt
		requireRun(t, beat, want)
		requireRun(t, getRun(t, s, run.ID), want)
		if h := history(t, s, run.ID, ""); len(h) != 3 {
			t.Errorf("history after a heartbeat: %v, want Scheduled, Submitted, Running", h)
		}

		boundary()
		again, err := s.HeartbeatFlowRun(ctx, run.ID, run.Attempt)
		requireNoError(t, err, "HeartbeatFlowRun again")
		if !again.HeartbeatAt.After(beat.HeartbeatAt) {
			t.Errorf("second heartbeat_at = %v, want after %v", again.HeartbeatAt, beat.HeartbeatAt)
		}
	})

	t.Run("OtherAttemptIsConflict", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		f := seed(t, s, "etl")
		a := registerAgent(t, s, "agent-1")
		run := claim(t, s, a, f.run.ID)
		run = setState(t, s, run, state.State{Kind: state.Scheduled, Message: "re-queued"})
		run = claim(t, s, a, f.run.ID)
		beat, err := s.HeartbeatFlowRun(ctx, run.ID, 2)
		requireNoError(t, err, "HeartbeatFlowRun(attempt 2)")

		cases := []struct {
			attempt  int
			contains []string
		}{
			{1, []string{run.ID, "attempt 1", "superseded by attempt 2"}},
			{3, []string{run.ID, "attempt 2"}},
			{0, []string{run.ID, "attempt 2"}},
		}
		for _, c := range cases {
			_, err := s.HeartbeatFlowRun(ctx, run.ID, c.attempt)
			requireErrorIs(t, err, reeve.ErrConflict, c.contains...)
		}
		requireRun(t, getRun(t, s, run.ID), beat)
	})

	t.Run("UnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const id = "0190c7a4-0000-7000-8000-000000000051"
		_, err := s.HeartbeatFlowRun(t.Context(), id, 1)
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})
}

// lostRun is a run whose runner is lost: claimed by agent-1 (attempt 1)
// and moved to kind (Submitted, Running or Cancelling), with task runs in
// several states, two of them Running.
type lostRun struct {
	run   store.FlowRun
	agent store.Agent
	tasks map[string]store.TaskRun // by key
}

func newLostRun(t *testing.T, s store.Store, kind state.Kind) lostRun {
	t.Helper()
	f := seed(t, s, "etl")
	a := registerAgent(t, s, "agent-1")
	run := claim(t, s, a, f.run.ID)
	l := lostRun{agent: a, tasks: map[string]store.TaskRun{}}
	if kind == state.Submitted {
		l.run = run
		return l
	}
	run = setState(t, s, run, state.State{Kind: state.Running})
	trs, err := s.WriteTaskRunStates(t.Context(), run.ID, run.Attempt, []store.TaskRunWrite{
		{Key: "extract", Task: "extract", State: running(0, 1)},
		{Key: "extract", Task: "extract", Expect: 1, State: state.State{Kind: state.Success, Time: at(time.Second), Attempt: 1}},
		{Key: "transform", Task: "transform", State: running(0, 1)},
		{Key: "transform", Task: "transform", Expect: 1, State: state.State{Kind: state.Retrying, Time: at(time.Second), Attempt: 1, StartAt: at(time.Minute)}},
		{Key: "transform", Task: "transform", Expect: 2, State: running(time.Minute, 2)},
		{Key: "report", Task: "report", State: running(0, 1)},
		{Key: "load", Task: "load", State: pending(0)},
	})
	requireNoError(t, err, "WriteTaskRunStates")
	for _, tr := range trs {
		l.tasks[tr.Key] = tr
	}
	if kind == state.Cancelling {
		run = setState(t, s, run, state.State{Kind: state.Cancelling, Message: "cancelled by alice"})
	}
	l.run = run
	return l
}

// requireTasksLost fails unless the task runs of l that were Running are
// Failed, "runner lost: " + reason, in the same attempt, one version on,
// with the state in their history, and the others are as they were.
func requireTasksLost(t *testing.T, s store.Store, l lostRun, reason string) {
	t.Helper()
	for _, got := range listTasks(t, s, l.run.ID) {
		before := l.tasks[got.Key]
		if before.State.Kind != state.Running {
			requireTaskRun(t, got, before)
			continue
		}
		want := before
		want.Version++
		want.State = state.State{Kind: state.Failed, Message: "runner lost: " + reason, Time: got.State.Time, Attempt: before.State.Attempt}
		want.UpdatedAt = got.UpdatedAt
		requireTaskRun(t, got, want)
		requireRecent(t, got.Key+" failed at", got.State.Time)
		h := history(t, s, l.run.ID, got.ID)
		if int64(len(h)) != want.Version {
			t.Errorf("task run %s: %d states in the history, want %d", got.Key, len(h), want.Version)
			continue
		}
		requireState(t, got.Key+" history", h[len(h)-1], want.State)
	}
}

func testRecoveries(t *testing.T, open func(t *testing.T) store.Store) {
	const reason = `agent "agent-1" sent no heartbeat for 1m0s`
	t.Run("LostPath", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			name          string
			from          state.Kind
			maxRecoveries int
			want          state.Kind
			message       string
			requeued      bool
		}{
			{"RunningIsRequeued", state.Running, 3, state.Scheduled, "re-queued (recovery 1 of 3): " + reason, true},
			{"SubmittedIsRequeued", state.Submitted, 1, state.Scheduled, "re-queued (recovery 1 of 1): " + reason, true},
			{"CancellingIsCancelled", state.Cancelling, 3, state.Cancelled, reason, false},
			{"NoRecoveriesGivesUp", state.Running, 0, state.Failed, reason + "; gave up after 0 recoveries", false},
			{"NegativeMaxGivesUp", state.Running, -1, state.Failed, reason + "; gave up after 0 recoveries", false},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				l := newLostRun(t, s, c.from)
				boundary()
				got, err := s.RecoverFlowRun(t.Context(), l.run.ID, l.run.Version, reason, c.maxRecoveries)
				requireNoError(t, err, "RecoverFlowRun")

				want := l.run
				want.Version++
				want.State = state.State{Kind: c.want, Message: c.message, Time: got.State.Time}
				want.UpdatedAt = got.UpdatedAt
				if c.requeued {
					want.AgentID, want.Recoveries, want.ScheduledAt = "", 1, got.State.Time
				}
				requireRun(t, got, want)
				requireRecent(t, "state time", got.State.Time)
				if !got.State.Time.After(l.run.UpdatedAt) {
					t.Errorf("state time %v is not after the run's last change %v: want the store's clock", got.State.Time, l.run.UpdatedAt)
				}
				requireTime(t, "updated_at", got.UpdatedAt, got.State.Time)
				requireRun(t, getRun(t, s, l.run.ID), want)
				h := history(t, s, l.run.ID, "")
				if int64(len(h)) != want.Version {
					t.Fatalf("history: %v, want %d states", h, want.Version)
				}
				requireState(t, "last state in the history", h[len(h)-1], want.State)
				requireTasksLost(t, s, l, reason)

				// A re-queued run is claimed anew, as the next attempt, by
				// any agent; the others are done.
				other := registerAgent(t, s, "agent-2")
				next, err := s.ClaimFlowRun(t.Context(), other.ID, time.Now())
				if !c.requeued {
					requireErrorIs(t, err, reeve.ErrNotFound)
					return
				}
				requireNoError(t, err, "ClaimFlowRun after the re-queue")
				if next.ID != l.run.ID || next.Attempt != 2 || next.AgentID != other.ID || next.Recoveries != 1 {
					t.Errorf("claim after the re-queue = run %s attempt %d agent %q recoveries %d; want run %s attempt 2 agent %s recoveries 1",
						next.ID, next.Attempt, next.AgentID, next.Recoveries, l.run.ID, other.ID)
				}
				// The lost runner, should it come back, is refused.
				_, err = s.HeartbeatFlowRun(t.Context(), l.run.ID, 1)
				requireErrorIs(t, err, reeve.ErrConflict, "superseded")
				_, err = s.WriteTaskRunStates(t.Context(), l.run.ID, 1, []store.TaskRunWrite{{Key: "late", Task: "late", State: pending(0)}})
				requireErrorIs(t, err, reeve.ErrConflict, "superseded")
			})
		}
	})

	t.Run("GivesUpAfterMax", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := t.Context()
		f := seed(t, s, "etl")
		a := registerAgent(t, s, "agent-1")
		const maxRecoveries = 2
		for i := 1; ; i++ {
			run := claim(t, s, a, f.run.ID)
			if run.Attempt != i {
				t.Errorf("claim %d: attempt %d, want %d", i, run.Attempt, i)
			}
			run = setState(t, s, run, state.State{Kind: state.Running})
			got, err := s.RecoverFlowRun(ctx, run.ID, run.Version, reason, maxRecoveries)
			requireNoError(t, err, "RecoverFlowRun %d", i)
			if i <= maxRecoveries {
				if want := fmt.Sprintf("re-queued (recovery %d of %d): %s", i, maxRecoveries, reason); got.State.Kind != state.Scheduled ||
					got.State.Message != want || got.Recoveries != i {
					t.Fatalf("recovery %d: %s %q, recoveries %d; want Scheduled %q, recoveries %d",
						i, got.State.Kind, got.State.Message, got.Recoveries, want, i)
				}
				continue
			}
			want := reason + "; gave up after 2 recoveries"
			if got.State.Kind != state.Failed || got.State.Message != want || got.Recoveries != maxRecoveries {
				t.Errorf("recovery %d: %s %q, recoveries %d; want Failed %q, recoveries %d",
					i, got.State.Kind, got.State.Message, got.Recoveries, want, maxRecoveries)
			}
			break
		}
		_, err := s.ClaimFlowRun(ctx, a.ID, time.Now())
		requireErrorIs(t, err, reeve.ErrNotFound)
	})

	t.Run("StaleExpectIsConflict", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		l := newLostRun(t, s, state.Running)
		_, err := s.RecoverFlowRun(t.Context(), l.run.ID, l.run.Version-1, reason, 3)
		requireErrorIs(t, err, reeve.ErrConflict, l.run.ID, "version")
		requireRun(t, getRun(t, s, l.run.ID), l.run)
		requireUnchanged(t, s, l.run.ID, mapValues(l.tasks))
	})

	t.Run("NoRunnerIsConflict", func(t *testing.T) {
		t.Parallel()
		for _, kind := range []state.Kind{state.Pending, state.Scheduled, state.Retrying, state.Success, state.Failed, state.Cancelled} {
			t.Run(kind.String(), func(t *testing.T) {
				t.Parallel()
				s := open(t)
				f := seed(t, s, "etl")
				run := createRun(t, s, store.FlowRun{FlowVersionID: f.version.ID, State: state.State{Kind: kind, Message: "made so"}})
				before := writeTasks(t, s, run.ID, store.TaskRunWrite{Key: "extract", Task: "extract", State: running(0, 1)})
				_, err := s.RecoverFlowRun(t.Context(), run.ID, run.Version, reason, 3)
				requireErrorIs(t, err, reeve.ErrConflict, run.ID, kind.String())
				requireRun(t, getRun(t, s, run.ID), run)
				requireUnchanged(t, s, run.ID, before)
			})
		}
	})

	t.Run("UnknownIsNotFound", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const id = "0190c7a4-0000-7000-8000-000000000052"
		_, err := s.RecoverFlowRun(t.Context(), id, 2, reason, 3)
		requireErrorIs(t, err, reeve.ErrNotFound, id)
	})

	t.Run("ConcurrentOneWins", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		l := newLostRun(t, s, state.Running)
		const n = 16
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				<-start
				_, errs[i] = s.RecoverFlowRun(t.Context(), l.run.ID, l.run.Version, reason, 3)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !strings.Contains(err.Error(), "version"):
				t.Errorf("recoverer %d: %v, want nil or ErrConflict on the version", i, err)
			default:
				requireErrorIs(t, err, reeve.ErrConflict)
			}
		}
		if won != 1 {
			t.Errorf("%d of %d concurrent recoveries won, want 1", won, n)
		}
		if run := getRun(t, s, l.run.ID); run.Recoveries != 1 || run.Version != l.run.Version+1 {
			t.Errorf("after concurrent recoveries: recoveries %d, version %d; want 1, %d", run.Recoveries, run.Version, l.run.Version+1)
		}
		requireTasksLost(t, s, l, reason)
	})
}

func mapValues(m map[string]store.TaskRun) []store.TaskRun {
	out := make([]store.TaskRun, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func testListByAgent(t *testing.T, open func(t *testing.T) store.Store) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	createProject(t, s, "etl")
	v := register(t, s, registration("etl", "nightly", "h"))
	a, b := registerAgent(t, s, "agent-a"), registerAgent(t, s, "agent-b")
	base := time.Now()
	var runs []store.FlowRun
	for i := range 5 {
		runs = append(runs, createRun(t, s, store.FlowRun{FlowVersionID: v.ID, ScheduledAt: base.Add(time.Duration(i-10) * time.Minute)}))
	}
	a0 := claim(t, s, a, runs[0].ID)
	claim(t, s, b, runs[1].ID)
	a2 := claim(t, s, a, runs[2].ID)
	a2 = setState(t, s, a2, state.State{Kind: state.Running})
	a3 := claim(t, s, a, runs[3].ID)
	setState(t, s, a3, state.State{Kind: state.Scheduled, Message: "re-queued"}) // no agent any more

	list := func(f store.FlowRunFilter) []string {
		t.Helper()
		got, next, err := s.ListFlowRuns(ctx, f)
		requireNoError(t, err, "ListFlowRuns(%+v)", f)
		if next != "" {
			t.Errorf("ListFlowRuns(%+v): a next page, want none", f)
		}
		requireNewestFirst(t, got)
		return runIDs(got)
	}
	requireSameIDs(t, "agent a", list(store.FlowRunFilter{AgentID: a.ID}), []string{a0.ID, a2.ID})
	requireSameIDs(t, "agent b", list(store.FlowRunFilter{AgentID: b.ID}), []string{runs[1].ID})
	requireSameIDs(t, "agent a, Running", list(store.FlowRunFilter{AgentID: a.ID, States: []state.Kind{state.Running}}), []string{a2.ID})
	requireSameIDs(t, "agent a, flow", list(store.FlowRunFilter{AgentID: a.ID, FlowID: v.FlowID}), []string{a0.ID, a2.ID})
	requireSameIDs(t, "unknown agent", list(store.FlowRunFilter{AgentID: "0190c7a4-0000-7000-8000-000000000053"}), nil)

	// What the server's monitor lists: the runs that have a runner.
	c := setState(t, s, a0, state.State{Kind: state.Cancelling})
	requireSameIDs(t, "active", list(store.FlowRunFilter{States: []state.Kind{state.Submitted, state.Running, state.Cancelling}}),
		[]string{c.ID, runs[1].ID, a2.ID})
}
