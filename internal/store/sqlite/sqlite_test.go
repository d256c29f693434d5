package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
	"github.com/reevehq/reeve/internal/store/storetest"
)

// TestMain fails the package's tests if a goroutine is left running: every
// store closes its connection pools.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openTest(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(context.Background(), filepath.Join(tb.TempDir(), "reeve.db"))
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t) })
}

// TestClaimAcrossReplicas is the claim test of the issue on SQLite: 4
// agents claim 500 runs through two stores on one database file, as two
// server processes would; each run is claimed exactly once.
func TestClaimAcrossReplicas(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "reeve.db")
	var replicas []store.Store
	for i := range 2 {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open replica %d: %v", i, err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close replica %d: %v", i, err)
			}
		})
		replicas = append(replicas, s)
	}
	storetest.ClaimAcrossReplicas(t, replicas, 4, 500)
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) store.Store { return openTest(b) })
}

// BenchmarkRunList measures the UI's runs list and dashboard queries on
// storetest.ListBenchRuns runs (seeding takes some seconds).
func BenchmarkRunList(b *testing.B) {
	storetest.RunListBenchmarks(b, func(b *testing.B) store.Store { return openTest(b) }, nil)
}

// migrationFiles returns the names of the embedded migrations.
func migrationFiles(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no embedded migrations (%v)", err)
	}
	return names
}

func TestMigrateFromEmptyDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "empty.db")
	db, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	res, err := migrate(ctx, db)
	if err != nil {
		t.Fatalf("migrate an empty database: %v", err)
	}
	files := migrationFiles(t)
	if len(res) != len(files) {
		t.Errorf("migrate applied %d migrations, want all %d", len(res), len(files))
	}
	for _, r := range res {
		if r.Error != nil || r.Empty {
			t.Errorf("migration %s: error %v, empty %v", r.Source.Path, r.Error, r.Empty)
		}
	}
	for _, table := range []string{"projects", "flows", "flow_versions", "flow_runs", "task_runs", "states", "logs",
		"secrets", "tokens", "schedules", "agents", "results"} {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s: %d tables (%v), want 1", table, n, err)
		}
	}

	res, err = migrate(ctx, db)
	if err != nil || len(res) != 0 {
		t.Errorf("migrating a migrated database applied %d migrations (%v), want none", len(res), err)
	}
}

func TestMigrationsAreForwardOnly(t *testing.T) {
	t.Parallel()
	for _, name := range migrationFiles(t) {
		b, err := migrationFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "-- +goose Up") {
			t.Errorf("%s has no '-- +goose Up' section", name)
		}
		if strings.Contains(string(b), "+goose Down") {
			t.Errorf("%s has a Down section: migrations are forward-only; fix forward in a new file", name)
		}
	}
}

func TestReopenKeepsDataAndMigratesNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "reeve.db")

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	p, err := s.CreateProject(ctx, store.Project{Name: "etl"})
	if err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("Open again: %v", err)
	}
	defer s.Close()
	got, err := s.GetProject(ctx, "etl")
	if err != nil || got.ID != p.ID {
		t.Errorf("after reopening: GetProject = %+v, %v; want %+v", got, err, p)
	}
	res, err := migrate(ctx, s.write)
	if err != nil || len(res) != 0 {
		t.Errorf("migrating a reopened database applied %d migrations (%v), want none", len(res), err)
	}
	var versions int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if want := len(migrationFiles(t)); versions != want {
		t.Errorf("%d migrations recorded after two opens, want %d (each once)", versions, want)
	}
}

func TestOpenRejectsNonFilePaths(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", ":memory:", "reeve.db?mode=ro"} {
		if s, err := Open(t.Context(), path); !errors.Is(err, reeve.ErrInvalid) {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrInvalid", path, err)
		}
	}
}

// TestPragmas checks the settings of the writer and of several readers:
// the DSN applies them to every pooled connection.
func TestPragmas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTest(t)

	check := func(name string, c *sql.Conn, queryOnly int) {
		t.Helper()
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"synchronous":  "1", // NORMAL
			"foreign_keys": "1",
			"busy_timeout": fmt.Sprint(busyTimeout.Milliseconds()),
			"query_only":   fmt.Sprint(queryOnly),
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", name, pragma, err)
			}
			if got != want {
				t.Errorf("%s: PRAGMA %s = %s, want %s", name, pragma, got, want)
			}
		}
	}
	w, err := s.write.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("writer", w, 0)
	w.Close()
	if n := s.write.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("writer pool allows %d connections, want 1", n)
	}

	var readers []*sql.Conn
	for i := range 3 {
		r, err := s.read.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		readers = append(readers, r)
		check(fmt.Sprintf("reader %d", i), r, 1)
	}
	for _, r := range readers {
		r.Close()
	}
}

