package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// migrationFS holds the schema migrations, NNNNN_name.sql, applied in order.
// They are forward-only: a released file never changes, and none has a
// Down section.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the key of the session advisory lock held while
// migrating, so that replicas starting together migrate one at a time: the
// first applies what is missing, the others find nothing to do. Advisory
// locks are per database; the key is "reeve" in ASCII.
const migrationLock int64 = 0x7265657665

// migrate applies the migrations the database lacks, each in its own
// transaction, and returns those it applied.
func migrate(ctx context.Context, pool *pgxpool.Pool) (_ []*goose.MigrationResult, err error) {
	dir, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	// The lock lives on a connection of its own, outside the pool, so that
	// it holds while goose works on pooled connections even when the pool
	// has room for just one. pg_advisory_lock waits without polling and
	// gives up when ctx ends.
	lockConn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", dbErr(err))
	}
	defer lockConn.Close(context.WithoutCancel(ctx)) // closing the session releases the lock
	if _, err := lockConn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return nil, fmt.Errorf("migrate: wait for other replicas' migrations: %w", dbErr(err))
	}

	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, dir, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate: %w", dbErr(err))
	}
	return res, nil
}
