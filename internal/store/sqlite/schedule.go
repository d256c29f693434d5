package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

const scheduleCols = `id, project_id, flow_id, cron, timezone, interval_us, anchor, params, paused, from_spec,
	created_at, updated_at`

func scanSchedule(sc interface{ Scan(...any) error }) (store.Schedule, error) {
	var (
		out              store.Schedule
		interval         int64
		anchor           sql.NullInt64
		params           sql.NullString
		created, updated int64
	)
	if err := sc.Scan(&out.ID, &out.ProjectID, &out.FlowID, &out.Cron, &out.Timezone, &interval, &anchor, &params,
		&out.Paused, &out.FromSpec, &created, &updated); err != nil {
		return store.Schedule{}, err
	}
	out.Interval = time.Duration(interval) * time.Microsecond
	if anchor.Valid {
		out.Anchor = fromMicros(anchor.Int64)
	}
	if params.Valid {
		out.Params = json.RawMessage(params.String)
	}
	out.CreatedAt, out.UpdatedAt = fromMicros(created), fromMicros(updated)
	return out, nil
}

// CreateSchedule adds a schedule to a flow; see store.Store.
func (s *Store) CreateSchedule(ctx context.Context, sc store.Schedule) (store.Schedule, error) {
	sc, params, ok, err := store.CheckSchedule(sc, s.clock)
	if err != nil {
		return store.Schedule{}, fmt.Errorf("create schedule: %w", err)
	}
	id, err := newID()
	if err != nil {
		return store.Schedule{}, fmt.Errorf("create schedule of flow %q: %w", sc.FlowID, err)
	}
	var out store.Schedule
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var projectID string
		err := tx.QueryRowContext(ctx, `SELECT project_id FROM flows WHERE id = ?`, sc.FlowID).Scan(&projectID)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("flow", sc.FlowID)
		}
		if err != nil {
			return dbErr(err)
		}
		now := s.clock()
		out = sc
		out.ID, out.ProjectID, out.CreatedAt, out.UpdatedAt = id, projectID, now, now
		_, err = tx.ExecContext(ctx,
			`INSERT INTO schedules (`+scheduleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			out.ID, out.ProjectID, out.FlowID, out.Cron, out.Timezone, out.Interval.Microseconds(), nullMicros(out.Anchor),
			sql.NullString{String: params, Valid: ok}, out.Paused, out.FromSpec, micros(now), micros(now))
		return dbErr(err)
	})
	if err != nil {
		return store.Schedule{}, fmt.Errorf("create schedule of flow %q: %w", sc.FlowID, err)
	}
	return out, nil
}

// GetSchedule returns a schedule by ID, or ErrNotFound.
func (s *Store) GetSchedule(ctx context.Context, id string) (store.Schedule, error) {
	sc, err := scanSchedule(s.read.QueryRowContext(ctx, `SELECT `+scheduleCols+` FROM schedules WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Schedule{}, fmt.Errorf("get schedule: %w", notFound("schedule", id))
	}
	if err != nil {
		return store.Schedule{}, fmt.Errorf("get schedule %q: %w", id, dbErr(err))
	}
	return sc, nil
}

// ListSchedules returns a flow's schedules (every schedule when flowID is
// ""), oldest first; an unknown flow is ErrNotFound.
func (s *Store) ListSchedules(ctx context.Context, flowID string) ([]store.Schedule, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if flowID == "" {
		rows, err = s.read.QueryContext(ctx, `SELECT `+scheduleCols+` FROM schedules ORDER BY created_at, id`)
	} else {
		rows, err = s.read.QueryContext(ctx,
			`SELECT `+scheduleCols+` FROM schedules WHERE flow_id = ? ORDER BY created_at, id`, flowID)
	}
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", dbErr(err))
	}
	out, err := collect(rows, scanSchedule)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", dbErr(err))
	}
	if len(out) == 0 && flowID != "" {
		var one int
		err := s.read.QueryRowContext(ctx, `SELECT 1 FROM flows WHERE id = ?`, flowID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("list schedules: %w", notFound("flow", flowID))
		}
		if err != nil {
			return nil, fmt.Errorf("list schedules of flow %q: %w", flowID, dbErr(err))
		}
	}
	return out, nil
}

// deleteScheduledRuns deletes the runs of schedule id that are still
// Scheduled, with their history, task runs, logs and tokens (ON DELETE
// CASCADE), and returns how many it deleted.
func deleteScheduledRuns(ctx context.Context, tx *sql.Tx, id string) (int, error) {
	// schedule_id <> '' lets SQLite use the partial index flow_runs_schedule.
	res, err := tx.ExecContext(ctx,
		`DELETE FROM flow_runs WHERE schedule_id = ? AND schedule_id <> '' AND state = ?`,
		id, state.Scheduled.String())
	if err != nil {
		return 0, dbErr(err)
	}
	n, err := res.RowsAffected()
	return int(n), dbErr(err)
}

// SetSchedulePaused pauses or resumes a schedule; see store.Store.
func (s *Store) SetSchedulePaused(ctx context.Context, id string, paused bool) (store.Schedule, int, error) {
	var (
		out     store.Schedule
		deleted int
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = scanSchedule(tx.QueryRowContext(ctx,
			`UPDATE schedules SET paused = ?, updated_at = CASE WHEN paused = ? THEN updated_at ELSE ? END
			 WHERE id = ? RETURNING `+scheduleCols,
			paused, paused, micros(s.clock()), id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("schedule", id)
		}
		if err != nil {
			return dbErr(err)
		}
		if paused {
			deleted, err = deleteScheduledRuns(ctx, tx, id)
		}
		return err
	})
	if err != nil {
		return store.Schedule{}, 0, fmt.Errorf("%s schedule %q: %w", pauseVerb(paused), id, err)
	}
	return out, deleted, nil
}

// pauseVerb names what SetSchedulePaused does, for errors.
func pauseVerb(paused bool) string {
	if paused {
		return "pause"
	}
	return "resume"
}

// DeleteSchedule deletes a schedule and its runs that are still Scheduled,
// or returns ErrNotFound.
func (s *Store) DeleteSchedule(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM schedules WHERE id = ?`, id)
		if err != nil {
			return dbErr(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return dbErr(err)
		} else if n == 0 {
			return notFound("schedule", id)
		}
		_, err = deleteScheduledRuns(ctx, tx, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete schedule %q: %w", id, err)
	}
	return nil
}
