package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

// projectExists returns ErrNotFound unless the project with ID id exists.
func projectExists(ctx context.Context, q queryer, id string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM projects WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("project", id)
	}
	return dbErr(err)
}

// PutSecret creates or replaces a project's secret; see store.Store.
func (s *Store) PutSecret(ctx context.Context, projectID, name string, value []byte) (store.Secret, error) {
	if err := store.CheckSecretName(name); err != nil {
		return store.Secret{}, fmt.Errorf("put secret: %w", err)
	}
	if value == nil {
		value = []byte{} // NOT NULL: an empty value is still a value
	}
	var out store.Secret
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := projectExists(ctx, tx, projectID); err != nil {
			return err
		}
		now := s.clock()
		var created, updated int64
		err := tx.QueryRowContext(ctx,
			`INSERT INTO secrets (project_id, name, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT (project_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
			 RETURNING created_at, updated_at`,
			projectID, name, value, micros(now), micros(now)).Scan(&created, &updated)
		if err != nil {
			return dbErr(err)
		}
		out = store.Secret{ProjectID: projectID, Name: name, Value: append([]byte{}, value...),
			CreatedAt: fromMicros(created), UpdatedAt: fromMicros(updated)}
		return nil
	})
	if err != nil {
		return store.Secret{}, fmt.Errorf("put secret %q of project %q: %w", name, projectID, err)
	}
	return out, nil
}

// secretNotFound is the error of a missing secret.
func secretNotFound(projectID, name string) error {
	return reeve.Errorf(reeve.CodeNotFound, "secret %q not found in project %q", name, projectID)
}

// GetSecret returns a secret with its (encrypted) value, or ErrNotFound.
func (s *Store) GetSecret(ctx context.Context, projectID, name string) (store.Secret, error) {
	out := store.Secret{ProjectID: projectID, Name: name}
	var created, updated int64
	err := s.read.QueryRowContext(ctx,
		`SELECT value, created_at, updated_at FROM secrets WHERE project_id = ? AND name = ?`,
		projectID, name).Scan(&out.Value, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Secret{}, fmt.Errorf("get secret: %w", secretNotFound(projectID, name))
	}
	if err != nil {
		return store.Secret{}, fmt.Errorf("get secret %q of project %q: %w", name, projectID, dbErr(err))
	}
	if out.Value == nil {
		out.Value = []byte{}
	}
	out.CreatedAt, out.UpdatedAt = fromMicros(created), fromMicros(updated)
	return out, nil
}

// ListSecrets returns a project's secrets by name, without values; an
// unknown project is ErrNotFound.
func (s *Store) ListSecrets(ctx context.Context, projectID string) ([]store.Secret, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT name, created_at, updated_at FROM secrets WHERE project_id = ? ORDER BY name`, projectID)
	if err != nil {
		return nil, fmt.Errorf("list secrets of project %q: %w", projectID, dbErr(err))
	}
	out, err := collect(rows, func(sc interface{ Scan(...any) error }) (store.Secret, error) {
		sec := store.Secret{ProjectID: projectID}
		var created, updated int64
		if err := sc.Scan(&sec.Name, &created, &updated); err != nil {
			return store.Secret{}, err
		}
		sec.CreatedAt, sec.UpdatedAt = fromMicros(created), fromMicros(updated)
		return sec, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list secrets of project %q: %w", projectID, dbErr(err))
	}
	if len(out) == 0 {
		if err := projectExists(ctx, s.read, projectID); err != nil {
			return nil, fmt.Errorf("list secrets: %w", err)
		}
	}
	return out, nil
}

// DeleteSecret deletes a secret, or returns ErrNotFound.
func (s *Store) DeleteSecret(ctx context.Context, projectID, name string) error {
	res, err := s.write.ExecContext(ctx, `DELETE FROM secrets WHERE project_id = ? AND name = ?`, projectID, name)
	if err != nil {
		return fmt.Errorf("delete secret %q of project %q: %w", name, projectID, dbErr(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete secret %q of project %q: %w", name, projectID, dbErr(err))
	} else if n == 0 {
		return fmt.Errorf("delete secret: %w", secretNotFound(projectID, name))
	}
	return nil
}
