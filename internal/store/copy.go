package store

// Copying every record of one store into another, empty one: the data side
// of `reeve server migrate-store`. Copy moves rows table by table, in
// foreign key order and in batches, keeping IDs, state versions, times,
// JSON documents and log line IDs as they are, so that runs, tokens and log
// paging work on after the move. The stores take part through two small
// seams, Source (a consistent snapshot to read) and Target (one transaction
// to write); what crosses between them is a Row of dialect-neutral values
// described by Schema, converted by each store to and from its own column
// types.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/reevehq/reeve"
)

// ColumnType is how Copy carries a column's values between stores: the Go
// type of the column's values in a Row.
type ColumnType uint8

// The column types.
const (
	TypeText  ColumnType = iota + 1 // string
	TypeInt                         // int64
	TypeBool                        // bool
	TypeTime                        // time.Time, in UTC, to the microsecond
	TypeJSON                        // string: the text of a JSON document, as stored
	TypeBytes                       // []byte, opaque (encrypted secret values)
)

func (t ColumnType) String() string {
	switch t {
	case TypeText:
		return "text"
	case TypeInt:
		return "int"
	case TypeBool:
		return "bool"
	case TypeTime:
		return "time"
	case TypeJSON:
		return "json"
	case TypeBytes:
		return "bytes"
	}
	return fmt.Sprintf("ColumnType(%d)", uint8(t))
}

// Column is a column of a table as Copy moves it.
type Column struct {
	Name string
	Type ColumnType
	Null bool // may be NULL, carried as a nil value
}

// Table is a table of the stores' schema as Copy moves it: its name, its
// primary key (rows are read in its order) and every one of its columns.
type Table struct {
	Name    string
	Key     []string
	Columns []Column
}

// ColumnNames returns the names of t's columns, in order.
func (t Table) ColumnNames() []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}

// Row is one row of a Table: a value per column, in the table's column
// order, of the Go type its ColumnType names, or nil for NULL.
type Row []any

