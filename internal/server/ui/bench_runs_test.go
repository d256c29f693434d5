package ui_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to seed the store's file

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
	"github.com/reevehq/reeve/internal/store/postgres"
	"github.com/reevehq/reeve/internal/store/sqlite"
	"github.com/reevehq/reeve/internal/testenv"
)

// benchRunsTotal is how many flow runs the runs-list benchmarks put in
// the store.
const benchRunsTotal = 100_000

// benchRunsTasked is how many of the newest runs have task runs (the
// first pages' runs, whose task counts the list shows).
const benchRunsTasked = 1_000

// BenchmarkRunsList is the server's time to render GET /ui/runs (the
// first page, 50 rows with their task counts; a state filter; a text
// search that matches nothing) and to answer the list's poll, with
// 100,000 runs in the store, on SQLite and on PostgreSQL. It reports the
// median and 90th percentile in milliseconds.
func BenchmarkRunsList(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "reeve.db")
		st, err := sqlite.Open(context.Background(), path)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		benchRunsList(b, st, func(tpl []string) error { return benchRunsSeedSQLite(path, tpl) })
	})
	b.Run("postgres", func(b *testing.B) {
		dsn := testenv.Postgres(b)
		st, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		benchRunsList(b, st, func(tpl []string) error { return benchRunsSeedPostgres(dsn, tpl) })
	})
}

// benchRunsList seeds st through the API with one template run per state
// (with task runs), copies them into benchRunsTotal runs with seed, then
// measures rendering the runs list.
func benchRunsList(b *testing.B, st store.Store, seed func(templates []string) error) {
	ctx := context.Background()
	srv, admin := serverOn(b, st)
	h := srv.Handler()
	e := envOf(b, srv, admin)
	e.flow("etl", "")
	// The templates, each with task runs in a mix of states.
	mixes := []struct {
		run   []state.Kind
		tasks []state.Kind
	}{
		{[]state.Kind{state.Running, state.Success}, []state.Kind{state.Success, state.Success, state.Success, state.Cached, state.Success}},
		{[]state.Kind{state.Running, state.Failed}, []state.Kind{state.Success, state.Success, state.Failed, state.Pending, state.Pending}},
		{[]state.Kind{state.Running}, []state.Kind{state.Success, state.Running, state.Running, state.Pending, state.Pending}},
		{nil, nil},
	}
	var templates []string
	for _, m := range mixes {
		run := e.run("etl", "")
		for _, k := range m.run {
			e.setState(run.ID, k, "")
		}
		var writes []api.TaskRunWrite
		for i, k := range m.tasks {
			writes = append(writes, api.TaskRunWrite{Key: fmt.Sprintf("t%d", i), Task: "a", State: state.State{Kind: k, Time: time.Now()}})
		}
		if len(writes) > 0 {
			if _, err := e.api.WriteTaskRunStates(ctx, run.ID, writes); err != nil {
				b.Fatal(err)
			}
		}
		templates = append(templates, run.ID)
	}
	start := time.Now()
	if err := seed(templates); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d runs in %v", benchRunsTotal, time.Since(start).Round(time.Millisecond))

	get := func(b *testing.B, path string, rows int) {
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(&http.Cookie{Name: "reeve_session", Value: admin})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s = %d:\n%s", path, rec.Code, rec.Body)
		}
		if rows >= 0 {
			if n := strings.Count(rec.Body.String(), "<tr data-run="); n != rows {
				b.Fatalf("GET %s shows %d runs, want %d", path, n, rows)
			}
		}
		if rows > 0 && !strings.Contains(rec.Body.String(), `<span class="tc state-`) {
			b.Fatalf("GET %s shows no task counts", path)
		}
	}
	// The list was read just now: no run is newer.
	since := url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano))
	for _, bc := range []struct {
		name, path string
		rows       int // -1: not a page
	}{
		// The first page, 50 rows with their task counts: the target.
		{"FirstPage", "/ui/runs", 50},
		// A state filter (a quarter of the runs), on its first page.
		{"Failed", "/ui/runs?state=Failed", 50},
		// A text search that matches nothing: every run is read.
		{"TextNoMatch", "/ui/runs?q=zebra", 0},
		// What each open list asks every 3 s: new runs and its rows.
		{"NewPoll", "/ui/runs/new?limit=50&since=" + since, -1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			get(b, bc.path, bc.rows) // warm the caches once, as a server that has run a while has
			ds := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				get(b, bc.path, bc.rows)
				ds = append(ds, time.Since(t0))
			}
			slices.Sort(ds)
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(ds[len(ds)*9/10].Microseconds())/1000, "p90-ms")
		})
	}
}

