package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// Page sizes of ListFlowRuns.
const (
	defaultRunPage = 100
	maxRunPage     = 1000
)

// encodeParams checks and compacts params (see store.CompactParams); nil
// means none.
func encodeParams(params json.RawMessage) (*string, error) {
	text, ok, err := store.CompactParams(params)
	if !ok || err != nil {
		return nil, err
	}
	return &text, nil
}

const flowRunCols = `id, project_id, flow_id, flow_version_id, name, params::text, idempotency_key, labels,
	schedule_id, agent_id, scheduled_at, state_json::text, version, attempt, heartbeat_at, recoveries, created_at, updated_at`

func scanFlowRun(row pgx.Row) (store.FlowRun, error) {
	var (
		r         store.FlowRun
		params    *string
		st        string
		heartbeat *time.Time
	)
	if err := row.Scan(&r.ID, &r.ProjectID, &r.FlowID, &r.FlowVersionID, &r.Name, &params, &r.IdempotencyKey,
		&r.Labels, &r.ScheduleID, &r.AgentID, &r.ScheduledAt, &st, &r.Version, &r.Attempt, &heartbeat, &r.Recoveries,
		&r.CreatedAt, &r.UpdatedAt); err != nil {
		return store.FlowRun{}, err
	}
	if params != nil {
		r.Params = json.RawMessage(*params)
	}
	if len(r.Labels) == 0 {
		r.Labels = nil
	}
	var err error
	if r.State, err = store.DecodeState(st); err != nil {
		return store.FlowRun{}, fmt.Errorf("flow run %s: %w", r.ID, err)
	}
	r.ScheduledAt, r.CreatedAt, r.UpdatedAt = r.ScheduledAt.UTC(), r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	if heartbeat != nil {
		r.HeartbeatAt = heartbeat.UTC()
	}
	return r, nil
}