// schema is every table of the stores, in foreign key order: a table comes
// after those it refers to. Both stores' migrations must create exactly
// these tables and columns; the stores' tests and Copy itself check it.
var schema = []Table{
	{Name: "projects", Key: []string{"id"}, Columns: []Column{
		{Name: "id", Type: TypeText},
		{Name: "name", Type: TypeText},
		{Name: "description", Type: TypeText},
		{Name: "created_at", Type: TypeTime},
	}},
	{Name: "flows", Key: []string{"id"}, Columns: []Column{
		{Name: "id", Type: TypeText},
		{Name: "project_id", Type: TypeText},
		{Name: "name", Type: TypeText},
		{Name: "latest_version", Type: TypeInt},
		{Name: "created_at", Type: TypeTime},
		{Name: "updated_at", Type: TypeTime},
	}},
	{Name: "flow_versions", Key: []string{"id"}, Columns: []Column{
		{Name: "id", Type: TypeText},
		{Name: "flow_id", Type: TypeText},
		{Name: "version", Type: TypeInt},
		{Name: "spec_hash", Type: TypeText},
		{Name: "spec", Type: TypeJSON},
		{Name: "storage", Type: TypeJSON},
		{Name: "labels", Type: TypeJSON},
		{Name: "run_config", Type: TypeJSON},
		{Name: "archived", Type: TypeBool},
		{Name: "created_at", Type: TypeTime},
	}},
	{Name: "flow_runs", Key: []string{"id"}, Columns: []Column{
		{Name: "id", Type: TypeText},
		{Name: "project_id", Type: TypeText},
		{Name: "flow_id", Type: TypeText},
		{Name: "flow_version_id", Type: TypeText},
		{Name: "name", Type: TypeText},
		{Name: "params", Type: TypeJSON, Null: true},
		{Name: "idempotency_key", Type: TypeText},
		{Name: "labels", Type: TypeJSON},
		{Name: "scheduled_at", Type: TypeTime},
		{Name: "state", Type: TypeText},
		{Name: "state_json", Type: TypeJSON},
		{Name: "version", Type: TypeInt},
		{Name: "created_at", Type: TypeTime},
		{Name: "updated_at", Type: TypeTime},
		{Name: "schedule_id", Type: TypeText},
		{Name: "agent_id", Type: TypeText},
		{Name: "attempt", Type: TypeInt},
		{Name: "heartbeat_at", Type: TypeTime, Null: true},
		{Name: "recoveries", Type: TypeInt},
	}},
	{Name: "task_runs", Key: []string{"id"}, Columns: []Column{
		{Name: "id", Type: TypeText},
		{Name: "flow_run_id", Type: TypeText},
		{Name: "key", Type: TypeText},
		{Name: "task", Type: TypeText},
		{Name: "map_index", Type: TypeInt},
		{Name: "state", Type: TypeText},
		{Name: "state_json", Type: TypeJSON},
		{Name: "version", Type: TypeInt},
		{Name: "created_at", Type: TypeTime},
		{Name: "updated_at", Type: TypeTime},
	}},
	{Name: "states", Key: []string{"id"}, Columns: []Column{
		{Name: "id", Type: TypeInt},
		{Name: "flow_run_id", Type: TypeText},
		{Name: "task_run_id", Type: TypeText, Null: true},
		{Name: "seq", Type: TypeInt},
		{Name: "state", Type: TypeText},
		{Name: "state_json", Type: TypeJSON},
		{Name: "time", Type: TypeTime},
	}},
	{Name: "logs", Key: []string{"id"}, Columns: []Column{
		{Name: "id", Type: TypeInt},
		{Name: "flow_run_id", Type: TypeText},
		{Name: "task_run_id", Type: TypeText, Null: true},
		{Name: "time", Type: TypeTime},
		{Name: "level", Type: TypeText},
		{Name: "message", Type: TypeText},
		{Name: "attrs", Type: TypeJSON, Null: true},
	}},
	{Name: "secrets", Key: []string{"project_id", "name"}, Columns: []Column{
		{Name: "project_id", Type: TypeText},
		{Name: "name", Type: TypeText},
		{Name: "value", Type: TypeBytes},
		{Name: "created_at", Type: TypeTime},
		{Name: "updated_at", Type: TypeTime},
	}},
	{Name: "tokens", Key: []string{"id"}, Columns: []Column{
		{Name: "id", Type: TypeText},
		{Name: "name", Type: TypeText},
		{Name: "role", Type: TypeText},
		{Name: "hash", Type: TypeText},
		{Name: "flow_run_id", Type: TypeText, Null: true},
		{Name: "created_at", Type: TypeTime},
		{Name: "expires_at", Type: TypeTime, Null: true},
		{Name: "revoked_at", Type: TypeTime, Null: true},
		{Name: "attempt", Type: TypeInt},
	}},
	{Name: "schedules", Key: []string{"id"}, Columns: []Column{
		{Name: "id", Type: TypeText},
		{Name: "project_id", Type: TypeText},
		{Name: "flow_id", Type: TypeText},
		{Name: "cron", Type: TypeText},
		{Name: "timezone", Type: TypeText},
		{Name: "interval_us", Type: TypeInt},
		{Name: "anchor", Type: TypeTime, Null: true},
		{Name: "params", Type: TypeJSON, Null: true},
		{Name: "paused", Type: TypeBool},
		{Name: "from_spec", Type: TypeBool},
		{Name: "created_at", Type: TypeTime},
		{Name: "updated_at", Type: TypeTime},
	}},
	{Name: "agents", Key: []string{"id"}, Columns: []Column{
		{Name: "id", Type: TypeText},
		{Name: "name", Type: TypeText},
		{Name: "labels", Type: TypeJSON},
		{Name: "created_at", Type: TypeTime},
		{Name: "last_seen_at", Type: TypeTime},
		{Name: "storage_kinds", Type: TypeJSON},
	}},
	{Name: "results", Key: []string{"project_id", "key"}, Columns: []Column{
		{Name: "project_id", Type: TypeText},
		{Name: "key", Type: TypeText},
		{Name: "value", Type: TypeBytes},
		{Name: "created_at", Type: TypeTime},
		{Name: "updated_at", Type: TypeTime},
	}},
}

// Schema returns every table of the stores as Copy moves them, in foreign
// key order (a table comes after the tables it refers to). A migration that
// adds a table or a column must add it here too: Copy refuses stores whose
// tables differ from these, and the stores' tests compare their migrated
// schemas with it.
func Schema() []Table {
	out := make([]Table, len(schema))
	for i, t := range schema {
		out[i] = Table{Name: t.Name, Key: slices.Clone(t.Key), Columns: slices.Clone(t.Columns)}
	}
	return out
}

// Catalog is what Copy asks of both stores.
type Catalog interface {
	// Columns returns the column names of every table of the store's
	// database, by table, except the migrations' own bookkeeping.
	Columns(ctx context.Context) (map[string][]string, error)
	// Count returns how many rows table holds.
	Count(ctx context.Context, table string) (int64, error)
}

