package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// flowRunExists returns ErrNotFound unless the flow run exists.
func flowRunExists(ctx context.Context, q queryer, id string) error {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM flow_runs WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound("flow run", id)
	}
	return dbErr(err)
}

// lockAttempt returns ErrNotFound unless the flow run exists, and
// ErrConflict unless attempt is its current attempt (see
// store.CheckAttempt). It locks the run's row FOR SHARE until the
// transaction ends, so a claim or a recovery (which update the row) waits
// for the writes of the attempt checked, or they see its new attempt.
func lockAttempt(ctx context.Context, tx pgx.Tx, id string, attempt int) error {
	var (
		current int
		kind    string
	)
	err := tx.QueryRow(ctx, `SELECT attempt, state FROM flow_runs WHERE id = $1 FOR SHARE`, id).Scan(&current, &kind)
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound("flow run", id)
	}
	if err != nil {
		return dbErr(err)
	}
	k, err := state.ParseKind(kind)
	if err != nil {
		return fmt.Errorf("flow run %q: %w", id, err)
	}
	return store.CheckWriter(id, attempt, current, k)
}

// taskRunExists returns ErrNotFound unless the task run exists in the flow
// run.
func taskRunExists(ctx context.Context, q queryer, flowRunID, id string) error {
	if err := flowRunExists(ctx, q, flowRunID); err != nil {
		return err
	}
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM task_runs WHERE id = $1 AND flow_run_id = $2`, id, flowRunID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return reeve.Errorf(reeve.CodeNotFound, "task run %q not found in flow run %q", id, flowRunID)
	}
	return dbErr(err)
}

// writeTaskRuns is the one statement of WriteTaskRunStates. It takes one
// array per column and touches every row in one go, so a batch of writes
// costs the same few round trips whatever its size: it creates task runs
// whose key is free ($3-$9), moves task runs still at their expected version
// ($10-$14), records every write's state in the history in the order of
// writes ($15-$19), and returns whether the flow run exists and the task
// runs it created or moved.
const writeTaskRuns = `
	WITH run AS (
		SELECT count(*) AS n FROM flow_runs WHERE id = $1
	), created AS (
		INSERT INTO task_runs (id, flow_run_id, key, task, map_index, state, state_json, version, created_at, updated_at)
		SELECT c.id, $1, c.key, c.task, c.map_index, c.kind, c.js::json, c.version, $2, $2
		FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::bigint[])
			AS c(id, key, task, map_index, kind, js, version)
		ON CONFLICT (flow_run_id, key) DO NOTHING
		RETURNING true AS created, key, id, task, map_index, created_at
	), updated AS (
		UPDATE task_runs t SET state = u.kind, state_json = u.js::json, version = u.version, updated_at = $2
		FROM unnest($10::text[], $11::bigint[], $12::text[], $13::text[], $14::bigint[])
			AS u(key, expect, kind, js, version)
		WHERE t.flow_run_id = $1 AND t.key = u.key AND t.version = u.expect
		RETURNING false AS created, t.key, t.id, t.task, t.map_index, t.created_at
	), done AS (
		SELECT * FROM created UNION ALL SELECT * FROM updated
	), history AS (
		INSERT INTO states (flow_run_id, task_run_id, seq, state, state_json, time)
		SELECT $1, d.id, h.seq, h.kind, h.js::json, h.time
		FROM unnest($15::text[], $16::bigint[], $17::text[], $18::text[], $19::timestamptz[]) WITH ORDINALITY
			AS h(key, seq, kind, js, time, ord)
		JOIN done d ON d.key = h.key
		ORDER BY h.ord
	)
	SELECT run.n, d.created, d.key, d.id, d.task, d.map_index, d.created_at
	FROM run LEFT JOIN done d ON true`

// WriteTaskRunStates applies writes in order, in one transaction; see
// store.Store.
//
// The writes are applied as one set: each task run named by the writes is
// created or updated once, to its last state and version, and every write's
// state goes to the history. The versions a task run passes through within
// the batch are checked here; only the first write of each task run is
// checked against the database. A failure is reported for the first write
// that would have failed had they been applied one by one.
func (s *Store) WriteTaskRunStates(ctx context.Context, flowRunID string, attempt int, writes []store.TaskRunWrite) ([]store.TaskRun, error) {
	fail := func(err error) ([]store.TaskRun, error) {
		return nil, fmt.Errorf("write task run states of flow run %q: %w", flowRunID, err)
	}
	now := s.clock()

	// One entry per task run named by the writes, in order of first write.
	type run struct {
		first   int   // index of its first write
		last    int   // index of its last write
		expect  int64 // what the first write expects
		version int64 // its version after the writes
	}
	var (
		runs   []*run
		byKey  = make(map[string]*run, len(writes))
		out    = make([]store.TaskRun, len(writes))
		kinds  = make([]string, len(writes))
		states = make([]string, len(writes))
		times  = make([]time.Time, len(writes))
		keys   = make([]string, len(writes))
		seqs   = make([]int64, len(writes))
		// batchErr is the first write that fails against the versions
		// reached by earlier writes of this batch.
		batchErr   error
		batchErrAt = len(writes)
	)
	for i, w := range writes {
		st, js, err := store.CheckTaskRunWrite(i, w, s.clock)
		if err != nil {
			return fail(err)
		}
		kinds[i], states[i], times[i], keys[i] = st.Kind.String(), js, st.Time, w.Key
		seqs[i] = w.Expect + 1
		out[i] = store.TaskRun{FlowRunID: flowRunID, Key: w.Key, State: st, Version: w.Expect + 1, UpdatedAt: now}

		r := byKey[w.Key]
		if r == nil {
			r = &run{first: i, expect: w.Expect}
			byKey[w.Key] = r
			runs = append(runs, r)
		} else if w.Expect != r.version && batchErr == nil {
			if w.Expect == 0 {
				batchErr = reeve.Errorf(reeve.CodeConflict,
					"task run %q exists already, but write %d expects to create it (version 0): reload it and retry", w.Key, i)
			} else {
				batchErr = reeve.Errorf(reeve.CodeConflict,
					"task run %q is at version %d, but write %d expects version %d: it changed since it was read; reload it and retry",
					w.Key, r.version, i, w.Expect)
			}
			batchErrAt = i
		}
		r.last, r.version = i, w.Expect+1
	}

	// The columns of the creates and of the updates, one row per task run.
	var (
		cID, cKey, cTask, cKind, cJS []string
		cMapIndex                    []int64
		cVersion                     []int64
		uKey, uKind, uJS             []string
		uExpect, uVersion            []int64
	)
	for _, r := range runs {
		w := writes[r.first]
		if r.expect == 0 {
			id, err := newID()
			if err != nil {
				return fail(err)
			}
			cID, cKey, cTask = append(cID, id), append(cKey, w.Key), append(cTask, w.Task)
			cMapIndex = append(cMapIndex, int64(w.MapIndex))
			cKind, cJS, cVersion = append(cKind, kinds[r.last]), append(cJS, states[r.last]), append(cVersion, r.version)
		} else {
			uKey, uExpect = append(uKey, w.Key), append(uExpect, r.expect)
			uKind, uJS, uVersion = append(uKind, kinds[r.last]), append(uJS, states[r.last]), append(uVersion, r.version)
		}
	}

	err := s.inTx(ctx, func(tx pgx.Tx) error {
		type row struct {
			id, task string
			mapIndex int
			created  time.Time
		}
		var (
			exists  int64
			created = make(map[string]row, len(cKey))
			updated = make(map[string]row, len(uKey))
		)
		if attempt != 0 {
			if err := lockAttempt(ctx, tx, flowRunID, attempt); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, writeTaskRuns, flowRunID, now,
			cID, cKey, cTask, cMapIndex, cKind, cJS, cVersion,
			uKey, uExpect, uKind, uJS, uVersion,
			keys, seqs, kinds, states, times)
		if err != nil {
			return dbErr(err)
		}
		for rows.Next() {
			var (
				isCreate      *bool
				key, id, task *string
				mapIndex      *int
				createdAt     *time.Time
			)
			if err := rows.Scan(&exists, &isCreate, &key, &id, &task, &mapIndex, &createdAt); err != nil {
				rows.Close()
				return dbErr(err)
			}
			if key == nil {
				continue // no task run was created or moved
			}
			r := row{id: *id, task: *task, mapIndex: *mapIndex, created: createdAt.UTC()}
			if *isCreate {
				created[*key] = r
			} else {
				updated[*key] = r
			}
		}
		if err := rows.Err(); err != nil {
			if isForeignKeyViolation(err) {
				// Creating task runs of a missing flow run fails on its
				// foreign key; say which record is missing instead.
				return notFound("flow run", flowRunID)
			}
			return dbErr(err)
		}
		if exists == 0 {
			return notFound("flow run", flowRunID)
		}

		// The first write that failed against the database, if it came
		// before the first that failed within the batch.
		for _, r := range runs {
			if r.first > batchErrAt {
				break
			}
			w := writes[r.first]
			if _, ok := created[w.Key]; r.expect == 0 && !ok {
				return reeve.Errorf(reeve.CodeConflict,
					"task run %q exists already, but write %d expects to create it (version 0): reload it and retry", w.Key, r.first)
			}
			if _, ok := updated[w.Key]; r.expect != 0 && !ok {
				return staleWrite(ctx, tx, flowRunID, r.first, w)
			}
		}
		if batchErr != nil {
			return batchErr
		}

		for i, w := range writes {
			r, ok := updated[w.Key]
			if !ok {
				r = created[w.Key]
			}
			tr := &out[i]
			tr.ID, tr.Task, tr.MapIndex, tr.CreatedAt = r.id, r.task, r.mapIndex, r.created
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return out, nil
}

// staleWrite explains why write i, the first of its task run in the batch,
// which expects a version, did not apply.
func staleWrite(ctx context.Context, tx pgx.Tx, flowRunID string, i int, w store.TaskRunWrite) error {
	var current int64
	err := tx.QueryRow(ctx, `SELECT version FROM task_runs WHERE flow_run_id = $1 AND key = $2`,
		flowRunID, w.Key).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return reeve.Errorf(reeve.CodeConflict,
			"task run %q does not exist, but write %d expects it at version %d: create it with version 0", w.Key, i, w.Expect)
	}
	if err != nil {
		return dbErr(err)
	}
	return reeve.Errorf(reeve.CodeConflict,
		"task run %q is at version %d, but write %d expects version %d: it changed since it was read; reload it and retry",
		w.Key, current, i, w.Expect)
}

const taskRunCols = `id, flow_run_id, key, task, map_index, state_json::text, version, created_at, updated_at`

func scanTaskRun(row pgx.Row) (store.TaskRun, error) {
	var (
		tr store.TaskRun
		st string
	)
	if err := row.Scan(&tr.ID, &tr.FlowRunID, &tr.Key, &tr.Task, &tr.MapIndex, &st, &tr.Version, &tr.CreatedAt, &tr.UpdatedAt); err != nil {
		return store.TaskRun{}, err
	}
	var err error
	if tr.State, err = store.DecodeState(st); err != nil {
		return store.TaskRun{}, fmt.Errorf("task run %s: %w", tr.ID, err)
	}
	tr.CreatedAt, tr.UpdatedAt = tr.CreatedAt.UTC(), tr.UpdatedAt.UTC()
	return tr, nil
}

// ListTaskRuns returns a flow run's task runs, by key.
func (s *Store) ListTaskRuns(ctx context.Context, flowRunID string) ([]store.TaskRun, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+taskRunCols+` FROM task_runs WHERE flow_run_id = $1 ORDER BY key`, flowRunID)
	if err != nil {
		return nil, fmt.Errorf("list task runs of flow run %q: %w", flowRunID, dbErr(err))
	}
	out, err := collect(rows, scanTaskRun)
	if err != nil {
		return nil, fmt.Errorf("list task runs of flow run %q: %w", flowRunID, dbErr(err))
	}
	if len(out) == 0 {
		if err := flowRunExists(ctx, s.pool, flowRunID); err != nil {
			return nil, fmt.Errorf("list task runs: %w", err)
		}
	}
	return out, nil
}

// History returns the states of a flow run (taskRunID "") or of one of its
// task runs, oldest first.
func (s *Store) History(ctx context.Context, flowRunID, taskRunID string) ([]state.State, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if taskRunID == "" {
		rows, err = s.pool.Query(ctx,
			`SELECT state_json::text FROM states WHERE flow_run_id = $1 AND task_run_id IS NULL ORDER BY seq, id`, flowRunID)
	} else {
		rows, err = s.pool.Query(ctx,
			`SELECT state_json::text FROM states WHERE flow_run_id = $1 AND task_run_id = $2 ORDER BY seq, id`, flowRunID, taskRunID)
	}
	if err != nil {
		return nil, fmt.Errorf("history of flow run %q: %w", flowRunID, dbErr(err))
	}
	out, err := collect(rows, func(row pgx.Row) (state.State, error) {
		var js string
		if err := row.Scan(&js); err != nil {
			return state.State{}, err
		}
		return store.DecodeState(js)
	})
	if err != nil {
		return nil, fmt.Errorf("history of flow run %q: %w", flowRunID, dbErr(err))
	}
	if len(out) == 0 {
		// Every run has at least one state: none means no run.
		if taskRunID == "" {
			err = flowRunExists(ctx, s.pool, flowRunID)
		} else {
			err = taskRunExists(ctx, s.pool, flowRunID, taskRunID)
		}
		if err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
	}
	return out, nil
}
