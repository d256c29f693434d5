package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
	"github.com/reevehq/reeve/internal/store/storetest"
	"github.com/reevehq/reeve/internal/testenv"
)

// TestMain stops the PostgreSQL cluster the tests started and checks for
// leaked goroutines.
func TestMain(m *testing.M) { testenv.Main(m) }

// open returns a store on a new, empty database of its own.
func open(tb testing.TB) *Store {
	tb.Helper()
	url := testenv.Postgres(tb)
	s, err := Open(context.Background(), url)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

// TestClaimAcrossReplicas is the claim test of the issue: 4 agents claim
// 500 runs through two stores (two server replicas, each with its own
// connection pool) on one database; each run is claimed exactly once.
func TestClaimAcrossReplicas(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	var replicas []store.Store
	for i := range 2 {
		s, err := Open(t.Context(), url)
		if err != nil {
			t.Fatalf("Open replica %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		replicas = append(replicas, s)
	}
	storetest.ClaimAcrossReplicas(t, replicas, 4, 500)
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) store.Store { return open(b) })
}

// BenchmarkRunList measures the UI's runs list and dashboard queries on
// storetest.ListBenchRuns runs (seeding takes some seconds). The tables
// are vacuumed and analyzed after seeding, as autovacuum does after a bulk
// load (PostgreSQL 13 and later vacuum a table after many inserts).
func BenchmarkRunList(b *testing.B) {
	storetest.RunListBenchmarks(b, func(b *testing.B) store.Store { return open(b) }, func(b *testing.B, s store.Store) {
		if _, err := s.(*Store).pool.Exec(b.Context(), `VACUUM (ANALYZE) flow_runs, task_runs`); err != nil {
			b.Fatalf("VACUUM: %v", err)
		}
	})
}

// TestMigrateFromEmpty applies the migrations to an empty database, checks
// the schema they leave, and that migrating again does nothing.
func TestMigrateFromEmpty(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := testenv.Postgres(t)
	start := time.Now()
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatalf("Open on an empty database: %v", err)
	}
	defer s.Close()
	t.Logf("Open migrated an empty database in %v", time.Since(start).Round(time.Millisecond))

	files, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no embedded migrations (%v)", err)
	}
	var version int64
	if err := s.pool.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	// The newest file's number: migrations of concurrent branches may
	// land out of order, so the count of files can lag behind it.
	last, err := strconv.ParseInt(strings.SplitN(path.Base(files[len(files)-1]), "_", 2)[0], 10, 64)
	if err != nil {
		t.Fatalf("migration file %s has no number: %v", files[len(files)-1], err)
	}
	if version != last {
		t.Errorf("schema version = %d, want %d (the newest migration file's)", version, last)
	}
	for _, table := range []string{"projects", "flows", "flow_versions", "flow_runs", "task_runs", "states", "logs",
		"secrets", "tokens", "schedules", "agents", "results"} {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			t.Errorf("table %s missing after the migrations", table)
		}
	}

	res, err := migrate(ctx, s.pool)
	if err != nil || len(res) != 0 {
		t.Errorf("migrating a migrated database applied %d migrations (%v), want none", len(res), err)
	}
	again, err := Open(ctx, url)
	if err != nil {
		t.Fatalf("re-Open: %v", err)
	}
	again.Close()
}

// TestMigrationsForwardOnly checks that no migration has a Down section:
// a schema is only ever moved forward, by a new file.
func TestMigrationsForwardOnly(t *testing.T) {
	t.Parallel()
	files, _ := fs.Glob(migrationFS, "migrations/*.sql")
	for _, f := range files {
		b, err := migrationFS.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "-- +goose Up") {
			t.Errorf("%s has no -- +goose Up section", f)
		}
		if strings.Contains(string(b), "+goose Down") {
			t.Errorf("%s has a Down section: migrations are forward-only, write a new file instead", f)
		}
	}
}

