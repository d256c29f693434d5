package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// heartbeatSQL records a heartbeat of the run's current attempt: one
// statement, prepared once, as every running run sends one every few
// seconds.
const heartbeatSQL = `UPDATE flow_runs SET heartbeat_at = ? WHERE id = ? AND attempt = ? RETURNING ` + flowRunCols

// HeartbeatFlowRun records a runner heartbeat; see store.Store.
func (s *Store) HeartbeatFlowRun(ctx context.Context, id string, attempt int) (store.FlowRun, error) {
	st, err := s.prepared(ctx, heartbeatSQL)
	if err != nil {
		return store.FlowRun{}, fmt.Errorf("heartbeat of flow run %q attempt %d: %w", id, attempt, err)
	}
	out, err := scanFlowRun(st.QueryRowContext(ctx, micros(s.clock()), id, attempt))
	if errors.Is(err, sql.ErrNoRows) {
		// No such run, or another attempt: say which.
		var current int
		err := s.write.QueryRowContext(ctx, `SELECT attempt FROM flow_runs WHERE id = ?`, id).Scan(&current)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			err = notFound("flow run", id)
		case err == nil:
			err = store.AttemptConflict(id, attempt, current)
		default:
			err = dbErr(err)
		}
		return store.FlowRun{}, fmt.Errorf("heartbeat of flow run %q: %w", id, err)
	}
	if err != nil {
		return store.FlowRun{}, fmt.Errorf("heartbeat of flow run %q attempt %d: %w", id, attempt, dbErr(err))
	}
	return out, nil
}

// RecoverFlowRun takes the lost-run path; see store.Store. The write
// transaction holds the database, so no task run or claim moves between
// the checks and the writes.
func (s *Store) RecoverFlowRun(ctx context.Context, id string, expect int64, reason string, maxRecoveries int) (store.FlowRun, error) {
	var out store.FlowRun
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		run, err := scanFlowRun(tx.QueryRowContext(ctx, `SELECT `+flowRunCols+` FROM flow_runs WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("flow run", id)
		}
		if err != nil {
			return dbErr(err)
		}
		now := s.clock()
		rec, err := store.PlanRecovery(id, run.State.Kind, run.Version, expect, run.Recoveries, reason, maxRecoveries, now)
		if err != nil {
			return err
		}
		if err := failRunningTasks(ctx, tx, id, reason, now); err != nil {
			return err
		}
		requeue := 0
		if rec.Requeue {
			requeue = 1
		}
		// A re-queue (?5 = 1) makes the run due now, for any agent, if the
		// run is still at version expect (?6).
		out, err = scanFlowRun(tx.QueryRowContext(ctx,
			`UPDATE flow_runs SET state = ?1, state_json = ?2, version = version + 1, updated_at = ?3,
				agent_id = CASE WHEN ?5 THEN '' ELSE agent_id END,
				scheduled_at = CASE WHEN ?5 THEN ?3 ELSE scheduled_at END,
				recoveries = recoveries + ?5
			 WHERE id = ?4 AND version = ?6 RETURNING `+flowRunCols,
			rec.Run.Kind.String(), rec.RunJSON, micros(now), id, requeue, expect))
		if errors.Is(err, sql.ErrNoRows) {
			// Not in the write transaction; the version test only makes sure.
			return store.RecoveryConflict(id, expect)
		}
		if err != nil {
			return dbErr(err)
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO states (flow_run_id, task_run_id, seq, state, state_json, time) VALUES (?, NULL, ?, ?, ?, ?)`,
			id, out.Version, rec.Run.Kind.String(), rec.RunJSON, micros(rec.Run.Time))
		return dbErr(err)
	})
	if err != nil {
		return store.FlowRun{}, fmt.Errorf("recover flow run %q: %w", id, err)
	}
	return out, nil
}

// failRunningTasks moves the Running task runs of flow run id to Failed
// (store.LostTaskState), recording the states in their histories.
func failRunningTasks(ctx context.Context, tx *sql.Tx, id, reason string, now time.Time) error {
	rows, err := tx.QueryContext(ctx,
		`SELECT `+taskRunCols+` FROM task_runs WHERE flow_run_id = ? AND state = ? ORDER BY key`,
		id, state.Running.String())
	if err != nil {
		return dbErr(err)
	}
	running, err := collect(rows, scanTaskRun)
	if err != nil {
		return dbErr(err)
	}
	for _, tr := range running {
		st, js, err := store.LostTaskState(tr.State, reason, now)
		if err != nil {
			return fmt.Errorf("task run %q: %w", tr.Key, err)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE task_runs SET state = ?, state_json = ?, version = version + 1, updated_at = ? WHERE id = ?`,
			st.Kind.String(), js, micros(now), tr.ID); err != nil {
			return dbErr(err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO states (flow_run_id, task_run_id, seq, state, state_json, time) VALUES (?, ?, ?, ?, ?, ?)`,
			id, tr.ID, tr.Version+1, st.Kind.String(), js, micros(st.Time)); err != nil {
			return dbErr(err)
		}
	}
	return nil
}