// Dumper reads the rows of a store, all from one consistent snapshot.
type Dumper interface {
	Catalog
	// Dump calls fn with each row of t, in the order of t's key, as values
	// of the Go types t's columns name. fn owns the row. An error of fn
	// ends Dump, which returns it.
	Dump(ctx context.Context, t Table, fn func(Row) error) error
}

// Loader writes rows into a store, all in one transaction.
type Loader interface {
	Catalog
	// Load inserts rows into table t as they are: IDs, versions and times
	// included. The rows are checked: each has a value of its column's Go
	// type, nil only in a column that may be NULL. Load does not keep the
	// rows after it returns.
	Load(ctx context.Context, t Table, rows []Row) error
}

// Source is a store that Copy can read every record of.
type Source interface {
	// Dump calls fn with a Dumper on a consistent snapshot of the store
	// (a read transaction), released when fn returns, and returns fn's
	// error.
	Dump(ctx context.Context, fn func(Dumper) error) error
}

// Target is a store that Copy can write records into.
type Target interface {
	// Load calls fn with a Loader in one transaction that it commits when
	// fn returns nil, after moving every ID sequence past the IDs loaded,
	// and rolls back otherwise, returning fn's error. Writers of other
	// processes wait until it ends.
	Load(ctx context.Context, fn func(Loader) error) error
}

// TableCount is how many rows a table holds.
type TableCount struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// Batch limits of Copy: a batch of rows is loaded when it has copyBatchRows
// rows or about copyBatchBytes bytes of values (flow specs can be large).
const (
	copyBatchRows  = 1000
	copyBatchBytes = 8 << 20
)

