package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
	var updated int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := projectExists(ctx, tx, projectID); err != nil {
			return err
		}
		now := micros(s.clock())
		err := tx.QueryRowContext(ctx,
			`INSERT INTO results (project_id, key, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT (project_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
			 RETURNING updated_at`,
			projectID, key, value, now, now).Scan(&updated)
		return dbErr(err)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("put result %q of project %q: %w", key, projectID, err)
	}
	return fromMicros(updated), nil
}

// GetResult returns a result of a project's result store, or ErrNotFound.
func (s *Store) GetResult(ctx context.Context, projectID, key string) ([]byte, time.Time, error) {
	if err := store.CheckResultKey(key); err != nil {
		return nil, time.Time{}, fmt.Errorf("get result: %w", err)
	}
	var (
		value   []byte
		updated int64
	)
	err := s.read.QueryRowContext(ctx,
		`SELECT value, updated_at FROM results WHERE project_id = ? AND key = ?`,
		projectID, key).Scan(&value, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, fmt.Errorf("get result: %w", resultNotFound(projectID, key))
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("get result %q of project %q: %w", key, projectID, dbErr(err))
	}
	if value == nil {
		value = []byte{}
	}
	return value, fromMicros(updated), nil
}

// resultNotFound is the error of a missing result.
func resultNotFound(projectID, key string) error {
	return reeve.Errorf(reeve.CodeNotFound, "result %q not found in project %q", key, projectID)
}