// benchRunsCopy builds the statements that copy the template runs into
// benchRunsTotal-len(templates) runs older than them, template i%len
// for the i-th, and their task runs for the newest benchRunsTasked.
// Every column is copied but the keys and the creation time, so the
// copies stay right when the tables gain columns. series(lo, hi) is the
// SQL of a table s(n) of the numbers lo..hi; tpl the table tpl(idx, id)
// of the templates; older(col, n) the creation time n milliseconds
// before col; id(n) a run's ID.
func benchRunsCopy(runCols, taskCols []string, series func(lo, hi int) string, tpl string, older func(col, n string) string, id func(n string) string) []string {
	copies := benchRunsTotal - 4
	sel := func(cols []string, repl map[string]string) string {
		out := make([]string, len(cols))
		for i, c := range cols {
			if r, ok := repl[c]; ok {
				out[i] = r
			} else {
				out[i] = "x." + c
			}
		}
		return strings.Join(out, ", ")
	}
	runs := fmt.Sprintf(`INSERT INTO flow_runs (%s) SELECT %s FROM %s JOIN %s ON tpl.idx = s.n %% 4 JOIN flow_runs x ON x.id = tpl.id`,
		strings.Join(runCols, ", "),
		sel(runCols, map[string]string{"id": id("s.n"), "created_at": older("(SELECT min(created_at) FROM flow_runs)", fmt.Sprintf("(%d - s.n)", copies)), "idempotency_key": "''"}),
		series(0, copies-1), tpl)
	tasks := fmt.Sprintf(`INSERT INTO task_runs (%s) SELECT %s FROM %s JOIN %s ON tpl.idx = s.n %% 4 JOIN task_runs x ON x.flow_run_id = tpl.id`,
		strings.Join(taskCols, ", "),
		sel(taskCols, map[string]string{"id": id("s.n") + " || '-' || x.key", "flow_run_id": id("s.n")}),
		series(copies-benchRunsTasked, copies-1), tpl)
	return []string{runs, tasks}
}

// benchRunsSeedSQLite copies the templates in the SQLite file at path.
func benchRunsSeedSQLite(path string, templates []string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)")
	if err != nil {
		return err
	}
	defer db.Close()
	cols := func(table string) ([]string, error) {
		rows, err := db.Query(`SELECT name FROM pragma_table_info(?)`, table)
		if err != nil {
			return nil, err
		}
		var out []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, rows.Err()
	}
	runCols, err := cols("flow_runs")
	if err != nil {
		return err
	}
	taskCols, err := cols("task_runs")
	if err != nil {
		return err
	}
	var vals []string
	for i, id := range templates {
		vals = append(vals, fmt.Sprintf("(%d, '%s')", i, id))
	}
	series := func(lo, hi int) string {
		return fmt.Sprintf("(WITH RECURSIVE r(n) AS (SELECT %d UNION ALL SELECT n + 1 FROM r WHERE n < %d) SELECT n FROM r) s", lo, hi)
	}
	tpl := "(SELECT column1 AS idx, column2 AS id FROM (VALUES " + strings.Join(vals, ", ") + ")) tpl"
	stmts := benchRunsCopy(runCols, taskCols, series, tpl,
		func(col, n string) string { return col + " - 1000 * " + n },
		func(n string) string { return "printf('bench-%08d', " + n + ")" })
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range stmts {
		if _, err := tx.Exec(q); err != nil {
			return fmt.Errorf("seed: %w\n%s", err, q)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.Exec("ANALYZE")
	return err
}

// benchRunsSeedPostgres copies the templates in the PostgreSQL database
// at dsn.
func benchRunsSeedPostgres(dsn string, templates []string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	cols := func(table string) ([]string, error) {
		rows, err := conn.Query(ctx, `SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position`, table)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	runCols, err := cols("flow_runs")
	if err != nil {
		return err
	}
	taskCols, err := cols("task_runs")
	if err != nil {
		return err
	}
	var vals []string
	for i, id := range templates {
		vals = append(vals, fmt.Sprintf("(%d, '%s')", i, id))
	}
	series := func(lo, hi int) string { return fmt.Sprintf("generate_series(%d, %d) AS s(n)", lo, hi) }
	tpl := "(VALUES " + strings.Join(vals, ", ") + ") AS tpl(idx, id)"
	stmts := benchRunsCopy(runCols, taskCols, series, tpl,
		func(col, n string) string { return col + " - " + n + " * interval '1 millisecond'" },
		func(n string) string { return "'bench-' || lpad(" + n + "::text, 8, '0')" })
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("seed: %w\n%s", err, q)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "ANALYZE")
	return err
}
