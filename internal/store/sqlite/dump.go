package sqlite

// The SQLite side of store.Copy: reading every row from one snapshot
// (Dump) and writing rows as they are in one transaction (Load). SQLite
// keeps times as INTEGER microseconds, booleans as INTEGER 0 or 1 and JSON
// as TEXT; the rows that cross to the other store carry time.Time, bool and
// the JSON text (see store.ColumnType).

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

var (
	_ store.Source = (*Store)(nil)
	_ store.Target = (*Store)(nil)
)

// Dump calls fn with a store.Dumper that reads every row from one snapshot
// of the database: a read transaction on a reader connection, which WAL
// keeps consistent while writers go on.
func (s *Store) Dump(ctx context.Context, fn func(store.Dumper) error) error {
	tx, err := s.read.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("dump sqlite store: %w", dbErr(err))
	}
	defer func() { _ = tx.Rollback() }() // a read transaction: nothing to undo
	// The snapshot starts with the transaction's first read: make that now,
	// so that every table is read from the same one.
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
		return fmt.Errorf("dump sqlite store: %w", dbErr(err))
	}
	return fn(&dumper{catalog{tx}})
}

// Load calls fn with a store.Loader that inserts rows in one write
// transaction, committed when fn returns nil. IDs are inserted as given:
// SQLite moves its rowid and AUTOINCREMENT sequences past them itself.
func (s *Store) Load(ctx context.Context, fn func(store.Loader) error) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return fn(&loader{catalog{tx}})
	})
}

// catalog reads the tables of a database in a transaction.
type catalog struct{ tx *sql.Tx }

// Columns returns the columns of every table but SQLite's own and goose's.
func (c catalog) Columns(ctx context.Context) (map[string][]string, error) {
	rows, err := c.tx.QueryContext(ctx, `
		SELECT m.name, p.name
		FROM sqlite_master AS m, pragma_table_info(m.name) AS p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\' AND m.name <> 'goose_db_version'
		ORDER BY m.name, p.cid`)
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", dbErr(err))
	}
	defer rows.Close()
	out := make(map[string][]string)
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			return nil, fmt.Errorf("list columns: %w", err)
		}
		out[table] = append(out[table], col)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list columns: %w", dbErr(err))
	}
	return out, nil
}

// Count returns how many rows table holds.
func (c catalog) Count(ctx context.Context, table string) (int64, error) {
	var n int64
	if err := c.tx.QueryRowContext(ctx, `SELECT count(*) FROM `+quoteIdent(table)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", table, dbErr(err))
	}
	return n, nil
}

// quoteIdent quotes a table or column name for SQL.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func quoteIdents(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quoteIdent(n)
	}
	return strings.Join(q, ", ")
}

type dumper struct {
	catalog
}

func (d *dumper) Dump(ctx context.Context, t store.Table, fn func(store.Row) error) error {
	rows, err := d.tx.QueryContext(ctx,
		`SELECT `+quoteIdents(t.ColumnNames())+` FROM `+quoteIdent(t.Name)+` ORDER BY `+quoteIdents(t.Key))
	if err != nil {
		return fmt.Errorf("dump %s: %w", t.Name, dbErr(err))
	}
	defer rows.Close()
	raw := make([]any, len(t.Columns))
	ptrs := make([]any, len(t.Columns))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("dump %s: %w", t.Name, err)
		}
		r := make(store.Row, len(t.Columns))
		for i, c := range t.Columns {
			v, err := fromColumn(c, raw[i])
			if err != nil {
				return reeve.Errorf(reeve.CodeInternal, "dump %s row %s: column %s: %v", t.Name, keyOf(t, raw), c.Name, err)
			}
			r[i] = v
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("dump %s: %w", t.Name, dbErr(err))
	}
	return nil
}

// keyOf returns the key of a row as scanned, for messages.
func keyOf(t store.Table, raw []any) string {
	var parts []string
	for i, c := range t.Columns {
		if slices.Contains(t.Key, c.Name) {
			parts = append(parts, fmt.Sprintf("%s=%v", c.Name, raw[i]))
		}
	}
	return strings.Join(parts, ",")
}

// fromColumn converts a value as SQLite returns it to the Go type of c's
// ColumnType.
func fromColumn(c store.Column, v any) (any, error) {
	if v == nil {
		if c.Null {
			return nil, nil
		}
		return nil, fmt.Errorf("NULL in a NOT NULL column")
	}
	switch c.Type {
	case store.TypeText, store.TypeJSON:
		switch v := v.(type) {
		case string:
			return v, nil
		case []byte:
			return string(v), nil
		}
	case store.TypeInt:
		if v, ok := v.(int64); ok {
			return v, nil
		}
	case store.TypeBool:
		if v, ok := v.(int64); ok && (v == 0 || v == 1) {
			return v == 1, nil
		}
	case store.TypeTime:
		if v, ok := v.(int64); ok {
			return fromMicros(v), nil
		}
	case store.TypeBytes:
		switch v := v.(type) {
		case []byte:
			return v, nil
		case string:
			return []byte(v), nil
		}
	}
	return nil, fmt.Errorf("a %s column holds %T %v", c.Type, v, v)
}

type loader struct {
	catalog
}

func (l *loader) Load(ctx context.Context, t store.Table, rows []store.Row) error {
	if len(rows) == 0 {
		return nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(t.Columns)), ", ")
	insert, err := l.tx.PrepareContext(ctx,
		`INSERT INTO `+quoteIdent(t.Name)+` (`+quoteIdents(t.ColumnNames())+`) VALUES (`+marks+`)`)
	if err != nil {
		return fmt.Errorf("load %s: %w", t.Name, dbErr(err))
	}
	defer insert.Close()
	args := make([]any, len(t.Columns))
	for _, r := range rows {
		for i := range t.Columns {
			args[i] = toColumn(r[i])
		}
		if _, err := insert.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("load %s: %w", t.Name, dbErr(err))
		}
	}
	return nil
}

// toColumn converts a value of its column's ColumnType (checked by store.Copy) to
// what SQLite stores.
func toColumn(v any) any {
	switch v := v.(type) {
	case bool:
		if v {
			return int64(1)
		}
		return int64(0)
	case time.Time:
		return micros(v)
	}
	return v
}