// Copy copies every record of from into to, which must be empty, in one
// transaction of to: either all of them are copied or none. It reads from
// one snapshot of from; IDs, versions, times, JSON documents, log line IDs
// and encrypted secret values are copied as they are, and to's ID
// sequences are moved past the copied IDs.
//
// Both stores' tables must be those of Schema (else ErrInternal, naming the
// table and column that differ: the program does not know the stores'
// schema). A target with a record in any table is ErrConflict. After
// loading, Copy compares each table's row count in from and to and fails,
// naming the table, when they differ; nothing is committed then.
//
// progress, if not nil, is called with each table's name, the rows copied
// so far and the rows it has: once before its first batch and after each.
// Copy returns the rows copied, per table, in Schema's order.
func Copy(ctx context.Context, from Source, to Target, progress func(table string, done, total int64)) ([]TableCount, error) {
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	tables := Schema()
	var counts []TableCount
	err := from.Dump(ctx, func(d Dumper) error {
		return to.Load(ctx, func(l Loader) error {
			if err := checkCatalog(ctx, "source", d, tables); err != nil {
				return err
			}
			if err := checkCatalog(ctx, "target", l, tables); err != nil {
				return err
			}
			for _, t := range tables {
				n, err := l.Count(ctx, t.Name)
				if err != nil {
					return fmt.Errorf("count the target's %s: %w", t.Name, err)
				}
				if n > 0 {
					return reeve.Errorf(reeve.CodeConflict,
						"the target store is not empty (table %s has %d rows): copy into an empty database, one that only the server's migrations have touched",
						t.Name, n)
				}
			}
			counts = make([]TableCount, 0, len(tables))
			for _, t := range tables {
				n, err := copyTable(ctx, d, l, t, progress)
				if err != nil {
					return err
				}
				counts = append(counts, TableCount{Table: t.Name, Rows: n})
			}
			return verifyCounts(ctx, d, l, counts)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("copy store: %w", err)
	}
	return counts, nil
}

// checkCatalog checks that the tables and columns of a store (side names
// it) are those of tables.
func checkCatalog(ctx context.Context, side string, c Catalog, tables []Table) error {
	live, err := c.Columns(ctx)
	if err != nil {
		return fmt.Errorf("read the %s's tables: %w", side, err)
	}
	known := make(map[string]bool, len(tables))
	for _, t := range tables {
		known[t.Name] = true
		cols, ok := live[t.Name]
		if !ok {
			return reeve.Errorf(reeve.CodeInternal,
				"the %s store has no table %s: are both stores migrated by this version of reeve?", side, t.Name)
		}
		want := t.ColumnNames()
		for _, c := range cols {
			if !slices.Contains(want, c) {
				return reeve.Errorf(reeve.CodeInternal,
					"the %s store's table %s has column %s, which this version of reeve cannot copy: use the reeve version that made the store", side, t.Name, c)
			}
		}
		for _, c := range want {
			if !slices.Contains(cols, c) {
				return reeve.Errorf(reeve.CodeInternal,
					"the %s store's table %s lacks column %s: are both stores migrated by this version of reeve?", side, t.Name, c)
			}
		}
	}
	for name := range live {
		if !known[name] {
			return reeve.Errorf(reeve.CodeInternal,
				"the %s store has table %s, which this version of reeve cannot copy: use the reeve version that made the store", side, name)
		}
	}
	return nil
}

// copyTable copies the rows of t from d to l in batches and returns how
// many it copied.
func copyTable(ctx context.Context, d Dumper, l Loader, t Table, progress func(string, int64, int64)) (int64, error) {
	total, err := d.Count(ctx, t.Name)
	if err != nil {
		return 0, fmt.Errorf("count the source's %s: %w", t.Name, err)
	}
	progress(t.Name, 0, total)
	var (
		batch = make([]Row, 0, min(total, copyBatchRows))
		size  int
		done  int64
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := l.Load(ctx, t, batch); err != nil {
			return fmt.Errorf("load %s rows %d to %d (first key %s): %w",
				t.Name, done+1, done+int64(len(batch)), rowKey(t, batch[0]), err)
		}
		done += int64(len(batch))
		clear(batch)
		batch, size = batch[:0], 0
		progress(t.Name, done, total)
		return nil
	}
	err = d.Dump(ctx, t, func(r Row) error {
		n, err := checkRow(t, r)
		if err != nil {
			return err
		}
		batch = append(batch, r)
		size += n
		if len(batch) >= copyBatchRows || size >= copyBatchBytes {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return done, fmt.Errorf("copy %s: %w", t.Name, err)
	}
	if done != total {
		return done, reeve.Errorf(reeve.CodeInternal,
			"copy %s: the source counts %d rows but %d were read", t.Name, total, done)
	}
	return done, nil
}

// verifyCounts compares each table's rows in the source and the target
// with the rows copied.
func verifyCounts(ctx context.Context, d Dumper, l Loader, copied []TableCount) error {
	for _, c := range copied {
		src, err := d.Count(ctx, c.Table)
		if err != nil {
			return fmt.Errorf("verify %s: count the source's rows: %w", c.Table, err)
		}
		dst, err := l.Count(ctx, c.Table)
		if err != nil {
			return fmt.Errorf("verify %s: count the target's rows: %w", c.Table, err)
		}
		if src != c.Rows || dst != c.Rows {
			return reeve.Errorf(reeve.CodeInternal,
				"verify %s: the source has %d rows, %d were copied, the target has %d: nothing was committed",
				c.Table, src, c.Rows, dst)
		}
	}
	return nil
}

// checkRow checks that r fits t: a value per column, of the column's Go
// type, nil only where NULL is allowed. It makes a nil []byte of a NOT NULL
// bytes column empty, and returns the row's approximate size in bytes.
func checkRow(t Table, r Row) (int, error) {
	if len(r) != len(t.Columns) {
		return 0, reeve.Errorf(reeve.CodeInternal, "a row of %s has %d values for %d columns", t.Name, len(r), len(t.Columns))
	}
	size := 0
	for i, c := range t.Columns {
		v := r[i]
		if v == nil {
			if !c.Null {
				return 0, reeve.Errorf(reeve.CodeInternal, "%s row %s: column %s is NULL", t.Name, rowKey(t, r), c.Name)
			}
			continue
		}
		ok := false
		switch c.Type {
		case TypeText, TypeJSON:
			var s string
			s, ok = v.(string)
			size += len(s)
		case TypeInt:
			_, ok = v.(int64)
		case TypeBool:
			_, ok = v.(bool)
		case TypeTime:
			_, ok = v.(time.Time)
		case TypeBytes:
			var b []byte
			b, ok = v.([]byte)
			if ok && b == nil && !c.Null {
				r[i] = []byte{}
			}
			size += len(b)
		}
		if !ok {
			return 0, reeve.Errorf(reeve.CodeInternal, "%s row %s: column %s (%s) holds a %T",
				t.Name, rowKey(t, r), c.Name, c.Type, v)
		}
		size += 16
	}
	return size, nil
}

// rowKey returns the values of r's key columns, for messages.
func rowKey(t Table, r Row) string {
	var parts []string
	for _, k := range t.Key {
		for i, c := range t.Columns {
			if c.Name == k && i < len(r) {
				parts = append(parts, fmt.Sprintf("%s=%v", k, r[i]))
			}
		}
	}
	return strings.Join(parts, ",")
}
