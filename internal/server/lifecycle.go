package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// The life of a flow run past its creation: attempts, run heartbeats,
// cancellation, the lost-run path and restarts.
//
// Every claim starts a new attempt of a run (store.FlowRun.Attempt) and
// mints a run token for that attempt. A runner's writes with its token are
// fenced: once the run has moved on to a newer attempt (the old runner was
// declared lost and the run re-queued and claimed again), the old token's
// state writes and heartbeats are answered 409 Conflict, so a runner that
// comes back from a long pause can never overwrite the attempt that
// replaced it. Its log lines are still accepted: they say what it did.

// mintRunToken mints a token for the current attempt of run.
func (s *Server) mintRunToken(ctx context.Context, run store.FlowRun) (api.NewToken, error) {
	return s.mintToken(ctx, store.Token{
		Name:      fmt.Sprintf("run %s attempt %d", run.ID, run.Attempt),
		Role:      store.RoleRun,
		FlowRunID: run.ID,
		Attempt:   run.Attempt,
	})
}

// attempt is the attempt a caller's writes are fenced by: a run token's
// own, or 0 (unfenced) for every other token.
func (c *caller) attempt() int {
	if c.token.Role != store.RoleRun {
		return 0
	}
	return c.token.Attempt
}

// fence refuses a run token whose attempt is no longer run's current one,
// and one whose claimed run was re-queued (its runner declared lost, a
// long retry handed back, a restart): the attempt changes only with the
// next claim, and until then the run waits in Scheduled and no runner may
// write to it. (A token minted for a run never claimed, attempt 0, works.)
func (c *caller) fence(run store.FlowRun) error {
	if c.token.Role != store.RoleRun {
		return nil
	}
	if c.token.Attempt != run.Attempt {
		return superseded(run.ID, c.token.Attempt, run.Attempt)
	}
	if k := run.State.Kind; run.Attempt > 0 && (k == state.Scheduled || k == state.Pending) {
		return reeve.Errorf(reeve.CodeConflict,
			"flow run %s was re-queued (%s): the runner of attempt %d was declared lost and must stop",
			run.ID, run.State, run.Attempt)
	}
	return nil
}

func superseded(runID string, attempt, current int) error {
	return reeve.Errorf(reeve.CodeConflict,
		"attempt %d of flow run %s was superseded by attempt %d (its runner was declared lost and the run re-queued): this runner must stop",
		attempt, runID, current)
}

// runHeartbeat records a runner's heartbeat and tells it whether to cancel.
func (s *Server) runHeartbeat(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	if err := c.fence(*c.run); err != nil {
		return nil, err
	}
	run, err := s.store.HeartbeatFlowRun(r.Context(), r.PathValue("id"), c.token.Attempt)
	if err != nil {
		return nil, err
	}
	return api.RunHeartbeat{
		FlowRun:        apiFlowRun(run),
		Cancel:         run.State.Kind == state.Cancelling || run.State.Kind == state.Cancelled,
		Interval:       api.Duration(s.heartbeatEvery),
		MaxResultBytes: s.maxResult,
	}, nil
}

// cancelFlowRun cancels a run: one that no runner holds ends Cancelled at
// once; one that an agent claimed becomes Cancelling, and its runner, told
// by its next heartbeat, cancels its tasks and ends it Cancelled (or the
// lost-run path does, if the runner is gone).
func (s *Server) cancelFlowRun(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	ctx := r.Context()
	id := r.PathValue("id")
	by := fmt.Sprintf("%s token %q", c.token.Role, c.token.Name)
	for try := 0; ; try++ {
		run, err := s.store.GetFlowRun(ctx, id)
		if err != nil {
			return nil, err
		}
		var next state.State
		switch k := run.State.Kind; {
		case k.Finished():
			return nil, reeve.Errorf(reeve.CodeConflict, "flow run %s already finished (%s): there is nothing to cancel", id, k)
		case k == state.Cancelling:
			return apiFlowRun(run), nil
		case k == state.Submitted || k == state.Running:
			next = state.State{Kind: state.Cancelling, Message: "cancel requested by " + by + ": waiting for the runner to stop"}
		default:
			next = state.State{Kind: state.Cancelled, Message: "cancelled by " + by}
		}
		run, err = s.store.SetFlowRunState(ctx, id, run.Version, next)
		if errors.Is(err, reeve.ErrConflict) && try < 5 {
			continue // it moved meanwhile: look again
		}
		if err != nil {
			return nil, err
		}
		s.stateChanged(run)
		return apiFlowRun(run), nil
	}
}

// reportLost takes the lost-run path for an attempt whose runner an agent
// saw end without finishing the run.
func (s *Server) reportLost(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	var req api.ReportLost
	if err := decode(r, w, api.MaxBodyBytes, &req); err != nil {
		return nil, err
	}
	if req.Attempt <= 0 {
		return nil, invalid("attempt must be the attempt the agent started (the flow run's attempt in the claim, ≥ 1)")
	}
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		return nil, invalid("reason is empty: say what happened to the runner, e.g. \"the flow program was killed by signal 9\"")
	}
	if len(reason) > 16<<10 {
		return nil, invalid("reason is %d bytes long: keep it under 16 KiB", len(reason))
	}
	ctx := r.Context()
	run, err := s.store.GetFlowRun(ctx, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if run.Attempt != req.Attempt {
		return nil, reeve.Errorf(reeve.CodeConflict, "flow run %s is at attempt %d, not %d: the attempt reported lost was already superseded", run.ID, run.Attempt, req.Attempt)
	}
	run, err = s.recover(ctx, run, reason)
	if err != nil {
		return nil, err
	}
	return apiFlowRun(run), nil
}

// recover takes the lost-run path for run and wakes whoever waits.
func (s *Server) recover(ctx context.Context, run store.FlowRun, reason string) (store.FlowRun, error) {
	run, err := s.store.RecoverFlowRun(ctx, run.ID, run.Version, reason, s.maxRecoveries)
	if err != nil {
		return store.FlowRun{}, err
	}
	s.log.WarnContext(ctx, "flow run lost its runner", "flow_run", run.ID, "reason", reason, "now", run.State.String())
	s.stateChanged(run)
	return run, nil
}

// restartFlowRun schedules a finished, unsuccessful run again. Its next
// runner resumes it: finished task runs are reused from their persisted
// results, failed and unfinished ones run again.
func (s *Server) restartFlowRun(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	ctx := r.Context()
	run, err := s.store.GetFlowRun(ctx, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	switch k := run.State.Kind; {
	case !k.Finished():
		return nil, reeve.Errorf(reeve.CodeConflict, "flow run %s is %s, not finished: cancel it first, or wait for it to end", run.ID, k)
	case k.Successful():
		return nil, reeve.Errorf(reeve.CodeConflict, "flow run %s succeeded (%s): there is nothing to restart; create a new run to run it again", run.ID, k)
	}
	run, err = s.store.SetFlowRunState(ctx, run.ID, run.Version, state.State{
		Kind:    state.Scheduled,
		Message: fmt.Sprintf("restarted by %s token %q after %s: failed and unfinished task runs run again", c.token.Role, c.token.Name, run.State.Kind),
		StartAt: s.now(),
	})
	if err != nil {
		return nil, err
	}
	s.stateChanged(run)
	return apiFlowRun(run), nil
}

// RunsChanged wakes the agents waiting in a claim on this replica: call it
// after runs became claimable outside the API (the run monitor re-queued
// some).
func (s *Server) RunsChanged() { s.hub.notifyRuns() }