// CreateFlowRun creates a flow run of a flow version; see store.Store.
func (s *Store) CreateFlowRun(ctx context.Context, r store.FlowRun) (store.FlowRun, bool, error) {
	if r.FlowVersionID == "" {
		return store.FlowRun{}, false, fmt.Errorf("create flow run: %w", invalid("a flow run needs a flow version ID"))
	}
	params, err := encodeParams(r.Params)
	if err != nil {
		return store.FlowRun{}, false, fmt.Errorf("create flow run: %w", err)
	}
	labels, err := store.EncodeLabels(r.Labels)
	if err != nil {
		return store.FlowRun{}, false, fmt.Errorf("create flow run: %w", invalid("labels: %v", err))
	}
	st := r.State
	if store.IsZeroState(st) {
		st = state.State{Kind: state.Scheduled}
	}
	st, stJSON, err := store.EncodeState(st, s.clock)
	if err != nil {
		return store.FlowRun{}, false, fmt.Errorf("create flow run: %w", err)
	}

	var (
		out     store.FlowRun
		created bool
	)
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		created = false
		if r.ScheduleID != "" {
			// A run a schedule makes must not slip in after RegisterFlow
			// archived its version, or SetSchedulePaused or DeleteSchedule
			// stopped its schedule, and deleted their Scheduled runs. The
			// flow's row is locked first (the lock the run's foreign key
			// takes anyway), so this waits for a RegisterFlow holding it, and
			// RegisterFlow waits for this; the reads below then see its work.
			_, err := tx.Exec(ctx,
				`SELECT 1 FROM flows WHERE id = (SELECT flow_id FROM flow_versions WHERE id = $1) FOR KEY SHARE`,
				r.FlowVersionID)
			if err != nil {
				return dbErr(err)
			}
		}
		var (
			flowID, projectID string
			archived          bool
		)
		err := tx.QueryRow(ctx,
			`SELECT v.flow_id, f.project_id, v.archived FROM flow_versions v JOIN flows f ON f.id = v.flow_id WHERE v.id = $1`,
			r.FlowVersionID).Scan(&flowID, &projectID, &archived)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("flow version", r.FlowVersionID)
		}
		if err != nil {
			return dbErr(err)
		}
		if r.FlowID != "" && r.FlowID != flowID {
			return invalid("flow version %q is a version of flow %q, not of flow %q", r.FlowVersionID, flowID, r.FlowID)
		}
		if r.ProjectID != "" && r.ProjectID != projectID {
			return invalid("flow version %q is in project %q, not in project %q", r.FlowVersionID, projectID, r.ProjectID)
		}
		existing := func() error {
			out, err = scanFlowRun(tx.QueryRow(ctx,
				`SELECT `+flowRunCols+` FROM flow_runs WHERE flow_id = $1 AND idempotency_key = $2`,
				flowID, r.IdempotencyKey))
			return err
		}
		if r.IdempotencyKey != "" {
			err := existing()
			if err == nil {
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return dbErr(err)
			}
		}
		if r.ScheduleID != "" {
			// FOR SHARE waits for a pause or delete of the schedule in
			// progress, and makes one that starts later wait for this.
			var schedFlow string
			var paused bool
			err := tx.QueryRow(ctx, `SELECT flow_id, paused FROM schedules WHERE id = $1 FOR SHARE`, r.ScheduleID).
				Scan(&schedFlow, &paused)
			if errors.Is(err, pgx.ErrNoRows) {
				return notFound("schedule", r.ScheduleID)
			}
			if err != nil {
				return dbErr(err)
			}
			if err := store.CheckScheduledRun(r.ScheduleID, schedFlow, paused, flowID, r.FlowVersionID, archived); err != nil {
				return err
			}
		}
		id, err := newID()
		if err != nil {
			return err
		}
		now := s.clock()
		scheduled := store.Micro(r.ScheduledAt)
		if scheduled.IsZero() {
			scheduled = now
		}
		// The run and the first state of its history in one statement. A
		// run with the same idempotency key that another transaction
		// inserts meanwhile makes this one insert nothing: it is returned
		// instead.
		tag, err := tx.Exec(ctx,
			`WITH run AS (
				INSERT INTO flow_runs (id, project_id, flow_id, flow_version_id, name, params, idempotency_key, labels,
					schedule_id, scheduled_at, state, state_json, version, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $14, $9, $10, $11, 1, $12, $12)
				ON CONFLICT (flow_id, idempotency_key) WHERE idempotency_key <> '' DO NOTHING
				RETURNING id
			)
			INSERT INTO states (flow_run_id, task_run_id, seq, state, state_json, time)
			SELECT id, NULL, 1, $10, $11, $13 FROM run`,
			id, projectID, flowID, r.FlowVersionID, r.Name, params, r.IdempotencyKey, labels,
			scheduled, st.Kind.String(), stJSON, now, st.Time, r.ScheduleID)
		if err != nil {
			return dbErr(err)
		}
		if tag.RowsAffected() == 0 {
			return dbErr(existing())
		}
		out = store.FlowRun{
			ID:             id,
			ProjectID:      projectID,
			FlowID:         flowID,
			FlowVersionID:  r.FlowVersionID,
			Name:           r.Name,
			IdempotencyKey: r.IdempotencyKey,
			ScheduleID:     r.ScheduleID,
			ScheduledAt:    scheduled,
			State:          st,
			Version:        1,
			CreatedAt:      now,
			UpdatedAt:      now,
		}
		if params != nil {
			out.Params = json.RawMessage(*params)
		}
		if len(r.Labels) > 0 {
			out.Labels = append([]string(nil), r.Labels...)
		}
		created = true
		return nil
	})
	if err != nil {
		return store.FlowRun{}, false, fmt.Errorf("create flow run of flow version %q: %w", r.FlowVersionID, err)
	}
	return out, created, nil
}

