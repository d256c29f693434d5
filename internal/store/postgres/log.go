package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

// Page sizes of ListLogs.
const (
	defaultLogPage = 1000
	maxLogPage     = 10000
)

// logLockSpace is the first key of the transaction advisory locks that
// serialise the appends of each flow run ("logs" in ASCII); the second is a
// hash of the flow run's ID.
const logLockSpace int32 = 0x6c6f6773

const (
	// lockLogRuns takes the log lock of each flow run, in a fixed order so
	// that appends to the same runs cannot deadlock. A sequence hands out
	// IDs as rows are inserted, not as they commit: without the lock, a
	// reader paging "after ID" could see a run's line 8 commit, move on,
	// and never see line 7 that committed later.
	lockLogRuns = `
		SELECT pg_advisory_xact_lock($1, hashtext(r.id))
		FROM (SELECT DISTINCT unnest($2::text[]) AS id ORDER BY 1) AS r`

	// missingLogRun returns the first pair of flow run and task run ("" for
	// none) that does not exist, and whether its flow run exists.
	missingLogRun = `
		SELECT w.flow_run, w.task_run, EXISTS (SELECT 1 FROM flow_runs WHERE id = w.flow_run)
		FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(flow_run, task_run, ord)
		WHERE NOT EXISTS (SELECT 1 FROM flow_runs WHERE id = w.flow_run)
		   OR (w.task_run <> '' AND NOT EXISTS (
				SELECT 1 FROM task_runs WHERE id = w.task_run AND flow_run_id = w.flow_run))
		ORDER BY w.ord
		LIMIT 1`

	// insertLogs inserts the lines in order, so their IDs are in order.
	insertLogs = `
		INSERT INTO logs (flow_run_id, task_run_id, time, level, message, attrs)
		SELECT w.flow_run, NULLIF(w.task_run, ''), w.time, w.level, w.message, w.attrs::json
		FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY
			AS w(flow_run, task_run, time, level, message, attrs, ord)
		ORDER BY w.ord`
)

// AppendLogs stores log lines; their IDs are assigned in order.
//
// PostgreSQL's text cannot hold NUL bytes or invalid UTF-8: in a line's
// level and message they are replaced by U+FFFD, so one odd byte in a
// program's output does not lose its batch of lines.
func (s *Store) AppendLogs(ctx context.Context, lines []store.LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	var (
		now                       = s.clock()
		flowRuns, taskRuns        = make([]string, len(lines)), make([]string, len(lines))
		times                     = make([]time.Time, len(lines))
		levels, messages          = make([]string, len(lines)), make([]string, len(lines))
		attrs                     = make([]*string, len(lines))
		pairFlowRuns, pairTaskRun []string // distinct (flow run, task run) pairs, in order
		seen                      = make(map[[2]string]bool)
	)
	for i, l := range lines {
		if l.FlowRunID == "" {
			return fmt.Errorf("append logs: %w", invalid("log line %d has no flow run ID", i))
		}
		if len(bytes.TrimSpace(l.Attrs)) > 0 {
			var buf bytes.Buffer
			if err := json.Compact(&buf, l.Attrs); err != nil {
				return fmt.Errorf("append logs of flow run %q: %w", l.FlowRunID,
					invalid("log line %d: attrs are not JSON: %v", i, err))
			}
			a := buf.String()
			attrs[i] = &a
		}
		t := store.Micro(l.Time)
		if t.IsZero() {
			t = now
		}
		flowRuns[i], taskRuns[i], times[i] = l.FlowRunID, l.TaskRunID, t
		levels[i], messages[i] = storableText(l.Level), storableText(l.Message)
		if p := [2]string{l.FlowRunID, l.TaskRunID}; !seen[p] {
			seen[p] = true
			pairFlowRuns, pairTaskRun = append(pairFlowRuns, l.FlowRunID), append(pairTaskRun, l.TaskRunID)
		}
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(lockLogRuns, logLockSpace, pairFlowRuns)
		var (
			missing          bool
			flowRun, taskRun string
			runExists        bool
		)
		b.Queue(missingLogRun, pairFlowRuns, pairTaskRun).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				missing = true
				if err := rows.Scan(&flowRun, &taskRun, &runExists); err != nil {
					return err
				}
			}
			return rows.Err()
		})
		b.Queue(insertLogs, flowRuns, taskRuns, times, levels, messages, attrs)
		err := tx.SendBatch(ctx, b).Close()
		switch {
		case missing && !runExists:
			return notFound("flow run", flowRun)
		case missing:
			return reeve.Errorf(reeve.CodeNotFound, "task run %q not found in flow run %q", taskRun, flowRun)
		}
		return dbErr(err)
	})
	if err != nil {
		return fmt.Errorf("append logs: %w", err)
	}
	return nil
}

// storableText returns s with what PostgreSQL's text cannot hold (NUL
// bytes, invalid UTF-8) replaced by U+FFFD.
func storableText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
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
		rows pgx.Rows
		err  error
	)
	const cols = `id, flow_run_id, task_run_id, time, level, message, attrs::text`
	if taskRunID == "" {
		rows, err = s.pool.Query(ctx,
			`SELECT `+cols+` FROM logs WHERE flow_run_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
			flowRunID, after, limit)
	} else {
		rows, err = s.pool.Query(ctx,
			`SELECT `+cols+` FROM logs WHERE task_run_id = $1 AND flow_run_id = $2 AND id > $3 ORDER BY id LIMIT $4`,
			taskRunID, flowRunID, after, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("list logs of flow run %q: %w", flowRunID, dbErr(err))
	}
	out, err := collect(rows, func(row pgx.Row) (store.LogLine, error) {
		var (
			l       store.LogLine
			taskRun *string
			attrs   *string
		)
		if err := row.Scan(&l.ID, &l.FlowRunID, &taskRun, &l.Time, &l.Level, &l.Message, &attrs); err != nil {
			return store.LogLine{}, err
		}
		l.Time = l.Time.UTC()
		if taskRun != nil {
			l.TaskRunID = *taskRun
		}
		if attrs != nil {
			l.Attrs = json.RawMessage(*attrs)
		}
		return l, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list logs of flow run %q: %w", flowRunID, dbErr(err))
	}
	if len(out) == 0 {
		if taskRunID == "" {
			err = flowRunExists(ctx, s.pool, flowRunID)
		} else {
			err = taskRunExists(ctx, s.pool, flowRunID, taskRunID)
		}
		if err != nil {
			return nil, fmt.Errorf("list logs: %w", err)
		}
	}
	return out, nil
}
