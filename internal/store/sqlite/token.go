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

const tokenCols = `id, name, role, hash, flow_run_id, attempt, created_at, expires_at, revoked_at`

func scanToken(sc interface{ Scan(...any) error }) (store.Token, error) {
	var (
		t                store.Token
		flowRun          sql.NullString
		created          int64
		expires, revoked sql.NullInt64
	)
	if err := sc.Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &flowRun, &t.Attempt, &created, &expires, &revoked); err != nil {
		return store.Token{}, err
	}
	t.FlowRunID = flowRun.String
	t.CreatedAt = fromMicros(created)
	if expires.Valid {
		t.ExpiresAt = fromMicros(expires.Int64)
	}
	if revoked.Valid {
		t.RevokedAt = fromMicros(revoked.Int64)
	}
	return t, nil
}

// nullMicros returns t as a nullable column: NULL for the zero time.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(t), Valid: true}
}

// CreateToken records an API token; see store.Store.
func (s *Store) CreateToken(ctx context.Context, t store.Token) (store.Token, error) {
	if err := store.CheckToken(t); err != nil {
		return store.Token{}, fmt.Errorf("create token: %w", err)
	}
	id, err := newID()
	if err != nil {
		return store.Token{}, fmt.Errorf("create token %q: %w", t.Name, err)
	}
	out := store.Token{ID: id, Name: t.Name, Role: t.Role, Hash: t.Hash, FlowRunID: t.FlowRunID,
		Attempt: t.Attempt, ExpiresAt: store.Micro(t.ExpiresAt)}
	flowRun := sql.NullString{String: t.FlowRunID, Valid: t.FlowRunID != ""}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if flowRun.Valid {
			if err := flowRunExists(ctx, tx, t.FlowRunID); err != nil {
				return err
			}
		}
		out.CreatedAt = s.clock()
		_, err := tx.ExecContext(ctx,
			`INSERT INTO tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
			out.ID, out.Name, out.Role, out.Hash, flowRun, out.Attempt, micros(out.CreatedAt), nullMicros(out.ExpiresAt))
		if isConstraint(err) {
			return reeve.Errorf(reeve.CodeConflict, "a token with this hash exists already: mint a new token secret")
		}
		return dbErr(err)
	})
	if err != nil {
		return store.Token{}, fmt.Errorf("create token %q: %w", t.Name, err)
	}
	return out, nil
}

// TokenByHash returns the token with this hash, revoked or not, or
// ErrNotFound.
func (s *Store) TokenByHash(ctx context.Context, hash string) (store.Token, error) {
	t, err := scanToken(s.read.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		// The hash is not shown: it is as good as a password to a
		// server that trusts it.
		return store.Token{}, fmt.Errorf("token by hash: %w", reeve.Errorf(reeve.CodeNotFound, "no token has this hash"))
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("token by hash: %w", dbErr(err))
	}
	return t, nil
}

// ListTokens returns the tokens that are not run tokens, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.read.QueryContext(ctx,
		`SELECT `+tokenCols+` FROM tokens WHERE role <> ? ORDER BY created_at, id`, store.RoleRun)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", dbErr(err))
	}
	out, err := collect(rows, scanToken)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", dbErr(err))
	}
	return out, nil
}

// RevokeToken marks a token revoked (again is a no-op), or returns
// ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, id string) (store.Token, error) {
	t, err := scanToken(s.write.QueryRowContext(ctx,
		`UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? RETURNING `+tokenCols,
		micros(s.clock()), id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Token{}, fmt.Errorf("revoke token: %w", notFound("token", id))
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("revoke token %q: %w", id, dbErr(err))
	}
	return t, nil
}
