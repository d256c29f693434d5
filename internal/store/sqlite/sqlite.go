// Package sqlite is the embedded store of the Reeve server: every record in
// one SQLite file, through the pure-Go driver modernc.org/sqlite (no cgo).
//
// The database runs in WAL mode with synchronous=NORMAL, a busy timeout and
// foreign keys on; every pooled connection gets these settings from the DSN.
// All writes go through ONE connection, so concurrent writers queue in Go
// instead of failing with "database is locked"; write transactions start
// with BEGIN IMMEDIATE. Reads use a separate pool of query-only connections,
// which WAL lets run beside the writer.
//
// The schema is created and upgraded by embedded, forward-only migrations
// applied on Open.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

// busyTimeout is how long a connection waits for a lock held by another
// process before giving up with SQLITE_BUSY. Within one process the single
// writer connection already serialises writes.
const busyTimeout = 10 * time.Second

// Store is a store.Store on a SQLite database file. It is safe for
// concurrent use.
type Store struct {
	write *sql.DB // one connection: every write and every transaction
	read  *sql.DB // query-only connections for reads outside transactions
	now   func() time.Time

	mu    sync.Mutex
	stmts map[string]*sql.Stmt // prepared on the writer, by query
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the SQLite database at path and applies
// the migrations it lacks. path is a file path; it must not contain '?' or
// '#'. Close the store when done.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?#") {
		return nil, reeve.Errorf(reeve.CodeInvalid, "open sqlite store: database path %q is not a file path: give a file name such as reeve.db", path)
	}
	write, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)

	s := &Store{write: write, now: time.Now, stmts: make(map[string]*sql.Stmt)}
	// The writer connects first: it switches the file to WAL mode before
	// any reader opens it.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	if _, err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}

	read, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	read.SetConnMaxIdleTime(0)
	read.SetConnMaxLifetime(0)
	if err := read.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	s.read = read
	return s, nil
}

// dsn returns the data source name of path for the writer connection or for
// a reader. The pragmas run on every new connection of the pool.
func dsn(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	if writer {
		q.Set("_txlock", "immediate")
	} else {
		q.Set("_query_only", "1")
	}
	return path + "?" + q.Encode()
}

// Close closes the store's connections.
func (s *Store) Close() error {
	s.mu.Lock()
	var errs []error
	for q, st := range s.stmts {
		errs = append(errs, st.Close())
		delete(s.stmts, q)
	}
	s.mu.Unlock()
	return errors.Join(append(errs, s.read.Close(), s.write.Close())...)
}

// prepared returns query prepared on the writer connection, which keeps it:
// a hot statement is parsed once, not once a transaction. Call it outside a
// transaction (the transaction holds the only writer connection), then use
// the statement in one with tx.StmtContext.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	st, ok := s.stmts[query]
	s.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := s.write.PrepareContext(ctx, query)
	if err != nil {
		return nil, dbErr(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.stmts[query]; ok {
		// Another call prepared it meanwhile.
		return prev, st.Close()
	}
	s.stmts[query] = st
	return st, nil
}

// clock returns the current time as the store keeps it: UTC, microseconds.
func (s *Store) clock() time.Time { return store.Micro(s.now()) }

// micros returns t as stored: microseconds since the Unix epoch.
func micros(t time.Time) int64 { return t.UnixMicro() }

// ceilMicros returns t in microseconds, rounded up: for an integer column c,
// c >= t and c < t hold exactly when c >= ceilMicros(t) and c < ceilMicros(t).
func ceilMicros(t time.Time) int64 {
	m := t.UnixMicro()
	if time.UnixMicro(m).Before(t) {
		m++
	}
	return m
}

// fromMicros is the inverse of micros, in UTC.
func fromMicros(m int64) time.Time { return time.UnixMicro(m).UTC() }

// newID returns a new record ID: a UUIDv7, ordered by creation time.
func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return id.String(), nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE on the writer
// connection) and commits it if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return dbErr(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return dbErr(err)
	}
	return nil
}

// queryer is what reads need: the reader pool or a transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// sqliteCode returns the primary result code of a SQLite error, or 0.
func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code() & 0xff
	}
	return 0
}

// isConstraint reports whether err is a constraint violation (unique,
// foreign key, not null, check).
func isConstraint(err error) bool { return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT }

// dbErr gives a database error its reeve code: a constraint violation is a
// conflict, a lock that could not be had in time is unavailable. Other
// errors are returned as they are.
func dbErr(err error) error {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT:
		return fmt.Errorf("%w: %w", reeve.ErrConflict, err)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("%w: the database is busy, try again: %w", reeve.ErrUnavailable, err)
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
