package postgres

import (
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"

	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// GetFlowByID returns a flow by ID, or ErrNotFound.
func (s *Store) GetFlowByID(ctx context.Context, id string) (store.Flow, error) {
	f, err := scanFlow(s.pool.QueryRow(ctx, `SELECT `+flowCols+` FROM flows f WHERE f.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Flow{}, fmt.Errorf("get flow: %w", notFound("flow", id))
	}
	if err != nil {
		return store.Flow{}, fmt.Errorf("get flow %q: %w", id, dbErr(err))
	}
	return f, nil
}

// CountFlowRuns returns how many flow runs there are of each state kind.
func (s *Store) CountFlowRuns(ctx context.Context) (map[state.Kind]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM flow_runs GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count flow runs: %w", dbErr(err))
	}
	defer rows.Close()
	out := map[state.Kind]int64{}
	for rows.Next() {
		var (
			kind string
			n    int64
		)
		if err := rows.Scan(&kind, &n); err != nil {
			return nil, fmt.Errorf("count flow runs: %w", dbErr(err))
		}
		k, err := state.ParseKind(kind)
		if err != nil {
			return nil, fmt.Errorf("count flow runs: %w", err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count flow runs: %w", dbErr(err))
	}
	return out, nil
}
