package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/reevehq/reeve/internal/store"
)

// Page sizes of ListLogs.
const (
	defaultLogPage = 1000
	maxLogPage     = 10000
)

// AppendLogs stores log lines; their IDs are assigned in order.
func (s *Store) AppendLogs(ctx context.Context, lines []store.LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	attrs := make([]sql.NullString, len(lines))
	for i, l := range lines {
		if l.FlowRunID == "" {
			return fmt.Errorf("append logs: %w", invalid("log line %d has no flow run ID", i))
		}
		if len(bytes.TrimSpace(l.Attrs)) == 0 {
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, l.Attrs); err != nil {
			return fmt.Errorf("append logs of flow run %q: %w", l.FlowRunID,
				invalid("log line %d: attrs are not JSON: %v", i, err))
		}
		attrs[i] = sql.NullString{String: buf.String(), Valid: true}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		type run struct{ flowRun, taskRun string }
		seen := make(map[run]bool)
		for _, l := range lines {
			r := run{l.FlowRunID, l.TaskRunID}
			if seen[r] {
				continue
			}
			seen[r] = true
			var err error
			if l.TaskRunID == "" {
				err = flowRunExists(ctx, tx, l.FlowRunID)
			} else {
				err = taskRunExists(ctx, tx, l.FlowRunID, l.TaskRunID)
			}
			if err != nil {
				return err
			}
		}
		insert, err := tx.PrepareContext(ctx,
			`INSERT INTO logs (flow_run_id, task_run_id, time, level, message, attrs) VALUES (?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return dbErr(err)
		}
		defer insert.Close()
		now := s.clock()
		for i, l := range lines {
			t := store.Micro(l.Time)
			if t.IsZero() {
				t = now
			}
			taskRun := sql.NullString{String: l.TaskRunID, Valid: l.TaskRunID != ""}
			if _, err := insert.ExecContext(ctx, l.FlowRunID, taskRun, micros(t), l.Level, l.Message, attrs[i]); err != nil {
				return dbErr(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append logs: %w", err)
	}
	return nil
}

// ListLogs returns up to limit lines of a flow run (of one task run when
// taskRunID is not "") with IDs greater than after, oldest first. A limit
// of 0 or less means 1000; at most 10000 lines are returned.
func (s *Store) ListLogs(ctx context.Context, flowRunID, taskRunID string, after int64, limit int) ([]store.LogLine, error) {
	if limit <= 0 {
		limit = defaultLogPage
	}
	limit = min(limit, maxLogPage)
	var (
		rows *sql.Rows
		err  error
	)
	const cols = `id, flow_run_id, task_run_id, time, level, message, attrs`
	if taskRunID == "" {
		rows, err = s.read.QueryContext(ctx,
			`SELECT `+cols+` FROM logs WHERE flow_run_id = ? AND id > ? ORDER BY id LIMIT ?`,
			flowRunID, after, limit)
	} else {
		rows, err = s.read.QueryContext(ctx,
			`SELECT `+cols+` FROM logs WHERE task_run_id = ? AND flow_run_id = ? AND id > ? ORDER BY id LIMIT ?`,
			taskRunID, flowRunID, after, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("list logs of flow run %q: %w", flowRunID, dbErr(err))
	}
	out, err := collect(rows, func(sc interface{ Scan(...any) error }) (store.LogLine, error) {
		var (
			l       store.LogLine
			taskRun sql.NullString
			attrs   sql.NullString
			t       int64
		)
		if err := sc.Scan(&l.ID, &l.FlowRunID, &taskRun, &t, &l.Level, &l.Message, &attrs); err != nil {
			return store.LogLine{}, err
		}
		l.TaskRunID, l.Time = taskRun.String, fromMicros(t)
		if attrs.Valid {
			l.Attrs = json.RawMessage(attrs.String)
		}
		return l, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list logs of flow run %q: %w", flowRunID, dbErr(err))
	}
	if len(out) == 0 {
		if taskRunID == "" {
			err = flowRunExists(ctx, s.read, flowRunID)
		} else {
			err = taskRunExists(ctx, s.read, flowRunID, taskRunID)
		}
		if err != nil {
			return nil, fmt.Errorf("list logs: %w", err)
		}
	}
	return out, nil
}
