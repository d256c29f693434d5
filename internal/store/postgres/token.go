package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

const tokenCols = `id, name, role, hash, flow_run_id, attempt, created_at, expires_at, revoked_at`

func scanToken(row pgx.Row) (store.Token, error) {
	var (
		t                store.Token
		flowRun          *string
		expires, revoked *time.Time
	)
	if err := row.Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &flowRun, &t.Attempt, &t.CreatedAt, &expires, &revoked); err != nil {
		return store.Token{}, err
	}
	if flowRun != nil {
		t.FlowRunID = *flowRun
	}
	t.CreatedAt = t.CreatedAt.UTC()
	if expires != nil {
		t.ExpiresAt = expires.UTC()
	}
	if revoked != nil {
		t.RevokedAt = revoked.UTC()
	}
	return t, nil
}

// nullTime returns t as a nullable column: NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
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
		Attempt: t.Attempt, CreatedAt: s.clock(), ExpiresAt: store.Micro(t.ExpiresAt)}
	var flowRun *string
	if t.FlowRunID != "" {
		flowRun = &t.FlowRunID
	}
	_, err = s.pool.Exec(ctx,
		`INSERT INTO tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)`,
		out.ID, out.Name, out.Role, out.Hash, flowRun, out.Attempt, out.CreatedAt, nullTime(out.ExpiresAt))
	var pe *pgconn.PgError
	switch {
	case isForeignKeyViolation(err):
		err = notFound("flow run", t.FlowRunID)
	case errors.As(err, &pe) && pe.Code == pgUniqueViolation:
		err = reeve.Errorf(reeve.CodeConflict, "a token with this hash exists already: mint a new token secret")
	default:
		err = dbErr(err)
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("create token %q: %w", t.Name, err)
	}
	return out, nil
}

// TokenByHash returns the token with this hash, revoked or not, or
// ErrNotFound.
func (s *Store) TokenByHash(ctx context.Context, hash string) (store.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
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
	rows, err := s.pool.Query(ctx,
		`SELECT `+tokenCols+` FROM tokens WHERE role <> $1 ORDER BY created_at, id`, store.RoleRun)
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
	t, err := scanToken(s.pool.QueryRow(ctx,
		`UPDATE tokens SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 RETURNING `+tokenCols,
		s.clock(), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Token{}, fmt.Errorf("revoke token: %w", notFound("token", id))
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("revoke token %q: %w", id, dbErr(err))
	}
	return t, nil
}
