package postgres

// The PostgreSQL side of store.Copy: writing rows as they are in one
// transaction (Load, with COPY) and reading every row from one snapshot
// (Dump). PostgreSQL keeps times as timestamptz, booleans as boolean, JSON
// as json or jsonb and secret values as bytea; the rows that cross to the
// other store carry time.Time, bool, the JSON text and []byte (see
// store.ColumnType).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

var (
	_ store.Source = (*Store)(nil)
	_ store.Target = (*Store)(nil)
)

// Load calls fn with a store.Loader that inserts rows with COPY in one
// transaction. The transaction first locks every table of the schema
// against writes (readers go on), and, when fn returns nil, moves each ID
// sequence (logs, states) past the largest ID of its table before it
// commits.
func (s *Store) Load(ctx context.Context, fn func(store.Loader) error) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		c := catalog{tx}
		cols, err := c.Columns(ctx)
		if err != nil {
			return err
		}
		tables := make([]string, 0, len(cols))
		for t := range cols {
			tables = append(tables, pgx.Identifier{t}.Sanitize())
		}
		slices.Sort(tables)
		if len(tables) > 0 {
			if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(tables, ", ")+` IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return fmt.Errorf("lock the tables: %w", dbErr(err))
			}
		}
		if err := fn(&loader{c}); err != nil {
			return err
		}
		return advanceSequences(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("load postgres store: %w", err)
	}
	return nil
}

// advanceSequences sets the sequence of every serial or identity column so
// that its next value is past the largest value in the column.
func advanceSequences(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `
		SELECT c.relname, a.attname, pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname)
		FROM pg_class AS c
		JOIN pg_namespace AS n ON n.oid = c.relnamespace
		JOIN pg_attribute AS a ON a.attrelid = c.oid
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
		  AND pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) IS NOT NULL
		ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("list sequences: %w", dbErr(err))
	}
	type serial struct{ table, column, sequence string }
	serials, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (serial, error) {
		var s serial
		err := row.Scan(&s.table, &s.column, &s.sequence)
		return s, err
	})
	if err != nil {
		return fmt.Errorf("list sequences: %w", dbErr(err))
	}
	for _, s := range serials {
		_, err := tx.Exec(ctx,
			`SELECT setval($1::regclass, COALESCE((SELECT max(`+pgx.Identifier{s.column}.Sanitize()+`) FROM `+
				pgx.Identifier{s.table}.Sanitize()+`), 0) + 1, false)`, s.sequence)
		if err != nil {
			return fmt.Errorf("advance sequence %s of %s.%s: %w", s.sequence, s.table, s.column, dbErr(err))
		}
	}
	return nil
}

// Dump calls fn with a store.Dumper that reads every row from one snapshot
// of the database: a read-only, repeatable-read transaction.
func (s *Store) Dump(ctx context.Context, fn func(store.Dumper) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("dump postgres store: %w", dbErr(err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	return fn(&dumper{catalog{tx}})
}

// catalog reads the tables of the database in a transaction.
type catalog struct{ tx pgx.Tx }

// Columns returns the columns of every table of the current schema but
// goose's.
func (c catalog) Columns(ctx context.Context) (map[string][]string, error) {
	rows, err := c.tx.Query(ctx, `
		SELECT c.relname, a.attname
		FROM pg_class AS c
		JOIN pg_namespace AS n ON n.oid = c.relnamespace
		JOIN pg_attribute AS a ON a.attrelid = c.oid
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
		  AND c.relname <> 'goose_db_version'
		ORDER BY c.relname, a.attnum`)
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
	if err := c.tx.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s: %w", table, dbErr(err))
	}
	return n, nil
}

type loader struct {
	catalog
}

// Load copies rows into t with COPY. Text that PostgreSQL cannot hold (a
// NUL byte, invalid UTF-8) is ErrInvalid naming the row and column, but in
// a log line's level and message, where it is replaced by U+FFFD as
// AppendLogs does.
func (l *loader) Load(ctx context.Context, t store.Table, rows []store.Row) error {
	if len(rows) == 0 {
		return nil
	}
	values := make([][]any, len(rows))
	for i, r := range rows {
		v := make([]any, len(t.Columns))
		for j, c := range t.Columns {
			x := r[j]
			if s, ok := x.(string); ok && !storable(s) {
				if t.Name != "logs" || (c.Name != "level" && c.Name != "message") {
					return reeve.Errorf(reeve.CodeInvalid,
						"load %s row %s: column %s holds a NUL byte or invalid UTF-8, which PostgreSQL cannot store: fix the row in the source and copy again",
						t.Name, keyOf(t, r), c.Name)
				}
				x = storableText(s)
			}
			v[j] = x
		}
		values[i] = v
	}
	n, err := l.tx.CopyFrom(ctx, pgx.Identifier{t.Name}, t.ColumnNames(), pgx.CopyFromRows(values))
	if err != nil {
		return fmt.Errorf("load %s: %w", t.Name, dbErr(err))
	}
	if n != int64(len(rows)) {
		return reeve.Errorf(reeve.CodeInternal, "load %s: copied %d rows of %d", t.Name, n, len(rows))
	}
	return nil
}

// storable reports whether PostgreSQL's text can hold s.
func storable(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// keyOf returns the key of a row, for messages.
func keyOf(t store.Table, r []any) string {
	var parts []string
	for i, c := range t.Columns {
		if slices.Contains(t.Key, c.Name) && i < len(r) {
			parts = append(parts, fmt.Sprintf("%s=%v", c.Name, r[i]))
		}
	}
	return strings.Join(parts, ",")
}

type dumper struct {
	catalog
}

func (d *dumper) Dump(ctx context.Context, t store.Table, fn func(store.Row) error) error {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
		if c.Type == store.TypeJSON {
			cols[i] += "::text" // the document's text: json keeps it as written
		}
	}
	keys := make([]string, len(t.Key))
	for i, k := range t.Key {
		keys[i] = pgx.Identifier{k}.Sanitize()
	}
	rows, err := d.tx.Query(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+pgx.Identifier{t.Name}.Sanitize()+
		` ORDER BY `+strings.Join(keys, ", "))
	if err != nil {
		return fmt.Errorf("dump %s: %w", t.Name, dbErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		raw, err := rows.Values()
		if err != nil {
			return fmt.Errorf("dump %s: %w", t.Name, dbErr(err))
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

// fromColumn converts a value as pgx decodes it to the Go type of c's
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
		if v, ok := v.(string); ok {
			return v, nil
		}
	case store.TypeInt:
		switch v := v.(type) {
		case int64:
			return v, nil
		case int32:
			return int64(v), nil
		case int16:
			return int64(v), nil
		}
	case store.TypeBool:
		if v, ok := v.(bool); ok {
			return v, nil
		}
	case store.TypeTime:
		if v, ok := v.(time.Time); ok {
			return v.UTC(), nil
		}
	case store.TypeBytes:
		if v, ok := v.([]byte); ok {
			return v, nil
		}
	}
	return nil, fmt.Errorf("a %s column holds %T %v", c.Type, v, v)
}