// GetFlowRun returns a flow run by ID, or ErrNotFound.
func (s *Store) GetFlowRun(ctx context.Context, id string) (store.FlowRun, error) {
	r, err := scanFlowRun(s.pool.QueryRow(ctx, `SELECT `+flowRunCols+` FROM flow_runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.FlowRun{}, fmt.Errorf("get flow run: %w", notFound("flow run", id))
	}
	if err != nil {
		return store.FlowRun{}, fmt.Errorf("get flow run %q: %w", id, dbErr(err))
	}
	return r, nil
}

// ListFlowRuns returns the flow runs matching f, newest first, and the
// cursor of the next page ("" on the last page). CreatedAfter is inclusive,
// CreatedBefore exclusive.
func (s *Store) ListFlowRuns(ctx context.Context, f store.FlowRunFilter) ([]store.FlowRun, string, error) {
	limit := f.Limit
	switch {
	case limit < 0:
		return nil, "", fmt.Errorf("list flow runs: %w", invalid("page size %d is negative", limit))
	case limit == 0:
		limit = defaultRunPage
	case limit > maxRunPage:
		limit = maxRunPage
	}
	where, args := runFilterSQL(f, s.fold)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Cursor != "" {
		c, err := store.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("list flow runs: %w", err)
		}
		where = append(where, "(created_at, id) < ("+arg(time.UnixMicro(c.Created).UTC())+", "+arg(c.ID)+")")
	}
	q := `SELECT ` + flowRunCols + ` FROM flow_runs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit+1)

	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list flow runs: %w", dbErr(err))
	}
	runs, err := collect(rows, scanFlowRun)
	if err != nil {
		return nil, "", fmt.Errorf("list flow runs: %w", dbErr(err))
	}
	if len(runs) <= limit {
		return runs, "", nil
	}
	runs = runs[:limit]
	last := runs[limit-1]
	return runs, store.EncodeCursor(store.RunCursor{Created: last.CreatedAt.UnixMicro(), ID: last.ID}), nil
}

// runFilterSQL returns the conditions (to be joined by AND) and their
// arguments ($1, $2, ...) that select the flow runs f selects, leaving out
// the page (Limit, Cursor). fold folds the text filter's names and
// messages (Store.fold).
func runFilterSQL(f store.FlowRunFilter, fold string) (where []string, args []any) {
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.ProjectID != "" {
		where = append(where, "project_id = "+arg(f.ProjectID))
	}
	if f.FlowID != "" {
		where = append(where, "flow_id = "+arg(f.FlowID))
	}
	if f.AgentID != "" {
		// agent_id <> '' lets PostgreSQL use the partial index flow_runs_agent.
		where = append(where, "agent_id = "+arg(f.AgentID)+" AND agent_id <> ''")
	}
	if len(f.States) > 0 {
		kinds := make([]string, len(f.States))
		for i, k := range f.States {
			kinds[i] = k.String()
		}
		where = append(where, "state = ANY("+arg(kinds)+")")
	}
	if !f.CreatedAfter.IsZero() {
		where = append(where, "created_at >= "+arg(ceilMicros(f.CreatedAfter)))
	}
	if !f.CreatedBefore.IsZero() {
		where = append(where, "created_at < "+arg(ceilMicros(f.CreatedBefore)))
	}
	if !f.ScheduledBefore.IsZero() {
		where = append(where, "scheduled_at < "+arg(ceilMicros(f.ScheduledBefore)))
	}
	// The filters below read each run's row: labels and params are JSON.
	// They are one condition, a CASE, whose selectivity the planner
	// guesses at one half: multiplying the guesses of each (a thousandth
	// for @>, a two-hundredth for =) would make it think that almost no
	// run matches, and read and sort every run instead of reading the
	// runs newest first until a page is full.
	var scan []string
	if len(f.Labels) > 0 {
		labels, err := json.Marshal(f.Labels)
		if err == nil { // a []string always marshals
			scan = append(scan, "labels @> "+arg(string(labels))+"::jsonb")
		}
	}
	// A parameter's value is a string's text, or else its JSON text, as
	// the SQLite store compares it (params is json: its text is kept as
	// stored, compacted). Names are sorted so that the query text is the
	// same for the same filter.
	for _, name := range slices.Sorted(maps.Keys(f.Params)) {
		n := arg(name) + "::text"
		scan = append(scan, "(CASE WHEN json_typeof(params -> "+n+") = 'string' THEN params ->> "+n+
			" ELSE (params -> "+n+")::text END) = "+arg(f.Params[name])+"::text")
	}
	if f.Text != "" {
		// The needle is folded as the names and messages are (fold): text
		// in the needle's own case always matches, and letters beyond
		// ASCII fold as far as fold folds them. IDs are ASCII.
		n := fmt.Sprintf(fold, arg(f.Text)+"::text")
		scan = append(scan, "(strpos(lower(id), "+n+") > 0 OR strpos("+fmt.Sprintf(fold, "name")+", "+n+") > 0"+
			" OR strpos("+fmt.Sprintf(fold, "coalesce(state_json ->> 'message', '')")+", "+n+") > 0)")
	}
	if len(scan) > 0 {
		where = append(where, "CASE WHEN "+strings.Join(scan, " AND ")+" THEN true ELSE false END")
	}
	return where, args
}