// TestConcurrentOpen starts several replicas on one empty database at once:
// all must open, and the migrations must be applied once.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := testenv.Postgres(t)
	const replicas = 4
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	stores := make([]*Store, replicas)
	for i := range replicas {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Open: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	var applied int
	if err := stores[0].pool.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	files, _ := fs.Glob(migrationFS, "migrations/*.sql")
	if applied != len(files) {
		t.Errorf("%d migrations recorded, want %d: each must be applied once", applied, len(files))
	}
	// Every replica works on the one schema.
	for i, s := range stores {
		if _, err := s.CreateProject(ctx, store.Project{Name: fmt.Sprintf("replica-%d", i)}); err != nil {
			t.Errorf("replica %d: CreateProject: %v", i, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	_, err := Open(ctx, "postgres://reeve:secret@localhost:notaport/reeve")
	if !errors.Is(err, reeve.ErrInvalid) {
		t.Errorf("Open(malformed URL) = %v, want ErrInvalid", err)
	}
	if err != nil && strings.Contains(err.Error(), "secret") {
		t.Errorf("the error shows the password: %v", err)
	}

	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = Open(cctx, "postgres://reeve:secret@"+addr+"/reeve?sslmode=disable&connect_timeout=5")
	if !errors.Is(err, reeve.ErrUnavailable) {
		t.Errorf("Open(nothing listening) = %v, want ErrUnavailable", err)
	}
	if err != nil && strings.Contains(err.Error(), "secret") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestLogsTailWithoutGaps appends a flow run's logs from several writers
// while a reader pages through them by ID, as the UI's live log does: the
// reader must see every line, although IDs are handed out before the
// transactions that take them commit.
func TestLogsTailWithoutGaps(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t)
	run := seedRun(t, s)

	const writers, batches, perBatch = 4, 25, 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				lines := make([]store.LogLine, perBatch)
				for i := range lines {
					lines[i] = store.LogLine{FlowRunID: run.ID, Level: "info", Message: fmt.Sprintf("writer %d batch %d line %d", w, b, i)}
				}
				if err := s.AppendLogs(ctx, lines); err != nil {
					t.Errorf("AppendLogs: %v", err)
					return
				}
			}
		})
	}

	const total = writers * batches * perBatch
	var seen int
	var after int64
	deadline := time.Now().Add(time.Minute)
	for seen < total && time.Now().Before(deadline) {
		lines, err := s.ListLogs(ctx, run.ID, "", after, 50)
		if err != nil {
			t.Fatalf("ListLogs: %v", err)
		}
		for _, l := range lines {
			if l.ID <= after {
				t.Fatalf("line ID %d after %d: IDs must increase", l.ID, after)
			}
			after = l.ID
			seen++
		}
	}
	wg.Wait()
	if seen != total {
		t.Errorf("the reader saw %d of %d lines: lines committed behind its position were skipped", seen, total)
	}
}

// TestTextPostgreSQLCannotHold checks what happens to text PostgreSQL
// cannot store: log lines keep going, with U+FFFD in place of NUL bytes and
// invalid UTF-8, and a name with a NUL byte is invalid.
func TestTextPostgreSQLCannotHold(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t)
	run := seedRun(t, s)

	if err := s.AppendLogs(ctx, []store.LogLine{{FlowRunID: run.ID, Level: "info", Message: "a\x00b\xffc"}}); err != nil {
		t.Fatalf("AppendLogs with a NUL byte and invalid UTF-8: %v", err)
	}
	lines, err := s.ListLogs(ctx, run.ID, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || lines[0].Message != "a\uFFFDb\uFFFDc" {
		t.Errorf("ListLogs = %+v, want one line %q", lines, "a\uFFFDb\uFFFDc")
	}

	_, err = s.CreateProject(ctx, store.Project{Name: "bad\x00name"})
	if !errors.Is(err, reeve.ErrInvalid) {
		t.Errorf("CreateProject(name with NUL) = %v, want ErrInvalid", err)
	}
}

// TestWriteTaskRunStatesMissingFlowRun checks that a batch that creates
// task runs of a missing flow run is not found, not a foreign key error.
func TestWriteTaskRunStatesMissingFlowRun(t *testing.T) {
	t.Parallel()
	s := open(t)
	_, err := s.WriteTaskRunStates(t.Context(), "no-such-run", 0, []store.TaskRunWrite{
		{Key: "a", Task: "a", State: state.State{Kind: state.Pending}},
		{Key: "b", Task: "b", Expect: 3, State: state.State{Kind: state.Running}},
	})
	if !errors.Is(err, reeve.ErrNotFound) || !strings.Contains(err.Error(), "no-such-run") {
		t.Errorf("WriteTaskRunStates(missing flow run) = %v, want ErrNotFound naming it", err)
	}
}

// TestStateHistoryOrder checks the history of task runs written in big
// batches, where the set-based statements must keep each run's order.
func TestStateHistoryOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t)
	run := seedRun(t, s)
	kinds := []state.Kind{state.Pending, state.Running, state.Retrying, state.Running, state.Success}
	var writes []store.TaskRunWrite
	for i, k := range kinds {
		for j := range 50 {
			writes = append(writes, store.TaskRunWrite{
				Key: fmt.Sprintf("t[%d]", j), Task: "t", MapIndex: j, Expect: int64(i),
				State: state.State{Kind: k, Attempt: 1},
			})
		}
	}
	trs, err := s.WriteTaskRunStates(ctx, run.ID, 0, writes)
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.History(ctx, run.ID, trs[7].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != len(kinds) {
		t.Fatalf("history has %d states, want %d", len(h), len(kinds))
	}
	for i, k := range kinds {
		if h[i].Kind != k {
			t.Errorf("history[%d] = %s, want %s", i, h[i].Kind, k)
		}
	}
	listed, err := s.ListTaskRuns(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range listed {
		if tr.Version != int64(len(kinds)) || tr.State.Kind != state.Success {
			t.Errorf("task run %s at version %d in %s, want %d in Success", tr.Key, tr.Version, tr.State.Kind, len(kinds))
		}
	}
}

func seedRun(t *testing.T, s *Store) store.FlowRun {
	t.Helper()
	ctx := t.Context()
	if _, err := s.CreateProject(ctx, store.Project{Name: "p"}); err != nil {
		t.Fatal(err)
	}
	v, _, err := s.RegisterFlow(ctx, store.Registration{Project: "p", Flow: "f", SpecHash: "h", Spec: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	run, _, err := s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v.ID})
	if err != nil {
		t.Fatal(err)
	}
	return run
}
