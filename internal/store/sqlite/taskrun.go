package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// flowRunExists returns ErrNotFound unless the flow run exists.
func flowRunExists(ctx context.Context, q queryer, id string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM flow_runs WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("flow run", id)
	}
	return dbErr(err)
}

// checkAttempt returns ErrNotFound unless the flow run exists, and
// ErrConflict unless attempt is 0 or its current attempt (see
// store.CheckAttempt).
func checkAttempt(ctx context.Context, q queryer, id string, attempt int) error {
	var (
		current int
		kind    string
	)
	err := q.QueryRowContext(ctx, `SELECT attempt, state FROM flow_runs WHERE id = ?`, id).Scan(&current, &kind)
	if errors.Is(err, sql.ErrNoRows) {
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
	err := q.QueryRowContext(ctx, `SELECT 1 FROM task_runs WHERE id = ? AND flow_run_id = ?`, id, flowRunID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return reeve.Errorf(reeve.CodeNotFound, "task run %q not found in flow run %q", id, flowRunID)
	}
	return dbErr(err)
}

// segmentSize bounds the rows of one multi-row statement (and so its bound
// parameters, 9 a row at most, far below SQLite's limit) and the number of
// statements the writer keeps prepared (3 shapes of each size).
const segmentSize = 100

// The multi-row statements of WriteTaskRunStates, for n rows.
func createTaskRunsSQL(n int) string {
	return `INSERT INTO task_runs (id, flow_run_id, key, task, map_index, state, state_json, version, created_at, updated_at) VALUES ` +
		rowsSQL("(?, ?, ?, ?, ?, ?, ?, 1, ?, ?)", n)
}

func updateTaskRunsSQL(n int) string {
	return `UPDATE task_runs SET state = w.column3, state_json = w.column4, version = task_runs.version + 1, updated_at = ?
	 FROM (VALUES ` + rowsSQL("(?, ?, ?, ?)", n) + `) AS w
	 WHERE task_runs.flow_run_id = ? AND task_runs.key = w.column1 AND task_runs.version = w.column2
	 RETURNING id, key, task, map_index, version, created_at`
}

func insertStatesSQL(n int) string {
	return `INSERT INTO states (flow_run_id, task_run_id, seq, state, state_json, time) VALUES ` +
		rowsSQL("(?, ?, ?, ?, ?, ?)", n)
}

// rowsSQL returns n copies of row, separated by commas.
func rowsSQL(row string, n int) string {
	var b strings.Builder
	b.Grow(n * (len(row) + 2))
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

// segment is a run of consecutive writes to distinct task runs, writes
// [start, end) of a batch. Within a segment order does not matter, so it
// takes two statements whatever its size: one multi-row INSERT for the
// task runs it creates, one UPDATE ... FROM (VALUES ...) for those it
// moves on.
type segment struct {
	start, end       int
	create, update   *sql.Stmt // nil when the segment has no such writes
	ncreate, nupdate int
}

// historyChunk is a chunk of at most segmentSize history rows, [start, end).
type historyChunk struct {
	start, end int
	insert     *sql.Stmt
}

// WriteTaskRunStates applies writes in order, in one transaction; see
// store.Store.
func (s *Store) WriteTaskRunStates(ctx context.Context, flowRunID string, attempt int, writes []store.TaskRunWrite) ([]store.TaskRun, error) {
	// Encode and plan outside the transaction: the writer connection is
	// held only for the SQL.
	enc := make([]encodedWrite, len(writes))
	for i, w := range writes {
		st, js, err := store.CheckTaskRunWrite(i, w, s.clock)
		if err != nil {
			return nil, fmt.Errorf("write task run states of flow run %q: %w", flowRunID, err)
		}
		enc[i] = encodedWrite{TaskRunWrite: w, st: st, kind: st.Kind.String(), js: js}
		if w.Expect == 0 {
			if enc[i].id, err = newID(); err != nil {
				return nil, fmt.Errorf("write task run states of flow run %q: %w", flowRunID, err)
			}
		}
	}
	segs, hist, err := s.plan(ctx, enc)
	if err != nil {
		return nil, fmt.Errorf("write task run states of flow run %q: %w", flowRunID, err)
	}

	out := make([]store.TaskRun, len(writes))
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// The write transaction holds the database: a claim that
		// supersedes the attempt comes before it or after it.
		if err := checkAttempt(ctx, tx, flowRunID, attempt); err != nil {
			return err
		}
		now := s.clock()
		for _, sg := range segs {
			if err := applySegment(ctx, tx, flowRunID, now, sg, enc[sg.start:sg.end], out[sg.start:sg.end]); err != nil {
				return err
			}
		}
		for _, h := range hist {
			args := make([]any, 0, 6*(h.end-h.start))
			for i := h.start; i < h.end; i++ {
				args = append(args, flowRunID, out[i].ID, out[i].Version, enc[i].kind, enc[i].js, micros(enc[i].st.Time))
			}
			if _, err := tx.StmtContext(ctx, h.insert).ExecContext(ctx, args...); err != nil {
				return dbErr(err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("write task run states of flow run %q: %w", flowRunID, err)
	}
	return out, nil
}

// plan cuts writes into segments and history chunks, with their
// statements prepared.
func (s *Store) plan(ctx context.Context, enc []encodedWrite) ([]segment, []historyChunk, error) {
	var segs []segment
	for start := 0; start < len(enc); {
		sg := segment{start: start, end: start}
		keys := make(map[string]bool, min(segmentSize, len(enc)-start))
		for sg.end < len(enc) && sg.end-start < segmentSize && !keys[enc[sg.end].Key] {
			keys[enc[sg.end].Key] = true
			if enc[sg.end].Expect == 0 {
				sg.ncreate++
			} else {
				sg.nupdate++
			}
			sg.end++
		}
		var err error
		if sg.ncreate > 0 {
			if sg.create, err = s.prepared(ctx, createTaskRunsSQL(sg.ncreate)); err != nil {
				return nil, nil, err
			}
		}
		if sg.nupdate > 0 {
			if sg.update, err = s.prepared(ctx, updateTaskRunsSQL(sg.nupdate)); err != nil {
				return nil, nil, err
			}
		}
		segs = append(segs, sg)
		start = sg.end
	}
	var hist []historyChunk
	for start := 0; start < len(enc); start += segmentSize {
		h := historyChunk{start: start, end: min(start+segmentSize, len(enc))}
		var err error
		if h.insert, err = s.prepared(ctx, insertStatesSQL(h.end-h.start)); err != nil {
			return nil, nil, err
		}
		hist = append(hist, h)
	}
	return segs, hist, nil
}

// encodedWrite is a write with its state encoded, and the ID of the task
// run it creates (Expect 0).
type encodedWrite struct {
	store.TaskRunWrite
	st   state.State
	kind string
	js   string
	id   string
}

// applySegment applies the writes of a segment and fills out with the task
// runs written.
func applySegment(ctx context.Context, tx *sql.Tx, flowRunID string, now time.Time, sg segment, writes []encodedWrite, out []store.TaskRun) error {
	if sg.create != nil {
		args := make([]any, 0, 9*sg.ncreate)
		for i, w := range writes {
			if w.Expect != 0 {
				continue
			}
			args = append(args, w.id, flowRunID, w.Key, w.Task, w.MapIndex, w.kind, w.js, micros(now), micros(now))
			out[i] = store.TaskRun{
				ID: w.id, FlowRunID: flowRunID, Key: w.Key, Task: w.Task, MapIndex: w.MapIndex,
				State: w.st, Version: 1, CreatedAt: now, UpdatedAt: now,
			}
		}
		_, err := tx.StmtContext(ctx, sg.create).ExecContext(ctx, args...)
		if isConstraint(err) {
			return createConflict(ctx, tx, flowRunID, sg.start, writes)
		}
		if err != nil {
			return dbErr(err)
		}
	}
	if sg.update == nil {
		return nil
	}

	args := make([]any, 0, 2+4*sg.nupdate)
	args = append(args, micros(now))
	for _, w := range writes {
		if w.Expect != 0 {
			args = append(args, w.Key, w.Expect, w.kind, w.js)
		}
	}
	args = append(args, flowRunID)
	rows, err := tx.StmtContext(ctx, sg.update).QueryContext(ctx, args...)
	if err != nil {
		return dbErr(err)
	}
	type updated struct {
		id, task         string
		mapIndex         int
		version, created int64
	}
	done := make(map[string]updated, sg.nupdate)
	for rows.Next() {
		var (
			u   updated
			key string
		)
		if err := rows.Scan(&u.id, &key, &u.task, &u.mapIndex, &u.version, &u.created); err != nil {
			rows.Close()
			return dbErr(err)
		}
		done[key] = u
	}
	if err := rows.Close(); err != nil {
		return dbErr(err)
	}
	if err := rows.Err(); err != nil {
		return dbErr(err)
	}
	for i, w := range writes {
		if w.Expect == 0 {
			continue
		}
		u, ok := done[w.Key]
		if !ok {
			return taskRunConflict(ctx, tx, flowRunID, sg.start+i, w.TaskRunWrite)
		}
		out[i] = store.TaskRun{
			ID: u.id, FlowRunID: flowRunID, Key: w.Key, Task: u.task, MapIndex: u.mapIndex,
			State: w.st, Version: u.version, CreatedAt: fromMicros(u.created), UpdatedAt: now,
		}
	}
	return nil
}

// createConflict explains why a segment's creates did not apply: the first
// of them whose task run exists already.
func createConflict(ctx context.Context, tx *sql.Tx, flowRunID string, first int, writes []encodedWrite) error {
	for i, w := range writes {
		if w.Expect != 0 {
			continue
		}
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM task_runs WHERE flow_run_id = ? AND key = ?`, flowRunID, w.Key).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return dbErr(err)
		}
		return reeve.Errorf(reeve.CodeConflict,
			"task run %q exists already, but write %d expects to create it (version 0): reload it and retry", w.Key, first+i)
	}
	return reeve.Errorf(reeve.CodeConflict, "creating task runs of flow run %q broke a constraint", flowRunID)
}

// taskRunConflict explains why write i, which expects a version, did not
// apply.
func taskRunConflict(ctx context.Context, tx *sql.Tx, flowRunID string, i int, w store.TaskRunWrite) error {
	var current int64
	err := tx.QueryRowContext(ctx, `SELECT version FROM task_runs WHERE flow_run_id = ? AND key = ?`,
		flowRunID, w.Key).Scan(&current)
	if errors.Is(err, sql.ErrNoRows) {
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

const taskRunCols = `id, flow_run_id, key, task, map_index, state_json, version, created_at, updated_at`

func scanTaskRun(sc interface{ Scan(...any) error }) (store.TaskRun, error) {
	var (
		tr               store.TaskRun
		st               string
		created, updated int64
	)
	if err := sc.Scan(&tr.ID, &tr.FlowRunID, &tr.Key, &tr.Task, &tr.MapIndex, &st, &tr.Version, &created, &updated); err != nil {
		return store.TaskRun{}, err
	}
	var err error
	if tr.State, err = store.DecodeState(st); err != nil {
		return store.TaskRun{}, fmt.Errorf("task run %s: %w", tr.ID, err)
	}
	tr.CreatedAt, tr.UpdatedAt = fromMicros(created), fromMicros(updated)
	return tr, nil
}

// ListTaskRuns returns a flow run's task runs, by key.
func (s *Store) ListTaskRuns(ctx context.Context, flowRunID string) ([]store.TaskRun, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT `+taskRunCols+` FROM task_runs WHERE flow_run_id = ? ORDER BY key`, flowRunID)
	if err != nil {
		return nil, fmt.Errorf("list task runs of flow run %q: %w", flowRunID, dbErr(err))
	}
	out, err := collect(rows, scanTaskRun)
	if err != nil {
		return nil, fmt.Errorf("list task runs of flow run %q: %w", flowRunID, dbErr(err))
	}
	if len(out) == 0 {
		if err := flowRunExists(ctx, s.read, flowRunID); err != nil {
			return nil, fmt.Errorf("list task runs: %w", err)
		}
	}
	return out, nil
}

// History returns the states of a flow run (taskRunID "") or of one of its
// task runs, oldest first.
func (s *Store) History(ctx context.Context, flowRunID, taskRunID string) ([]state.State, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if taskRunID == "" {
		rows, err = s.read.QueryContext(ctx,
			`SELECT state_json FROM states WHERE flow_run_id = ? AND task_run_id IS NULL ORDER BY seq`, flowRunID)
	} else {
		rows, err = s.read.QueryContext(ctx,
			`SELECT state_json FROM states WHERE flow_run_id = ? AND task_run_id = ? ORDER BY seq`, flowRunID, taskRunID)
	}
	if err != nil {
		return nil, fmt.Errorf("history of flow run %q: %w", flowRunID, dbErr(err))
	}
	out, err := collect(rows, func(sc interface{ Scan(...any) error }) (state.State, error) {
		var js string
		if err := sc.Scan(&js); err != nil {
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
			err = flowRunExists(ctx, s.read, flowRunID)
		} else {
			err = taskRunExists(ctx, s.read, flowRunID, taskRunID)
		}
		if err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
	}
	return out, nil
}
