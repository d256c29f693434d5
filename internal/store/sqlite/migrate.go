package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// migrationFS holds the schema migrations, NNNNN_name.sql, applied in order.
// They are forward-only: a released file never changes, and none has a
// Down section.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrate applies the migrations the database lacks, each in its own
// transaction, and returns those it applied.
func migrate(ctx context.Context, db *sql.DB) ([]*goose.MigrationResult, error) {
	dir, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, dir, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate: %w", dbErr(err))
	}
	return res, nil
}
