package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

// mem is an in-memory store.Source and store.Target for the tests of
// Copy's own logic; the real stores' tests copy between SQLite and
// PostgreSQL.
type mem struct {
	tables map[string][]store.Row
	cols   map[string][]string
	drop   string // Load drops the last row of each batch of this table
}

func newMem() *mem {
	m := &mem{tables: map[string][]store.Row{}, cols: map[string][]string{}}
	for _, t := range store.Schema() {
		m.cols[t.Name] = t.ColumnNames()
	}
	return m
}

func (m *mem) Columns(context.Context) (map[string][]string, error) { return m.cols, nil }
func (m *mem) Count(_ context.Context, table string) (int64, error) {
	return int64(len(m.tables[table])), nil
}

func (m *mem) Dump(ctx context.Context, fn func(store.Dumper) error) error { return fn(memDumper{m}) }

type memDumper struct{ *mem }

func (d memDumper) Dump(_ context.Context, t store.Table, fn func(store.Row) error) error {
	for _, r := range d.tables[t.Name] {
		if err := fn(slices.Clone(r)); err != nil {
			return err
		}
	}
	return nil
}

// Load works on a copy of the tables and keeps it only when fn succeeds.
func (m *mem) Load(ctx context.Context, fn func(store.Loader) error) error {
	tx := &mem{tables: maps.Clone(m.tables), cols: m.cols, drop: m.drop}
	if err := fn(memLoader{tx}); err != nil {
		return err
	}
	m.tables = tx.tables
	return nil
}

type memLoader struct{ *mem }

func (l memLoader) Load(_ context.Context, t store.Table, rows []store.Row) error {
	if t.Name == l.drop {
		rows = rows[:len(rows)-1]
	}
	for _, r := range rows {
		l.tables[t.Name] = append(l.tables[t.Name], slices.Clone(r))
	}
	return nil
}

// row returns a row of t with a value of each column's type.
func row(t store.Table, i int) store.Row {
	r := make(store.Row, len(t.Columns))
	for j, c := range t.Columns {
		switch c.Type {
		case store.TypeText:
			r[j] = fmt.Sprintf("%s-%d", c.Name, i)
		case store.TypeInt:
			r[j] = int64(i)
		case store.TypeBool:
			r[j] = i%2 == 0
		case store.TypeTime:
			r[j] = time.UnixMicro(int64(i)).UTC()
		case store.TypeJSON:
			r[j] = fmt.Sprintf(`{"i": %d}`, i)
		case store.TypeBytes:
			r[j] = []byte{byte(i), 0}
		}
	}
	return r
}

func fillMem(rows int) *mem {
	m := newMem()
	for _, t := range store.Schema() {
		for i := range rows {
			m.tables[t.Name] = append(m.tables[t.Name], row(t, i))
		}
	}
	return m
}

func TestCopy(t *testing.T) {
	t.Parallel()
	src, dst := fillMem(2345), newMem()
	var calls []string
	counts, err := store.Copy(t.Context(), src, dst, func(table string, done, total int64) {
		if table == "logs" {
			calls = append(calls, fmt.Sprintf("%d/%d", done, total))
		}
	})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	for i, c := range counts {
		if want := store.Schema()[i].Name; c.Table != want || c.Rows != 2345 {
			t.Errorf("count %d = %+v, want {%s 2345}", i, c, want)
		}
	}
	if got := strings.Join(calls, " "); got != "0/2345 1000/2345 2000/2345 2345/2345" {
		t.Errorf("progress of logs: %s, want a call before the first batch and after each", got)
	}
	for name, rows := range src.tables {
		if !slices.EqualFunc(rows, dst.tables[name], func(a, b store.Row) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
			t.Errorf("table %s differs after the copy", name)
		}
	}

	_, err = store.Copy(t.Context(), src, dst, nil)
	if !errors.Is(err, reeve.ErrConflict) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Copy into a store with records: error %v, want ErrConflict saying the target must be empty", err)
	}
}

// TestCopyVerifiesCounts checks that a target that lost rows fails the
// copy, naming the table, and keeps nothing.
func TestCopyVerifiesCounts(t *testing.T) {
	t.Parallel()
	src, dst := fillMem(10), newMem()
	dst.drop = "tokens"
	_, err := store.Copy(t.Context(), src, dst, nil)
	if !errors.Is(err, reeve.ErrInternal) || !strings.Contains(err.Error(), "verify tokens") {
		t.Fatalf("Copy into a target that drops rows: error %v, want ErrInternal naming tokens", err)
	}
	if len(dst.tables) != 0 {
		t.Errorf("after the failed copy the target has %d tables with rows, want none", len(dst.tables))
	}
}

// TestCopyChecksRows checks that a value of the wrong type, or a NULL in a
// column that cannot hold it, fails the copy naming the table, row and
// column.
func TestCopyChecksRows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		table string
		col   int
		value any
		want  []string
	}{
		{"text as bytes", "projects", 1, []byte("alpha"), []string{"projects", "id=id-0", "name", "[]uint8"}},
		{"time as micros", "flows", 4, int64(5), []string{"flows", "created_at", "int64"}},
		{"NULL", "agents", 2, nil, []string{"agents", "labels", "NULL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := fillMem(1)
			src.tables[tc.table][0][tc.col] = tc.value
			_, err := store.Copy(t.Context(), src, newMem(), nil)
			if !errors.Is(err, reeve.ErrInternal) {
				t.Fatalf("error %v, want ErrInternal", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestCopyNilBytes checks that a nil value of a NOT NULL bytes column (a
// driver's empty BLOB) arrives as an empty value, not as NULL.
func TestCopyNilBytes(t *testing.T) {
	t.Parallel()
	src, dst := fillMem(1), newMem()
	src.tables["secrets"][0][2] = []byte(nil)
	if _, err := store.Copy(t.Context(), src, dst, nil); err != nil {
		t.Fatal(err)
	}
	if v := dst.tables["secrets"][0][2].([]byte); v == nil || len(v) != 0 {
		t.Errorf("secret value = %#v, want empty and not nil", v)
	}
}
