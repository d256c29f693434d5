package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// HeartbeatFlowRun records a runner heartbeat; see store.Store. It is one
// statement, as every running run sends one every few seconds; no index
// covers heartbeat_at, so the update can stay on the row's page (HOT).
func (s *Store) HeartbeatFlowRun(ctx context.Context, id string, attempt int) (store.FlowRun, error) {
	out, err := scanFlowRun(s.pool.QueryRow(ctx,
		`UPDATE flow_runs SET heartbeat_at = $1 WHERE id = $2 AND attempt = $3 RETURNING `+flowRunCols,
		s.clock(), id, attempt))
	if errors.Is(err, pgx.ErrNoRows) {
		// No such run, or another attempt: say which.
		var current int
		err := s.pool.QueryRow(ctx, `SELECT attempt FROM flow_runs WHERE id = $1`, id).Scan(&current)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
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

// RecoverFlowRun takes the lost-run path; see store.Store. It locks the
// run's row first (FOR NO KEY UPDATE: a fenced WriteTaskRunStates, which
// locks it FOR SHARE, waits, while task runs may still be created under
// it), then the Running task runs, so it never sees a task run or a claim
// move between its checks and its writes.
func (s *Store) RecoverFlowRun(ctx context.Context, id string, expect int64, reason string, maxRecoveries int) (store.FlowRun, error) {
	var out store.FlowRun
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		run, err := scanFlowRun(tx.QueryRow(ctx,
			`SELECT `+flowRunCols+` FROM flow_runs WHERE id = $1 FOR NO KEY UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
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
		// A re-queue ($5) makes the run due now, for any agent. One
		// statement moves the run, if still at version expect ($7), and
		// records the state.
		out, err = scanFlowRun(tx.QueryRow(ctx,
			`WITH run AS (
				UPDATE flow_runs SET state = $1, state_json = $2, version = version + 1, updated_at = $3,
					agent_id = CASE WHEN $5 THEN '' ELSE agent_id END,
					scheduled_at = CASE WHEN $5 THEN $3 ELSE scheduled_at END,
					recoveries = recoveries + CASE WHEN $5 THEN 1 ELSE 0 END
				WHERE id = $4 AND version = $7
				RETURNING `+flowRunCols+`
			), history AS (
				INSERT INTO states (flow_run_id, task_run_id, seq, state, state_json, time)
				SELECT id, NULL, version, $1, $2, $6 FROM run
			)
			SELECT * FROM run`,
			rec.Run.Kind.String(), rec.RunJSON, now, id, rec.Requeue, rec.Run.Time, expect))
		if errors.Is(err, pgx.ErrNoRows) {
			// Not while the row is locked; the version test only makes sure.
			return store.RecoveryConflict(id, expect)
		}
		return dbErr(err)
	})
	if err != nil {
		return store.FlowRun{}, fmt.Errorf("recover flow run %q: %w", id, err)
	}
	return out, nil
}

// failRunningTasks moves the Running task runs of flow run id to Failed
// (store.LostTaskState), recording the states in their histories. FOR
// UPDATE waits for a task-state write in progress and reads the task runs
// as it left them: one it moved on from Running is left alone.
func failRunningTasks(ctx context.Context, tx pgx.Tx, id, reason string, now time.Time) error {
	rows, err := tx.Query(ctx,
		`SELECT `+taskRunCols+` FROM task_runs WHERE flow_run_id = $1 AND state = $2 ORDER BY key FOR UPDATE`,
		id, state.Running.String())
	if err != nil {
		return dbErr(err)
	}
	running, err := collect(rows, scanTaskRun)
	if err != nil {
		return dbErr(err)
	}
	if len(running) == 0 {
		return nil
	}
	var (
		ids, kinds, states = make([]string, len(running)), make([]string, len(running)), make([]string, len(running))
		versions           = make([]int64, len(running))
		times              = make([]time.Time, len(running))
	)
	for i, tr := range running {
		st, js, err := store.LostTaskState(tr.State, reason, now)
		if err != nil {
			return fmt.Errorf("task run %q: %w", tr.Key, err)
		}
		ids[i], kinds[i], states[i], versions[i], times[i] = tr.ID, st.Kind.String(), js, tr.Version+1, st.Time
	}
	_, err = tx.Exec(ctx,
		`WITH moved AS (
			UPDATE task_runs t SET state = f.kind, state_json = f.js::json, version = f.version, updated_at = $6
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[]) AS f(id, kind, js, version, time)
			WHERE t.id = f.id
			RETURNING t.id
		)
		INSERT INTO states (flow_run_id, task_run_id, seq, state, state_json, time)
		SELECT $7, f.id, f.version, f.kind, f.js::json, f.time
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[]) AS f(id, kind, js, version, time)
		JOIN moved m ON m.id = f.id`,
		ids, kinds, states, versions, times, now, id)
	return dbErr(err)
}
