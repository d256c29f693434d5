package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

const scheduleCols = `id, project_id, flow_id, cron, timezone, interval_us, anchor, params::text, paused, from_spec,
	created_at, updated_at`

func scanSchedule(row pgx.Row) (store.Schedule, error) {
	var (
		out      store.Schedule
		interval int64
		anchor   *time.Time
		params   *string
	)
	if err := row.Scan(&out.ID, &out.ProjectID, &out.FlowID, &out.Cron, &out.Timezone, &interval, &anchor, &params,
		&out.Paused, &out.FromSpec, &out.CreatedAt, &out.UpdatedAt); err != nil {
		return store.Schedule{}, err
	}
	out.Interval = time.Duration(interval) * time.Microsecond
	if anchor != nil {
		out.Anchor = anchor.UTC()
	}
	if params != nil {
		out.Params = json.RawMessage(*params)
	}
	out.CreatedAt, out.UpdatedAt = out.CreatedAt.UTC(), out.UpdatedAt.UTC()
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
	var p *string
	if ok {
		p = &params
	}
	now := s.clock()
	// The project comes from the flow; no row means no flow.
	out, err := scanSchedule(s.pool.QueryRow(ctx,
		`INSERT INTO schedules (id, project_id, flow_id, cron, timezone, interval_us, anchor, params, paused, from_spec,
			created_at, updated_at)
		 SELECT $1, f.project_id, f.id, $3, $4, $5, $6, $7, $8, $9, $10, $10 FROM flows f WHERE f.id = $2
		 RETURNING `+scheduleCols,
		id, sc.FlowID, sc.Cron, sc.Timezone, sc.Interval.Microseconds(), nullTime(sc.Anchor), p, sc.Paused, sc.FromSpec, now))
	if errors.Is(err, pgx.ErrNoRows) || isForeignKeyViolation(err) {
		return store.Schedule{}, fmt.Errorf("create schedule: %w", notFound("flow", sc.FlowID))
	}
	if err != nil {
		return store.Schedule{}, fmt.Errorf("create schedule of flow %q: %w", sc.FlowID, dbErr(err))
	}
	return out, nil
}

// GetSchedule returns a schedule by ID, or ErrNotFound.
func (s *Store) GetSchedule(ctx context.Context, id string) (store.Schedule, error) {
	sc, err := scanSchedule(s.pool.QueryRow(ctx, `SELECT `+scheduleCols+` FROM schedules WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
		rows pgx.Rows
		err  error
	)
	if flowID == "" {
		rows, err = s.pool.Query(ctx, `SELECT `+scheduleCols+` FROM schedules ORDER BY created_at, id`)
	} else {
		rows, err = s.pool.Query(ctx,
			`SELECT `+scheduleCols+` FROM schedules WHERE flow_id = $1 ORDER BY created_at, id`, flowID)
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
		err := s.pool.QueryRow(ctx, `SELECT 1 FROM flows WHERE id = $1`, flowID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("list schedules: %w", notFound("flow", flowID))
		}
		if err != nil {
			return nil, fmt.Errorf("list schedules of flow %q: %w", flowID, dbErr(err))
		}
	}
	return out, nil
}

// deleteScheduledRuns deletes the runs of schedule id that are still
// Scheduled and returns how many it deleted. The redundant test that
// schedule_id is not empty lets a generic plan use the partial index
// flow_runs_schedule.
func deleteScheduledRuns(ctx context.Context, tx pgx.Tx, id string) (int, error) {
	return deleteRuns(ctx, tx, `schedule_id = $1 AND schedule_id <> '' AND state = $2`, id, state.Scheduled.String())
}

// SetSchedulePaused pauses or resumes a schedule; see store.Store.
func (s *Store) SetSchedulePaused(ctx context.Context, id string, paused bool) (store.Schedule, int, error) {
	var (
		out     store.Schedule
		deleted int
	)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		// The update locks the schedule's row first: CreateFlowRun, which
		// reads it FOR SHARE, cannot add a run of the schedule until this
		// commits, and the delete below, a statement of its own, sees the
		// runs it added before.
		out, err = scanSchedule(tx.QueryRow(ctx,
			`UPDATE schedules SET paused = $1, updated_at = CASE WHEN paused = $1 THEN updated_at ELSE $2 END
			 WHERE id = $3 RETURNING `+scheduleCols,
			paused, s.clock(), id))
		if errors.Is(err, pgx.ErrNoRows) {
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
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The schedule first, as in SetSchedulePaused.
		tag, err := tx.Exec(ctx, `DELETE FROM schedules WHERE id = $1`, id)
		if err != nil {
			return dbErr(err)
		}
		if tag.RowsAffected() == 0 {
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