// SetFlowRunState moves a flow run to st if its state version is still
// expect; see store.Store.
func (s *Store) SetFlowRunState(ctx context.Context, id string, expect int64, st state.State) (store.FlowRun, error) {
	st, stJSON, err := store.EncodeState(st, s.clock)
	if err != nil {
		return store.FlowRun{}, fmt.Errorf("set state of flow run %q: %w", id, err)
	}
	// One statement moves the run and records the state, atomically.
	// Moving to Scheduled re-queues the run: no agent has it, and a start
	// time ($7, NULL when none) is when it is due.
	out, err := scanFlowRun(s.pool.QueryRow(ctx,
		`WITH run AS (
			UPDATE flow_runs SET state = $1, state_json = $2, version = version + 1, updated_at = $3,
				agent_id = CASE WHEN $1 = 'Scheduled' THEN '' ELSE agent_id END,
				scheduled_at = CASE WHEN $1 = 'Scheduled' THEN coalesce($7, scheduled_at) ELSE scheduled_at END
			WHERE id = $4 AND version = $5
			RETURNING `+flowRunCols+`
		), history AS (
			INSERT INTO states (flow_run_id, task_run_id, seq, state, state_json, time)
			SELECT id, NULL, version, $1, $2, $6 FROM run
		)
		SELECT * FROM run`,
		st.Kind.String(), stJSON, s.clock(), id, expect, st.Time, nullTime(st.StartAt)))
	if errors.Is(err, pgx.ErrNoRows) {
		var current int64
		err := s.pool.QueryRow(ctx, `SELECT version FROM flow_runs WHERE id = $1`, id).Scan(&current)
		if errors.Is(err, pgx.ErrNoRows) {
			err = notFound("flow run", id)
		} else if err == nil {
			err = reeve.Errorf(reeve.CodeConflict,
				"flow run %q is at state version %d, not %d: it changed since it was read; reload it and retry",
				id, current, expect)
		}
		return store.FlowRun{}, fmt.Errorf("set state of flow run %q to %s: %w", id, st.Kind, dbErr(err))
	}
	if err != nil {
		return store.FlowRun{}, fmt.Errorf("set state of flow run %q to %s: %w", id, st.Kind, dbErr(err))
	}
	return out, nil
}

// deleteRuns deletes the flow runs matching where (a condition on
// flow_runs over args) with their history, and returns how many it deleted.
// Task runs, logs and tokens go with the runs (ON DELETE CASCADE); states
// has no foreign key, so a second statement deletes their rows, one that
// sees every state committed before the runs were deleted (a run's state
// is written only under its row lock, which the delete took).
func deleteRuns(ctx context.Context, tx pgx.Tx, where string, args ...any) (int, error) {
	rows, err := tx.Query(ctx, `DELETE FROM flow_runs WHERE `+where+` RETURNING id`, args...)
	if err != nil {
		return 0, dbErr(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, dbErr(err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM states WHERE flow_run_id = ANY($1)`, ids); err != nil {
		return 0, dbErr(err)
	}
	return len(ids), nil
}
