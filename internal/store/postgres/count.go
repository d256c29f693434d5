package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// CountFlowRunsMatching returns how many of the flow runs f selects there
// are of each state kind; see store.Store.
func (s *Store) CountFlowRunsMatching(ctx context.Context, f store.FlowRunFilter) (map[state.Kind]int64, error) {
	where, args := runFilterSQL(f, s.fold)
	q := `SELECT state, count(*) FROM flow_runs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` GROUP BY state`
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("count flow runs: %w", dbErr(err))
	}
	out := map[state.Kind]int64{}
	err = scanCounts(rows, func(_ string, k state.Kind, n int64) { out[k] = n }, false)
	if err != nil {
		return nil, fmt.Errorf("count flow runs: %w", err)
	}
	return out, nil
}

// CountTaskRuns returns the task runs of each of the flow runs by state
// kind, in one query over task_runs' (flow_run_id, key) index; see
// store.Store.
func (s *Store) CountTaskRuns(ctx context.Context, flowRunIDs []string) (map[string]map[state.Kind]int, error) {
	if err := store.CheckCountTaskRuns(flowRunIDs); err != nil {
		return nil, fmt.Errorf("count task runs: %w", err)
	}
	out := map[string]map[state.Kind]int{}
	if len(flowRunIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx,
		`SELECT flow_run_id, state, count(*) FROM task_runs WHERE flow_run_id = ANY($1) GROUP BY flow_run_id, state`,
		flowRunIDs)
	if err != nil {
		return nil, fmt.Errorf("count task runs: %w", dbErr(err))
	}
	err = scanCounts(rows, func(id string, k state.Kind, n int64) {
		if out[id] == nil {
			out[id] = map[state.Kind]int{}
		}
		out[id][k] = int(n)
	}, true)
	if err != nil {
		return nil, fmt.Errorf("count task runs: %w", err)
	}
	return out, nil
}

// scanCounts reads rows of ([id,] state, count) into add, closing rows.
func scanCounts(rows pgx.Rows, add func(id string, k state.Kind, n int64), withID bool) error {
	defer rows.Close()
	for rows.Next() {
		var (
			id, kind string
			n        int64
			err      error
		)
		if withID {
			err = rows.Scan(&id, &kind, &n)
		} else {
			err = rows.Scan(&kind, &n)
		}
		if err != nil {
			return dbErr(err)
		}
		k, err := state.ParseKind(kind)
		if err != nil {
			return err
		}
		add(id, k, n)
	}
	return dbErr(rows.Err())
}
