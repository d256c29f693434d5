package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

// PutSecret creates or replaces a project's secret; see store.Store.
func (s *Store) PutSecret(ctx context.Context, projectID, name string, value []byte) (store.Secret, error) {
	if err := store.CheckSecretName(name); err != nil {
		return store.Secret{}, fmt.Errorf("put secret: %w", err)
	}
	if value == nil {
		value = []byte{} // NOT NULL: an empty value is still a value
	}
	out := store.Secret{ProjectID: projectID, Name: name, Value: append([]byte{}, value...)}
	err := s.pool.QueryRow(ctx,
		`INSERT INTO secrets (project_id, name, value, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
		 ON CONFLICT (project_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
		 RETURNING created_at, updated_at`,
		projectID, name, value, s.clock()).Scan(&out.CreatedAt, &out.UpdatedAt)
	if isForeignKeyViolation(err) {
		return store.Secret{}, fmt.Errorf("put secret %q: %w", name, notFound("project", projectID))
	}
	if err != nil {
		return store.Secret{}, fmt.Errorf("put secret %q of project %q: %w", name, projectID, dbErr(err))
	}
	out.CreatedAt, out.UpdatedAt = out.CreatedAt.UTC(), out.UpdatedAt.UTC()
	return out, nil
}

// secretNotFound is the error of a missing secret.
func secretNotFound(projectID, name string) error {
	return reeve.Errorf(reeve.CodeNotFound, "secret %q not found in project %q", name, projectID)
}

// GetSecret returns a secret with its (encrypted) value, or ErrNotFound.
func (s *Store) GetSecret(ctx context.Context, projectID, name string) (store.Secret, error) {
	out := store.Secret{ProjectID: projectID, Name: name}
	err := s.pool.QueryRow(ctx,
		`SELECT value, created_at, updated_at FROM secrets WHERE project_id = $1 AND name = $2`,
		projectID, name).Scan(&out.Value, &out.CreatedAt, &out.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Secret{}, fmt.Errorf("get secret: %w", secretNotFound(projectID, name))
	}
	if err != nil {
		return store.Secret{}, fmt.Errorf("get secret %q of project %q: %w", name, projectID, dbErr(err))
	}
	if out.Value == nil {
		out.Value = []byte{}
	}
	out.CreatedAt, out.UpdatedAt = out.CreatedAt.UTC(), out.UpdatedAt.UTC()
	return out, nil
}

// ListSecrets returns a project's secrets by name, without values; an
// unknown project is ErrNotFound.
func (s *Store) ListSecrets(ctx context.Context, projectID string) ([]store.Secret, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT name, created_at, updated_at FROM secrets WHERE project_id = $1 ORDER BY name`, projectID)
	if err != nil {
		return nil, fmt.Errorf("list secrets of project %q: %w", projectID, dbErr(err))
	}
	out, err := collect(rows, func(row pgx.Row) (store.Secret, error) {
		sec := store.Secret{ProjectID: projectID}
		if err := row.Scan(&sec.Name, &sec.CreatedAt, &sec.UpdatedAt); err != nil {
			return store.Secret{}, err
		}
		sec.CreatedAt, sec.UpdatedAt = sec.CreatedAt.UTC(), sec.UpdatedAt.UTC()
		return sec, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list secrets of project %q: %w", projectID, dbErr(err))
	}
	if len(out) == 0 {
		var one int
		err := s.pool.QueryRow(ctx, `SELECT 1 FROM projects WHERE id = $1`, projectID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("list secrets: %w", notFound("project", projectID))
		}
		if err != nil {
			return nil, fmt.Errorf("list secrets of project %q: %w", projectID, dbErr(err))
		}
	}
	return out, nil
}

// DeleteSecret deletes a secret, or returns ErrNotFound.
func (s *Store) DeleteSecret(ctx context.Context, projectID, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM secrets WHERE project_id = $1 AND name = $2`, projectID, name)
	if err != nil {
		return fmt.Errorf("delete secret %q of project %q: %w", name, projectID, dbErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete secret: %w", secretNotFound(projectID, name))
	}
	return nil
}
