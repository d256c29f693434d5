// Package postgres is the PostgreSQL store of the Reeve server, on pgx's
// connection pool. Several server replicas may share one database.
//
// Its schema mirrors the SQLite store's, and the conformance suite
// store/storetest holds both to the same behaviour. The schema is created
// and upgraded by embedded, forward-only migrations applied on Open; a
// PostgreSQL advisory lock makes replicas that start together apply them
// once.
//
// Writes that touch several rows run in one transaction; the batched ones
// (WriteTaskRunStates, AppendLogs) send their rows as arrays, so a batch
// costs a few round trips whatever its size.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

// Store is a store.Store on a PostgreSQL database. It is safe for
// concurrent use, also by several processes on one database.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
	// fold is how the text filter folds a name or a message (a format
	// with one %s): lower() under the ICU root collation where the server
	// has it, else under the database's collation (see foldFormat).
	fold string
}

var _ store.Store = (*Store)(nil)

// Open connects to the PostgreSQL database at url (postgres://user:password@
// host:port/dbname?sslmode=..., or any connection string pgx accepts, with
// pool settings such as pool_max_conns) and applies the migrations it
// lacks. Close the store when done.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message leaves the password out.
		return nil, reeve.Errorf(reeve.CodeInvalid,
			"open postgres store: %v: give a URL such as postgres://reeve:PASSWORD@localhost:5432/reeve", err)
	}
	where := fmt.Sprintf("%s/%s", net.JoinHostPort(cfg.ConnConfig.Host, fmt.Sprint(cfg.ConnConfig.Port)), cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store %s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store %s: is the server running and the URL right? %w", where, dbErr(err))
	}
	if _, err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store %s: %w", where, err)
	}
	fold, err := foldFormat(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store %s: %w", where, err)
	}
	return &Store{pool: pool, now: time.Now, fold: fold}, nil
}

// Close closes the store's connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// clock returns the current time as the store keeps it: UTC, microseconds.
func (s *Store) clock() time.Time { return store.Micro(s.now()) }

// ceilMicros returns t rounded up to the microsecond: for a timestamptz
// column c, c >= t and c < t hold exactly when c >= ceilMicros(t) and
// c < ceilMicros(t).
func ceilMicros(t time.Time) time.Time {
	c := t.Truncate(time.Microsecond)
	if c.Before(t) {
		c = c.Add(time.Microsecond)
	}
	return c.UTC()
}

// newID returns a new record ID: a UUIDv7, ordered by creation time.
func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return id.String(), nil
}

// inTx runs fn in a transaction and commits it if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return dbErr(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return dbErr(err)
	}
	return nil
}

// queryer is what reads need: the pool or a transaction.
type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// PostgreSQL error codes the store maps (https://www.postgresql.org/docs/current/errcodes-appendix.html).
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
	pgNotNullViolation    = "23502"
	pgCheckViolation      = "23514"
	pgSerialization       = "40001"
	pgDeadlock            = "40P01"
	pgLockNotAvailable    = "55P03"
	pgTooManyConnections  = "53300"
	pgAdminShutdown       = "57P01"
	pgCannotConnectNow    = "57P03"
)

// dbErr gives a database error its reeve code: a duplicate is a conflict, a
// missing referenced record is not found, a value PostgreSQL cannot store is
// invalid, and a server that is busy, restarting or unreachable is
// unavailable. Other errors are returned as they are.
func dbErr(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == pgUniqueViolation:
			return fmt.Errorf("%w: %w", reeve.ErrConflict, err)
		case pe.Code == pgForeignKeyViolation:
			return fmt.Errorf("%w: a record it refers to does not exist: %w", reeve.ErrNotFound, err)
		case pe.Code == pgNotNullViolation || pe.Code == pgCheckViolation || strings.HasPrefix(pe.Code, "22"):
			// Class 22 is data exceptions, e.g. a NUL byte in a text.
			return fmt.Errorf("%w: %w", reeve.ErrInvalid, err)
		case pe.Code == pgSerialization || pe.Code == pgDeadlock || pe.Code == pgLockNotAvailable ||
			pe.Code == pgTooManyConnections || pe.Code == pgAdminShutdown || pe.Code == pgCannotConnectNow:
			return fmt.Errorf("%w: the database is busy, try again: %w", reeve.ErrUnavailable, err)
		}
		return err
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: cannot reach the database: %w", reeve.ErrUnavailable, err)
	}
	return err
}

// notFound returns a not-found error for a kind of record and its name or ID.
func notFound(what, name string) error {
	return reeve.Errorf(reeve.CodeNotFound, "%s %q not found", what, name)
}

// invalid returns an invalid-request error.
func invalid(format string, args ...any) error {
	return reeve.Errorf(reeve.CodeInvalid, format, args...)
}

// isForeignKeyViolation reports whether err is PostgreSQL's foreign key
// violation.
func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == pgForeignKeyViolation
}

// foldFormat returns how the text filter folds text: lower() under the ICU
// root collation "und-x-icu" when the server was built with ICU and the
// database is UTF8, which folds letters beyond ASCII ("Über" to "über")
// whatever the database's own collation; else plain lower(), which folds
// them as the database's collation does (only ASCII under the C locale).
func foldFormat(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var icu bool
	err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')
		AND pg_encoding_to_char((SELECT encoding FROM pg_database WHERE datname = current_database())) = 'UTF8'`).Scan(&icu)
	if err != nil {
		return "", fmt.Errorf("look for the ICU collation: %w", dbErr(err))
	}
	if icu {
		return `lower(%s COLLATE "und-x-icu")`, nil
	}
	return `lower(%s)`, nil
}
