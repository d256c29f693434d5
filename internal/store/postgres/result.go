package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

// PutResult creates or replaces a result in a project's result store; see
// store.Store.
func (s *Store) PutResult(ctx context.Context, projectID, key string, value []byte) (time.Time, error) {
	if err := store.CheckResultKey(key); err != nil {
		return time.Time{}, fmt.Errorf("put result: %w", err)
	}
	if value == nil {
		value = []byte{} // NOT NULL: an empty result is still a result
	}
	var updated time.Time
	err := s.pool.QueryRow(ctx,
		`INSERT INTO results (project_id, key, value, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
		 ON CONFLICT (project_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
		 RETURNING updated_at`,
		projectID, key, value, s.clock()).Scan(&updated)
	if isForeignKeyViolation(err) {
		return time.Time{}, fmt.Errorf("put result %q: %w", key, notFound("project", projectID))
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("put result %q of project %q: %w", key, projectID, dbErr(err))
	}
	return updated.UTC(), nil
}

// GetResult returns a result of a project's result store, or ErrNotFound.
func (s *Store) GetResult(ctx context.Context, projectID, key string) ([]byte, time.Time, error) {
	if err := store.CheckResultKey(key); err != nil {
		return nil, time.Time{}, fmt.Errorf("get result: %w", err)
	}
	var (
		value   []byte
		updated time.Time
	)
	err := s.pool.QueryRow(ctx,
		`SELECT value, updated_at FROM results WHERE project_id = $1 AND key = $2`,
		projectID, key).Scan(&value, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, time.Time{}, fmt.Errorf("get result: %w", resultNotFound(projectID, key))
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("get result %q of project %q: %w", key, projectID, dbErr(err))
	}
	if value == nil {
		value = []byte{}
	}
	return value, updated.UTC(), nil
}

// resultNotFound is the error of a missing result.
func resultNotFound(projectID, key string) error {
	return reeve.Errorf(reeve.CodeNotFound, "result %q not found in project %q", key, projectID)
}
