package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// Page sizes of ListFlowRuns.
const (
	defaultRunPage = 100
	maxRunPage     = 1000
)

// encodeParams checks and compacts params (see store.CompactParams) as a
// nullable column.
func encodeParams(params json.RawMessage) (sql.NullString, error) {
	text, ok, err := store.CompactParams(params)
	return sql.NullString{String: text, Valid: ok}, err
}

const flowRunCols = `id, project_id, flow_id, flow_version_id, name, params, idempotency_key, labels,
	schedule_id, agent_id, scheduled_at, state_json, version, attempt, heartbeat_at, recoveries, created_at, updated_at`

func scanFlowRun(sc interface{ Scan(...any) error }) (store.FlowRun, error) {
	var (
		r                           store.FlowRun
		params                      sql.NullString
		labels, st                  string
		scheduled, created, updated int64
		heartbeat                   sql.NullInt64
	)
	if err := sc.Scan(&r.ID, &r.ProjectID, &r.FlowID, &r.FlowVersionID, &r.Name, &params, &r.IdempotencyKey,
		&labels, &r.ScheduleID, &r.AgentID, &scheduled, &st, &r.Version, &r.Attempt, &heartbeat, &r.Recoveries,
		&created, &updated); err != nil {
		return store.FlowRun{}, err
	}
	if params.Valid {
		r.Params = json.RawMessage(params.String)
	}
	if err := json.Unmarshal([]byte(labels), &r.Labels); err != nil {
		return store.FlowRun{}, fmt.Errorf("flow run %s: labels: %w", r.ID, err)
	}
	if len(r.Labels) == 0 {
		r.Labels = nil
	}
	var err error
	if r.State, err = store.DecodeState(st); err != nil {
		return store.FlowRun{}, fmt.Errorf("flow run %s: %w", r.ID, err)
	}
	r.ScheduledAt, r.CreatedAt, r.UpdatedAt = fromMicros(scheduled), fromMicros(created), fromMicros(updated)
	if heartbeat.Valid {
		r.HeartbeatAt = fromMicros(heartbeat.Int64)
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
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var (
			flowID, projectID string
			archived          bool
		)
		err := tx.QueryRowContext(ctx,
			`SELECT v.flow_id, f.project_id, v.archived FROM flow_versions v JOIN flows f ON f.id = v.flow_id WHERE v.id = ?`,
			r.FlowVersionID).Scan(&flowID, &projectID, &archived)
		if errors.Is(err, sql.ErrNoRows) {
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
		if r.IdempotencyKey != "" {
			out, err = scanFlowRun(tx.QueryRowContext(ctx,
				`SELECT `+flowRunCols+` FROM flow_runs WHERE flow_id = ? AND idempotency_key = ?`,
				flowID, r.IdempotencyKey))
			if err == nil {
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return dbErr(err)
			}
		}
		if r.ScheduleID != "" {
			var schedFlow string
			var paused bool
			err := tx.QueryRowContext(ctx, `SELECT flow_id, paused FROM schedules WHERE id = ?`, r.ScheduleID).
				Scan(&schedFlow, &paused)
			if errors.Is(err, sql.ErrNoRows) {
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
		if params.Valid {
			out.Params = json.RawMessage(params.String)
		}
		if len(r.Labels) > 0 {
			out.Labels = append([]string(nil), r.Labels...)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO flow_runs (id, project_id, flow_id, flow_version_id, name, params, idempotency_key, labels,
				schedule_id, scheduled_at, state, state_json, version, created_at, updated_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
			id, projectID, flowID, r.FlowVersionID, r.Name, params, r.IdempotencyKey, labels,
			r.ScheduleID, micros(scheduled), st.Kind.String(), stJSON, micros(now), micros(now)); err != nil {
			return dbErr(err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO states (flow_run_id, task_run_id, seq, state, state_json, time) VALUES (?, NULL, 1, ?, ?, ?)`,
			id, st.Kind.String(), stJSON, micros(st.Time)); err != nil {
			return dbErr(err)
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
	r, err := scanFlowRun(s.read.QueryRowContext(ctx, `SELECT `+flowRunCols+` FROM flow_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
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
	// Several states are read one by one, each newest first from the
	// index flow_runs_state_created and merged: SQLite would otherwise
	// read every run of the states and sort them, or scan the runs of
	// other states.
	states := slices.Compact(slices.Sorted(slices.Values(f.States)))
	if len(states) > 1 {
		f.States = nil
	}
	where, args := runFilterSQL(f)
	if f.Cursor != "" {
		c, err := store.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("list flow runs: %w", err)
		}
		where = append(where, "(created_at < ? OR (created_at = ? AND id < ?))")
		args = append(args, c.Created, c.Created, c.ID)
	}
	var q string
	if len(states) > 1 {
		branches := make([]string, len(states))
		var all []any
		for i, k := range states {
			branches[i] = `SELECT * FROM (SELECT ` + flowRunCols + ` FROM flow_runs WHERE ` +
				strings.Join(append([]string{"state = ?"}, where...), " AND ") +
				` ORDER BY created_at DESC, id DESC LIMIT ?)`
			all = append(append(append(all, k.String()), args...), limit+1)
		}
		q, args = strings.Join(branches, ` UNION ALL `), all
	} else {
		q = `SELECT ` + flowRunCols + ` FROM flow_runs`
		if len(where) > 0 {
			q += ` WHERE ` + strings.Join(where, " AND ")
		}
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit+1)

	rows, err := s.read.QueryContext(ctx, q, args...)
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
	return runs, store.EncodeCursor(store.RunCursor{Created: micros(last.CreatedAt), ID: last.ID}), nil
}

// runFilterSQL returns the conditions (to be joined by AND) and their
// arguments that select the flow runs f selects, leaving out the page
// (Limit, Cursor).
func runFilterSQL(f store.FlowRunFilter) (where []string, args []any) {
	if f.ProjectID != "" {
		where, args = append(where, "project_id = ?"), append(args, f.ProjectID)
	}
	if f.FlowID != "" {
		where, args = append(where, "flow_id = ?"), append(args, f.FlowID)
	}
	if f.AgentID != "" {
		// agent_id <> '' lets SQLite use the partial index flow_runs_agent.
		where, args = append(where, "agent_id = ? AND agent_id <> ''"), append(args, f.AgentID)
	}
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, k := range f.States {
			args = append(args, k.String())
		}
	}
	if !f.CreatedAfter.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, ceilMicros(f.CreatedAfter))
	}
	if !f.CreatedBefore.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, ceilMicros(f.CreatedBefore))
	}
	if !f.ScheduledBefore.IsZero() {
		where, args = append(where, "scheduled_at < ?"), append(args, ceilMicros(f.ScheduledBefore))
	}
	// The filters below read each run's row: labels and params are JSON.
	for _, l := range f.Labels {
		where = append(where, "EXISTS (SELECT 1 FROM json_each(flow_runs.labels) WHERE value = ?)")
		args = append(args, l)
	}
	// A parameter's value is a string's text, or else its JSON text
	// (params -> fullkey), as the PostgreSQL store compares it. Names are
	// sorted so that the query text is the same for the same filter.
	names := make([]string, 0, len(f.Params))
	for name := range f.Params {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		where = append(where, `EXISTS (SELECT 1 FROM json_each(flow_runs.params) p WHERE p.key = ?
			AND (CASE WHEN p.type = 'text' THEN p.value ELSE flow_runs.params -> p.fullkey END) = ?)`)
		args = append(args, name, f.Params[name])
	}
	if f.Text != "" {
		// SQLite's lower() folds only ASCII letters: names and messages go
		// through reeve_fold, Go's strings.ToLower as for the needle
		// (fold.go). IDs are ASCII.
		where = append(where, `(instr(lower(id), ?) > 0 OR instr(`+foldFunc+`(name), ?) > 0
			OR instr(`+foldFunc+`(coalesce(json_extract(state_json, '$.message'), '')), ?) > 0)`)
		needle := strings.ToLower(f.Text)
		args = append(args, needle, needle, needle)
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
	var out store.FlowRun
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.clock()
		var err error
		// Moving to Scheduled re-queues the run: no agent has it, and a
		// start time (?6, NULL when none) is when it is due.
		out, err = scanFlowRun(tx.QueryRowContext(ctx,
			`UPDATE flow_runs SET state = ?1, state_json = ?2, version = version + 1, updated_at = ?3,
				agent_id = CASE WHEN ?1 = 'Scheduled' THEN '' ELSE agent_id END,
				scheduled_at = CASE WHEN ?1 = 'Scheduled' THEN coalesce(?6, scheduled_at) ELSE scheduled_at END
			 WHERE id = ?4 AND version = ?5 RETURNING `+flowRunCols,
			st.Kind.String(), stJSON, micros(now), id, expect, nullMicros(st.StartAt)))
		if errors.Is(err, sql.ErrNoRows) {
			var current int64
			err := tx.QueryRowContext(ctx, `SELECT version FROM flow_runs WHERE id = ?`, id).Scan(&current)
			if errors.Is(err, sql.ErrNoRows) {
				return notFound("flow run", id)
			}
			if err != nil {
				return dbErr(err)
			}
			return reeve.Errorf(reeve.CodeConflict,
				"flow run %q is at state version %d, not %d: it changed since it was read; reload it and retry",
				id, current, expect)
		}
		if err != nil {
			return dbErr(err)
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO states (flow_run_id, task_run_id, seq, state, state_json, time) VALUES (?, NULL, ?, ?, ?, ?)`,
			id, out.Version, st.Kind.String(), stJSON, micros(st.Time))
		return dbErr(err)
	})
	if err != nil {
		return store.FlowRun{}, fmt.Errorf("set state of flow run %q to %s: %w", id, st.Kind, err)
	}
	return out, nil
}