// TestConcurrentWriters is the load test of issue 3: 50 writers, each
// running 40 transactions that mix flow-run states, task-run state batches
// and logs, with readers beside them. No call may fail (in particular none
// with "database is locked") and every write must be there afterwards.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	const (
		writers = 50
		txs     = 40
		batch   = 5
		logs    = 3
	)
	ctx := t.Context()
	s := openTest(t)
	if _, err := s.CreateProject(ctx, store.Project{Name: "load"}); err != nil {
		t.Fatal(err)
	}
	v, _, err := s.RegisterFlow(ctx, store.Registration{Project: "load", Flow: "f", SpecHash: "h", Spec: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	newRun := func() store.FlowRun {
		r, _, err := s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v.ID})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	shared := newRun()
	runs := make([]store.FlowRun, writers)
	for i := range runs {
		runs[i] = newRun()
	}

	// What each writer did, to check against the store afterwards.
	type tally struct{ states, taskBatches, logBatches, sharedBatches int }
	tallies := make([]tally, writers)
	var (
		mu   sync.Mutex
		errs []error
	)
	fail := func(g, j int, op string, err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Errorf("writer %d, transaction %d, %s: %w", g, j, op, err))
	}

	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			run, tl := runs[g], &tallies[g]
			version := run.Version
			var prev []string // task runs created Pending by the previous batch
			for j := range txs {
				switch j % 4 {
				case 0:
					r, err := s.SetFlowRunState(ctx, run.ID, version, state.State{Kind: state.Running, Message: fmt.Sprint(j)})
					if err != nil {
						fail(g, j, "SetFlowRunState", err)
						return
					}
					version = r.Version
					tl.states++
				case 1:
					var writes []store.TaskRunWrite
					for _, k := range prev {
						writes = append(writes, store.TaskRunWrite{Key: k, Task: "t", Expect: 1, State: state.State{Kind: state.Running}})
					}
					prev = prev[:0]
					for k := range batch {
						key := fmt.Sprintf("t%d-%d", j, k)
						prev = append(prev, key)
						writes = append(writes, store.TaskRunWrite{Key: key, Task: "t", MapIndex: k, State: state.State{Kind: state.Pending}})
					}
					if _, err := s.WriteTaskRunStates(ctx, run.ID, 0, writes); err != nil {
						fail(g, j, "WriteTaskRunStates", err)
						return
					}
					tl.taskBatches++
				case 2:
					var lines []store.LogLine
					for k := range logs {
						lines = append(lines, store.LogLine{FlowRunID: run.ID, Level: "INFO", Message: fmt.Sprintf("%d-%d", j, k)})
					}
					if err := s.AppendLogs(ctx, lines); err != nil {
						fail(g, j, "AppendLogs", err)
						return
					}
					tl.logBatches++
				case 3:
					// All writers on one flow run, and reads beside the writes.
					_, err := s.WriteTaskRunStates(ctx, shared.ID, 0, []store.TaskRunWrite{
						{Key: fmt.Sprintf("w%d-%d", g, j), Task: "shared", State: state.State{Kind: state.Pending}},
					})
					if err != nil {
						fail(g, j, "WriteTaskRunStates(shared)", err)
						return
					}
					tl.sharedBatches++
					if _, _, err := s.ListFlowRuns(ctx, store.FlowRunFilter{Limit: 10}); err != nil {
						fail(g, j, "ListFlowRuns", err)
						return
					}
					if _, err := s.History(ctx, run.ID, ""); err != nil {
						fail(g, j, "History", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	sharedTasks := 0
	for g, run := range runs {
		tl := tallies[g]
		got, err := s.GetFlowRun(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(1 + tl.states); got.Version != want {
			t.Errorf("writer %d: run version %d, want %d", g, got.Version, want)
		}
		h, err := s.History(ctx, run.ID, "")
		if err != nil || len(h) != 1+tl.states {
			t.Errorf("writer %d: %d states in the history (%v), want %d", g, len(h), err, 1+tl.states)
		}
		trs, err := s.ListTaskRuns(ctx, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(trs) != batch*tl.taskBatches {
			t.Errorf("writer %d: %d task runs, want %d", g, len(trs), batch*tl.taskBatches)
		}
		var runningTasks int
		for _, tr := range trs {
			if tr.State.Kind == state.Running && tr.Version == 2 {
				runningTasks++
			}
		}
		if want := batch * (tl.taskBatches - 1); runningTasks != want {
			t.Errorf("writer %d: %d task runs moved to Running, want %d", g, runningTasks, want)
		}
		lines, err := s.ListLogs(ctx, run.ID, "", 0, 10000)
		if err != nil || len(lines) != logs*tl.logBatches {
			t.Errorf("writer %d: %d log lines (%v), want %d", g, len(lines), err, logs*tl.logBatches)
		}
		sharedTasks += tl.sharedBatches
	}
	trs, err := s.ListTaskRuns(ctx, shared.ID)
	if err != nil || len(trs) != sharedTasks {
		t.Errorf("shared flow run: %d task runs (%v), want %d", len(trs), err, sharedTasks)
	}
	if want := writers * txs / 4; sharedTasks != want {
		t.Errorf("%d writes to the shared run, want %d", sharedTasks, want)
	}
}

// TestWritersQueueInsteadOfFailing holds the writer connection in a long
// transaction and checks that another write waits for it rather than
// failing with SQLITE_BUSY.
func TestWritersQueueInsteadOfFailing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTest(t)
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO projects (id, name, created_at) VALUES ('p1', 'held', 0)`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.CreateProject(ctx, store.Project{Name: "queued"})
		done <- err
	}()
	// Wait until the write queues for the writer connection.
	for deadline := time.Now().Add(10 * time.Second); s.write.Stats().WaitCount == 0; {
		select {
		case err := <-done:
			t.Fatalf("CreateProject finished (%v) while another transaction held the writer", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("CreateProject did not queue for the writer connection within 10s")
		}
		runtime.Gosched()
	}
	// Reads are not blocked by the open write transaction.
	if _, err := s.ListProjects(ctx); err != nil {
		t.Errorf("ListProjects during a write transaction: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("queued CreateProject: %v", err)
	}
	ps, err := s.ListProjects(ctx)
	if err != nil || len(ps) != 2 {
		t.Errorf("projects = %+v (%v), want held and queued", ps, err)
	}
}

// TestListFlowRunsUsesIndexes checks that the lists a server makes often
// find their runs through an index, not by scanning every run: the
// monitor's runs with a runner, an agent's runs, and the UI's runs list
// (newest first, of a state, a project or a flow).
func TestListFlowRunsUsesIndexes(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	cases := []struct {
		name  string
		where string
		args  []any
		index string
	}{
		// Several states are listed one by one (a UNION ALL of these).
		{"States", "state = ? AND (created_at < ? OR (created_at = ? AND id < ?))", []any{"Running", 1, 1, "x"}, "flow_runs_state_created"},
		{"AgentID", "agent_id = ? AND agent_id <> ''", []any{"agent"}, "flow_runs_agent"},
		{"All", "", nil, "flow_runs_created"},
		{"OneState", "state IN (?)", []any{"Failed"}, "flow_runs_state_created"},
		{"Project", "project_id = ?", []any{"p"}, "flow_runs_project_created"},
		{"Flow", "flow_id = ?", []any{"f"}, "flow_runs_flow_created"},
		// The Scheduled runs due (the UI's late and waiting runs).
		{"DueScheduled", "state IN (?) AND scheduled_at < ?", []any{"Scheduled", 1}, "flow_runs_state_scheduled"},
		{"LabelScansNewestFirst", "EXISTS (SELECT 1 FROM json_each(flow_runs.labels) WHERE value = ?)", []any{"gpu"}, "flow_runs_created"},
	}
	for _, c := range cases {
		where := ""
		if c.where != "" {
			where = ` WHERE ` + c.where
		}
		q := `EXPLAIN QUERY PLAN SELECT ` + flowRunCols + ` FROM flow_runs` + where +
			` ORDER BY created_at DESC, id DESC LIMIT ?`
		rows, err := s.read.QueryContext(t.Context(), q, append(c.args, 101)...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var plan []string
		for rows.Next() {
			var (
				id, parent, unused int
				detail             string
			)
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		if p := strings.Join(plan, "; "); !strings.Contains(p, "USING INDEX "+c.index) {
			t.Errorf("%s: the plan %q does not use index %s", c.name, p, c.index)
		}
	}
}

// TestCountTaskRunsUsesIndex checks that the task counts of a page of runs
// are read through task_runs' (flow_run_id, key) index, not by a scan.
func TestCountTaskRunsUsesIndex(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	rows, err := s.read.QueryContext(t.Context(),
		`EXPLAIN QUERY PLAN SELECT flow_run_id, state, count(*) FROM task_runs
		 WHERE flow_run_id IN (?, ?, ?) GROUP BY flow_run_id, state`, "a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var (
			id, parent, unused int
			detail             string
		)
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(plan, "; "); !strings.Contains(p, "SEARCH task_runs USING INDEX") {
		t.Errorf("the plan %q does not search an index of task_runs", p)
	}
}
