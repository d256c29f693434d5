package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
	"github.com/reevehq/reeve/internal/store/sqlite"
)

// The tests of store.Copy from the SQLite store into this one, as
// `reeve server migrate-store` does it: everything is filled through the
// stores' public methods and read back through them.

// openSQLite returns a new SQLite store in a temporary directory.
func openSQLite(tb testing.TB) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "reeve.db"))
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// TestCopySchemaMatchesMigrations checks store.Schema against the tables
// this store's migrations make: the same tables and columns, of matching
// types and nullability. A migration that adds a column fails it until the
// column is added to store.Schema, so that `reeve server migrate-store`
// copies it.
func TestCopySchemaMatchesMigrations(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t)
	type column struct {
		typ      string
		nullable bool
	}
	live := make(map[string]map[string]column)
	rows, err := s.pool.Query(ctx, `
		SELECT c.table_name, c.column_name, c.data_type, c.is_nullable = 'YES'
		FROM information_schema.columns AS c
		JOIN information_schema.tables AS t USING (table_schema, table_name)
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND c.table_name <> 'goose_db_version'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			table, name string
			c           column
		)
		if err := rows.Scan(&table, &name, &c.typ, &c.nullable); err != nil {
			t.Fatal(err)
		}
		if live[table] == nil {
			live[table] = make(map[string]column)
		}
		live[table][name] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	pgTypes := map[store.ColumnType][]string{
		store.TypeText:  {"text"},
		store.TypeInt:   {"integer", "bigint"},
		store.TypeBool:  {"boolean"},
		store.TypeTime:  {"timestamp with time zone"},
		store.TypeJSON:  {"json", "jsonb"},
		store.TypeBytes: {"bytea"},
	}
	for _, tb := range store.Schema() {
		cols, ok := live[tb.Name]
		if !ok {
			t.Errorf("store.Schema has table %s, which the migrations do not create", tb.Name)
			continue
		}
		for _, c := range tb.Columns {
			lc, ok := cols[c.Name]
			if !ok {
				t.Errorf("store.Schema has column %s.%s, which the migrations do not create", tb.Name, c.Name)
				continue
			}
			if !slices.Contains(pgTypes[c.Type], lc.typ) {
				t.Errorf("column %s.%s is %s in PostgreSQL, but store.Schema says %s", tb.Name, c.Name, lc.typ, c.Type)
			}
			if lc.nullable != c.Null {
				t.Errorf("column %s.%s: nullable is %v in PostgreSQL, but store.Schema says Null %v", tb.Name, c.Name, lc.nullable, c.Null)
			}
			delete(cols, c.Name)
		}
		for name := range cols {
			t.Errorf("the migrations create column %s.%s, which store.Schema lacks: add it, or migrate-store will not copy it", tb.Name, name)
		}
		delete(live, tb.Name)
	}
	for name := range live {
		t.Errorf("the migrations create table %s, which store.Schema lacks: add it, or migrate-store will not copy it", name)
	}
}

// TestCopyFromSQLite fills a SQLite store with a bit of everything, copies
// it into an empty PostgreSQL store, and checks that everything reads back
// the same through the public methods and that the copy works on: log
// paging, claims, idempotency keys, optimistic versions, tokens.
func TestCopyFromSQLite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := openSQLite(t)
	w := fill(t, src)
	dst := open(t)
	before := snapshot(t, src, w)

	progress := make(map[string][]int64)
	start := time.Now()
	counts, err := store.Copy(ctx, src, dst, func(table string, done, total int64) {
		progress[table] = append(progress[table], done, total)
	})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	t.Logf("copied %v in %v", counts, time.Since(start).Round(time.Millisecond))

	// Everything reads back the same.
	after := snapshot(t, dst, w)
	requireSameJSON(t, "the copy read through the PostgreSQL store", after, before)

	// The counts are those of the records, table by table.
	want := before.counts()
	if len(counts) != len(store.Schema()) {
		t.Errorf("Copy returned %d counts, want one per table (%d)", len(counts), len(store.Schema()))
	}
	for i, c := range counts {
		if c.Table != store.Schema()[i].Name {
			t.Errorf("count %d is of table %s, want %s (Schema's order)", i, c.Table, store.Schema()[i].Name)
		}
		if c.Rows != want[c.Table] {
			t.Errorf("Copy copied %d rows of %s, want %d", c.Rows, c.Table, want[c.Table])
		}
		p := progress[c.Table]
		if len(p) < 2 || p[0] != 0 || p[len(p)-2] != c.Rows || p[len(p)-1] != c.Rows {
			t.Errorf("progress of %s = %v, want (0, %d) first and (%d, %d) last", c.Table, p, c.Rows, c.Rows, c.Rows)
		}
	}
	if want["logs"] != 2510 {
		t.Errorf("the fixture has %d log lines, want 2510", want["logs"])
	}
	if p := progress["logs"]; len(p) != 2*4 {
		t.Errorf("progress of logs = %v, want 4 calls: before the first batch and after each of 3", p)
	}

	// Log paging goes on after the last copied line, and a new line gets
	// a larger ID than any copied one.
	var maxID int64
	for _, lines := range before.Logs {
		for _, l := range lines {
			maxID = max(maxID, l.ID)
		}
	}
	done := before.Logs[w.done.ID]
	last := done[len(done)-1].ID
	if more, err := dst.ListLogs(ctx, w.done.ID, "", last, 100); err != nil || len(more) != 0 {
		t.Errorf("ListLogs after the last copied line = %v, %v; want none", more, err)
	}
	if err := dst.AppendLogs(ctx, []store.LogLine{{FlowRunID: w.done.ID, Level: "INFO", Message: "after the move"}}); err != nil {
		t.Fatalf("AppendLogs after the copy: %v", err)
	}
	more, err := dst.ListLogs(ctx, w.done.ID, "", last, 100)
	if err != nil || len(more) != 1 || more[0].Message != "after the move" || more[0].ID <= maxID {
		t.Errorf("ListLogs after %d = %+v, %v; want the new line, with an ID above %d", last, more, err, maxID)
	}

	// An agent claims the copied due run; the claim records its state.
	claimed, err := dst.ClaimFlowRun(ctx, w.agent.ID, time.Time{})
	if err != nil {
		t.Fatalf("ClaimFlowRun after the copy: %v", err)
	}
	if claimed.ID != w.due.ID || claimed.State.Kind != state.Submitted || claimed.AgentID != w.agent.ID ||
		claimed.Version != w.due.Version+1 || claimed.ScheduleID != w.due.ScheduleID {
		t.Errorf("ClaimFlowRun = %+v, want run %s Submitted for agent %s at version %d", claimed, w.due.ID, w.agent.ID, w.due.Version+1)
	}
	if h, err := dst.History(ctx, w.due.ID, ""); err != nil || len(h) != 2 || h[1].Kind != state.Submitted {
		t.Errorf("History of the claimed run = %v, %v; want Scheduled, Submitted", h, err)
	}

	// Idempotency keys still find their runs.
	for _, r := range []store.FlowRun{w.done, w.future} {
		got, created, err := dst.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: r.FlowVersionID, ScheduleID: r.ScheduleID,
			IdempotencyKey: r.IdempotencyKey})
		if err != nil || created || got.ID != r.ID {
			t.Errorf("CreateFlowRun with the idempotency key %q = %s, created %v, %v; want run %s, not created",
				r.IdempotencyKey, got.ID, created, err, r.ID)
		}
	}

	// State versions go on: a stale one loses, the current one wins.
	future := after.run(w.future.ID)
	if _, err := dst.SetFlowRunState(ctx, future.ID, future.Version-1, state.State{Kind: state.Cancelled}); !errors.Is(err, reeve.ErrConflict) {
		t.Errorf("SetFlowRunState with a stale version: error %v, want ErrConflict", err)
	}
	if _, err := dst.SetFlowRunState(ctx, future.ID, future.Version, state.State{Kind: state.Cancelled}); err != nil {
		t.Errorf("SetFlowRunState with the copied version: %v", err)
	}
	fetch := after.TaskRuns[w.failed.ID][0]
	if _, err := dst.WriteTaskRunStates(ctx, w.failed.ID, 0, []store.TaskRunWrite{
		{Key: fetch.Key, Task: fetch.Task, Expect: fetch.Version, State: state.State{Kind: state.Running, Attempt: 3}},
	}); err != nil {
		t.Errorf("WriteTaskRunStates with the copied version: %v", err)
	}

	// Attempts go on: the superseded attempt stays refused, the current
	// one beats.
	if _, err := dst.HeartbeatFlowRun(ctx, w.second.ID, 1); !errors.Is(err, reeve.ErrConflict) {
		t.Errorf("HeartbeatFlowRun of the superseded attempt after the copy: error %v, want ErrConflict", err)
	}
	if got, err := dst.HeartbeatFlowRun(ctx, w.second.ID, 2); err != nil || got.Recoveries != 1 || !got.HeartbeatAt.After(w.second.HeartbeatAt) {
		t.Errorf("HeartbeatFlowRun of the current attempt after the copy = recoveries %d, heartbeat_at %v, %v; want 1, after %v",
			got.Recoveries, got.HeartbeatAt, err, w.second.HeartbeatAt)
	}

	// Token hashes stay unique.
	if _, err := dst.CreateToken(ctx, store.Token{Name: "again", Role: store.RoleAdmin, Hash: w.hashes[0]}); !errors.Is(err, reeve.ErrConflict) {
		t.Errorf("CreateToken with a copied hash: error %v, want ErrConflict", err)
	}

	// A second copy finds the target not empty, and changes nothing.
	_, err = store.Copy(ctx, src, dst, nil)
	if !errors.Is(err, reeve.ErrConflict) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Copy into a store with records: error %v, want ErrConflict saying the target must be empty", err)
	}
	if ps, err := dst.ListProjects(ctx); err != nil || len(ps) != 2 {
		t.Errorf("after the refused copy: %d projects, %v; want the 2 copied", len(ps), err)
	}
}

// TestCopyRoundTrip copies a SQLite store into PostgreSQL and back into
// another SQLite store: every row comes back as it was (JSON documents as
// the same values: jsonb reformats them).
func TestCopyRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src, pg, back := openSQLite(t), open(t), openSQLite(t)
	fill(t, src)
	if _, err := store.Copy(ctx, src, pg, nil); err != nil {
		t.Fatalf("Copy SQLite → PostgreSQL: %v", err)
	}
	if _, err := store.Copy(ctx, pg, back, nil); err != nil {
		t.Fatalf("Copy PostgreSQL → SQLite: %v", err)
	}
	a, b := dumpRows(t, src), dumpRows(t, back)
	for _, tb := range store.Schema() {
		ra, rb := a[tb.Name], b[tb.Name]
		if len(ra) != len(rb) {
			t.Errorf("%s: %d rows after the round trip, want %d", tb.Name, len(rb), len(ra))
			continue
		}
		for i := range ra {
			for j, c := range tb.Columns {
				x, y := ra[i][j], rb[i][j]
				same := reflect.DeepEqual(x, y)
				if c.Type == store.TypeJSON && x != nil && y != nil {
					same = sameJSON(x.(string), y.(string))
				}
				if !same {
					t.Errorf("%s row %d column %s = %#v after the round trip, want %#v", tb.Name, i, c.Name, y, x)
				}
			}
		}
	}
}

// TestCopyText checks what becomes of text PostgreSQL cannot hold: in log
// lines it is replaced, as AppendLogs does; elsewhere the copy fails,
// naming the row, and leaves the target empty.
func TestCopyText(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := openSQLite(t)
	if _, err := src.CreateProject(ctx, store.Project{Name: "p"}); err != nil {
		t.Fatal(err)
	}
	v, _, err := src.RegisterFlow(ctx, store.Registration{Project: "p", Flow: "f", SpecHash: "h", Spec: json.RawMessage(`{}`),
		Storage: store.Storage{Kind: "local", Path: "/bin/f"}})
	if err != nil {
		t.Fatal(err)
	}
	run, _, err := src.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.AppendLogs(ctx, []store.LogLine{{FlowRunID: run.ID, Level: "IN\x00FO", Message: "a\x00b\xffc"}}); err != nil {
		t.Fatal(err)
	}

	dst := open(t)
	if _, err := store.Copy(ctx, src, dst, nil); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	lines, err := dst.ListLogs(ctx, run.ID, "", 0, 10)
	if err != nil || len(lines) != 1 || lines[0].Level != "IN\uFFFDFO" || lines[0].Message != "a\uFFFDb\uFFFDc" {
		t.Errorf("copied log lines = %+v, %v; want the NUL and the invalid byte replaced by U+FFFD", lines, err)
	}

	if _, err := src.CreateProject(ctx, store.Project{Name: "q", Description: "nul \x00 here"}); err != nil {
		t.Fatal(err)
	}
	dst = open(t)
	_, err = store.Copy(ctx, src, dst, nil)
	if !errors.Is(err, reeve.ErrInvalid) || !strings.Contains(err.Error(), "projects") || !strings.Contains(err.Error(), "description") {
		t.Errorf("Copy of a description with a NUL byte: error %v, want ErrInvalid naming projects and description", err)
	}
	if ps, err := dst.ListProjects(ctx); err != nil || len(ps) != 0 {
		t.Errorf("after the failed copy the target has projects %v (%v), want none: the copy is one transaction", ps, err)
	}
}

// TestCopyUnknownColumn checks that a column store.Schema does not know
// stops the copy, and that a dropped column is not one.
func TestCopyUnknownColumn(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src, dst := openSQLite(t), open(t)
	if _, err := src.RegisterAgent(ctx, "a", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.pool.Exec(ctx, `ALTER TABLE agents ADD COLUMN zone text`); err != nil {
		t.Fatal(err)
	}
	_, err := store.Copy(ctx, src, dst, nil)
	if !errors.Is(err, reeve.ErrInternal) || !strings.Contains(err.Error(), "agents") || !strings.Contains(err.Error(), "zone") {
		t.Errorf("Copy into a table with an unknown column: error %v, want ErrInternal naming agents and zone", err)
	}
	if _, err := dst.pool.Exec(ctx, `ALTER TABLE agents DROP COLUMN zone`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Copy(ctx, src, dst, nil); err != nil {
		t.Errorf("Copy after the column was dropped: %v", err)
	}
	if as, err := dst.ListAgents(ctx); err != nil || len(as) != 1 {
		t.Errorf("agents after the copy = %v, %v; want the one", as, err)
	}
}

// world is what fill made, for the checks after a copy.
type world struct {
	projects []store.Project
	done     store.FlowRun // finished, with task runs, 2500 log lines and a run token
	failed   store.FlowRun // failed, with a retried task run
	future   store.FlowRun // made by a schedule, Scheduled in an hour
	due      store.FlowRun // made by a schedule, Scheduled and due
	agent    store.Agent   // the agent that can claim due
	second   store.FlowRun // claimed twice, with a recovery between: at attempt 2
	hashes   []string      // of every token
}

// fillResults are the results fill puts (the last of a key wins).
var fillResults = []struct {
	project int
	key     string
	value   []byte
}{
	{0, "etl/run-1/extract.json", []byte(`{"rows": 3}`)},
	{0, "etl/run-1/extract.json", []byte{0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0}},
	{0, "cache/transform/0a1b2c.json", bytes.Repeat([]byte{0xcd}, 256<<10)},
	{1, "etl/run-1/extract.json", []byte("beta")},
	{1, "empty.json", nil},
}

// storedResult is a result as GetResult returns it.
type storedResult struct {
	Value     []byte
	UpdatedAt time.Time
}

// fill fills s through its public methods with a bit of everything.
func fill(t *testing.T, s store.Store) world {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var w world
	now := time.Now()
	odd := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+2", 2*60*60)) // nanoseconds and a zone

	for _, p := range []store.Project{{Name: "alpha", Description: "the first project ✓"}, {Name: "beta"}} {
		p, err := s.CreateProject(ctx, p)
		must(err)
		w.projects = append(w.projects, p)
	}

	// Flow etl of alpha: version 1 with a schedule's run that is running,
	// then version 2, which archives version 1 and keeps that run.
	regA := store.Registration{Project: "alpha", Flow: "etl", SpecHash: "a1",
		Spec:      json.RawMessage(`{"name":  "etl", "tasks": ["extract", "transform", "load"], "z": 1, "a": 2}`),
		Storage:   store.Storage{Kind: "docker", Image: "registry.example/etl@sha256:" + strings.Repeat("a", 64)},
		Labels:    []string{"linux"},
		RunConfig: store.RunConfig{Executor: "parallel", Workers: 4, CPU: "500m", Memory: "512Mi", Env: map[string]string{"B": "2", "A": "1"}},
	}
	v1, _, err := s.RegisterFlow(ctx, regA)
	must(err)
	sA, err := s.CreateSchedule(ctx, store.Schedule{FlowID: v1.FlowID, Cron: "*/5 * * * *", Timezone: "Europe/Paris",
		Params: json.RawMessage(`{"region": "eu"}`), FromSpec: true})
	must(err)
	kept, _, err := s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v1.ID, ScheduleID: sA.ID, IdempotencyKey: "sA/v1/1",
		ScheduledAt: odd, Params: json.RawMessage(`{"region": "eu"}`)})
	must(err)
	_, err = s.SetFlowRunState(ctx, kept.ID, kept.Version, state.State{Kind: state.Running, Message: "started"})
	must(err)
	regA.SpecHash, regA.Spec = "a2", json.RawMessage(`{"name": "etl", "tasks": ["extract", "transform", "load"], "v": 2}`)
	v2, _, err := s.RegisterFlow(ctx, regA)
	must(err)

	// A finished run with task runs: a plain one, a retried one, a mapped
	// one with its children.
	w.done, _, err = s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v2.ID, Name: "first",
		Params: json.RawMessage(`{"day": "2026-03-14", "n": 1.50}`), IdempotencyKey: "manual-1", Labels: []string{"linux"}})
	must(err)
	w.done, err = s.SetFlowRunState(ctx, w.done.ID, w.done.Version, state.State{Kind: state.Running, Time: odd})
	must(err)
	var counts state.Counts
	counts[state.Success] = 2
	trs, err := s.WriteTaskRunStates(ctx, w.done.ID, 0, []store.TaskRunWrite{
		{Key: "extract", Task: "extract", State: state.State{Kind: state.Pending}},
		{Key: "transform", Task: "transform", State: state.State{Kind: state.Pending}},
		{Key: "load", Task: "load", State: state.State{Kind: state.Pending}},
		{Key: "extract", Task: "extract", Expect: 1, State: state.State{Kind: state.Running, Attempt: 1}},
		{Key: "extract", Task: "extract", Expect: 2, State: state.State{Kind: state.Retrying, Attempt: 1,
			Message: "connection reset", StartAt: odd.Add(time.Minute)}},
		{Key: "extract", Task: "extract", Expect: 3, State: state.State{Kind: state.Running, Attempt: 2}},
		{Key: "extract", Task: "extract", Expect: 4, State: state.State{Kind: state.Success, Attempt: 2,
			Result: &state.Result{Store: "file:///var/reeve/results", Key: "extract/1", Serializer: "json"}}},
		{Key: "transform[0]", Task: "transform", MapIndex: 0, State: state.State{Kind: state.Success, Attempt: 1}},
		{Key: "transform[1]", Task: "transform", MapIndex: 1, State: state.State{Kind: state.Cached}},
		{Key: "transform", Task: "transform", Expect: 1, State: state.State{Kind: state.Mapped, Counts: &counts}},
		{Key: "load", Task: "load", Expect: 1, State: state.State{Kind: state.Success, Attempt: 1}},
	})
	must(err)
	taskRunIDs := []string{trs[0].ID, trs[1].ID, trs[2].ID, trs[7].ID, trs[8].ID}
	for b := range 5 {
		lines := make([]store.LogLine, 500)
		for i := range lines {
			n := b*500 + i
			lines[i] = store.LogLine{FlowRunID: w.done.ID, Time: odd.Add(time.Duration(n) * time.Millisecond),
				Level: []string{"INFO", "WARN", "ERROR", "DEBUG"}[n%4], Message: fmt.Sprintf("line %d: ünïcødé ✓", n)}
			if n%3 != 0 {
				lines[i].TaskRunID = taskRunIDs[n%len(taskRunIDs)]
			}
			if n%2 == 0 {
				lines[i].Attrs = json.RawMessage(fmt.Sprintf(`{"n": %d, "nested": {"ok": true}}`, n))
			}
		}
		must(s.AppendLogs(ctx, lines))
	}
	w.done, err = s.SetFlowRunState(ctx, w.done.ID, w.done.Version, state.State{Kind: state.Success, Message: "all done"})
	must(err)
	w.future, _, err = s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v2.ID, ScheduleID: sA.ID, IdempotencyKey: "sA/v2/future",
		ScheduledAt: now.Add(time.Hour)})
	must(err)

	// Flow report of beta: a paused interval schedule and a cron one; a
	// failed run, a cancelled one, one claimed by an agent.
	vB, _, err := s.RegisterFlow(ctx, store.Registration{Project: "beta", Flow: "report", SpecHash: "b1",
		Spec: json.RawMessage(`{"name":"report"}`), Storage: store.Storage{Kind: "local", Path: "/usr/local/bin/report"}})
	must(err)
	sB, err := s.CreateSchedule(ctx, store.Schedule{FlowID: vB.FlowID, Interval: 90*time.Minute + time.Microsecond, Anchor: odd})
	must(err)
	_, _, err = s.SetSchedulePaused(ctx, sB.ID, true)
	must(err)
	_, err = s.CreateSchedule(ctx, store.Schedule{FlowID: vB.FlowID, Cron: "@daily"})
	must(err)
	w.failed, _, err = s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: vB.ID})
	must(err)
	w.failed, err = s.SetFlowRunState(ctx, w.failed.ID, w.failed.Version, state.State{Kind: state.Running})
	must(err)
	fetch, err := s.WriteTaskRunStates(ctx, w.failed.ID, 0, []store.TaskRunWrite{
		{Key: "fetch", Task: "fetch", State: state.State{Kind: state.Running, Attempt: 1}},
		{Key: "fetch", Task: "fetch", Expect: 1, State: state.State{Kind: state.Failed, Attempt: 1, Message: "boom"}},
	})
	must(err)
	lines := make([]store.LogLine, 10)
	for i := range lines {
		lines[i] = store.LogLine{FlowRunID: w.failed.ID, TaskRunID: fetch[0].ID, Level: "ERROR", Message: fmt.Sprintf("boom %d", i)}
	}
	must(s.AppendLogs(ctx, lines))
	w.failed, err = s.SetFlowRunState(ctx, w.failed.ID, w.failed.Version, state.State{Kind: state.Failed, Message: "task fetch failed"})
	must(err)
	cancelled, _, err := s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: vB.ID})
	must(err)
	_, err = s.SetFlowRunState(ctx, cancelled.ID, cancelled.Version, state.State{Kind: state.Cancelled})
	must(err)

	w.agent, err = s.RegisterAgent(ctx, "agent-1", []string{"linux", "gpu"}, []string{"docker", "local"})
	must(err)
	idle, err := s.RegisterAgent(ctx, "agent-2", nil, nil)
	must(err)
	_, err = s.HeartbeatAgent(ctx, idle.ID)
	must(err)
	toClaim, _, err := s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: vB.ID, ScheduledAt: now.Add(-2 * time.Hour)})
	must(err)
	claimed, err := s.ClaimFlowRun(ctx, w.agent.ID, time.Time{})
	must(err)
	if claimed.ID != toClaim.ID {
		t.Fatalf("ClaimFlowRun claimed %s, want %s", claimed.ID, toClaim.ID)
	}
	// Its runner beats, runs a task and is lost; the run is re-queued and
	// claimed again, and the second attempt beats: attempts, heartbeats,
	// recoveries and the failed task run are copied.
	_, err = s.HeartbeatFlowRun(ctx, claimed.ID, claimed.Attempt)
	must(err)
	_, err = s.WriteTaskRunStates(ctx, claimed.ID, claimed.Attempt, []store.TaskRunWrite{
		{Key: "render", Task: "render", State: state.State{Kind: state.Running, Attempt: 1}},
	})
	must(err)
	_, err = s.RecoverFlowRun(ctx, claimed.ID, claimed.Version, "agent-1 went silent", 3)
	must(err)
	again, err := s.ClaimFlowRun(ctx, w.agent.ID, time.Time{})
	must(err)
	if again.ID != claimed.ID || again.Attempt != 2 || again.Recoveries != 1 {
		t.Fatalf("ClaimFlowRun after the recovery = run %s attempt %d recoveries %d, want run %s attempt 2 recoveries 1",
			again.ID, again.Attempt, again.Recoveries, claimed.ID)
	}
	w.second, err = s.HeartbeatFlowRun(ctx, again.ID, again.Attempt)
	must(err)
	w.due, _, err = s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v2.ID, ScheduleID: sA.ID, IdempotencyKey: "sA/v2/due",
		ScheduledAt: now.Add(-time.Minute), Labels: []string{"linux"}})
	must(err)

	// Secrets: opaque bytes, one replaced.
	_, err = s.PutSecret(ctx, w.projects[0].ID, "DB_PASSWORD", []byte("first"))
	must(err)
	_, err = s.PutSecret(ctx, w.projects[0].ID, "DB_PASSWORD", []byte{0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0})
	must(err)
	_, err = s.PutSecret(ctx, w.projects[0].ID, "API_KEY", bytes.Repeat([]byte{0xab}, 4096))
	must(err)
	_, err = s.PutSecret(ctx, w.projects[1].ID, "API_KEY", []byte("beta-key"))
	must(err)
	_, err = s.PutSecret(ctx, w.projects[1].ID, "EMPTY", nil)
	must(err)

	// Results: opaque bytes by key, one replaced, in two projects.
	for _, r := range fillResults {
		_, err = s.PutResult(ctx, w.projects[r.project].ID, r.key, r.value)
		must(err)
	}

	// Tokens: an admin token, a revoked developer token, an expiring
	// agent token, and a run token.
	for _, tok := range []store.Token{
		{Name: "admin", Role: store.RoleAdmin, Hash: strings.Repeat("1", 64)},
		{Name: "ci", Role: store.RoleDeveloper, Hash: strings.Repeat("2", 64), ExpiresAt: odd.Add(24 * time.Hour)},
		{Name: "agent", Role: store.RoleAgent, Hash: strings.Repeat("3", 64), ExpiresAt: odd.Add(365 * 24 * time.Hour)},
		{Name: "run", Role: store.RoleRun, Hash: strings.Repeat("4", 64), FlowRunID: w.done.ID, Attempt: 2},
	} {
		created, err := s.CreateToken(ctx, tok)
		must(err)
		if tok.Role == store.RoleDeveloper {
			_, err = s.RevokeToken(ctx, created.ID)
			must(err)
		}
		w.hashes = append(w.hashes, tok.Hash)
	}
	return w
}

// view is everything a store returns through its public methods about
// what fill made.
type view struct {
	Projects     []store.Project
	Flows        []store.Flow
	Versions     []store.FlowVersion
	Runs         []store.FlowRun
	RunCounts    map[state.Kind]int64
	TaskRuns     map[string][]store.TaskRun // by flow run
	Histories    map[string][]state.State   // by flow run, and flow run/task run
	Logs         map[string][]store.LogLine // by flow run
	TaskLogs     map[string][]store.LogLine // by task run
	Secrets      map[string][]store.Secret  // by project
	SecretValues map[string][]byte          // by project/name
	Results      map[string]storedResult    // by project/key
	Tokens       []store.Token
	TokensByHash map[string]store.Token
	Schedules    []store.Schedule
	Agents       []store.Agent
}

// snapshot reads everything through s's public methods.
func snapshot(t *testing.T, s store.Store, w world) view {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	v := view{TaskRuns: map[string][]store.TaskRun{}, Histories: map[string][]state.State{}, Logs: map[string][]store.LogLine{},
		TaskLogs: map[string][]store.LogLine{}, Secrets: map[string][]store.Secret{}, SecretValues: map[string][]byte{},
		Results:      map[string]storedResult{},
		TokensByHash: map[string]store.Token{}}
	var err error
	v.Projects, err = s.ListProjects(ctx)
	must(err)
	for _, p := range v.Projects {
		flows, err := s.ListFlows(ctx, p.Name)
		must(err)
		v.Flows = append(v.Flows, flows...)
		secrets, err := s.ListSecrets(ctx, p.ID)
		must(err)
		v.Secrets[p.ID] = secrets
		for _, sec := range secrets {
			got, err := s.GetSecret(ctx, p.ID, sec.Name)
			must(err)
			v.SecretValues[p.ID+"/"+sec.Name] = got.Value
		}
	}
	for _, r := range fillResults {
		p := w.projects[r.project].ID
		value, at, err := s.GetResult(ctx, p, r.key)
		must(err)
		v.Results[p+"/"+r.key] = storedResult{value, at}
	}
	for _, f := range v.Flows {
		versions, err := s.ListFlowVersions(ctx, f.ID)
		must(err)
		v.Versions = append(v.Versions, versions...)
	}
	for cursor := ""; ; {
		page, next, err := s.ListFlowRuns(ctx, store.FlowRunFilter{Limit: 3, Cursor: cursor})
		must(err)
		v.Runs = append(v.Runs, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	v.RunCounts, err = s.CountFlowRuns(ctx)
	must(err)
	for _, r := range v.Runs {
		got, err := s.GetFlowRun(ctx, r.ID)
		must(err)
		if !reflect.DeepEqual(got, r) {
			t.Errorf("GetFlowRun(%s) = %+v, want %+v as listed", r.ID, got, r)
		}
		trs, err := s.ListTaskRuns(ctx, r.ID)
		must(err)
		v.TaskRuns[r.ID] = trs
		v.Histories[r.ID], err = s.History(ctx, r.ID, "")
		must(err)
		v.Logs[r.ID] = listLogs(t, s, r.ID, "")
		for _, tr := range trs {
			v.Histories[r.ID+"/"+tr.ID], err = s.History(ctx, r.ID, tr.ID)
			must(err)
			v.TaskLogs[tr.ID] = listLogs(t, s, r.ID, tr.ID)
		}
	}
	v.Tokens, err = s.ListTokens(ctx)
	must(err)
	for _, h := range w.hashes {
		v.TokensByHash[h], err = s.TokenByHash(ctx, h)
		must(err)
	}
	v.Schedules, err = s.ListSchedules(ctx, "")
	must(err)
	v.Agents, err = s.ListAgents(ctx)
	must(err)
	return v
}

// listLogs reads a run's log lines in pages of 1000.
func listLogs(t *testing.T, s store.Store, flowRunID, taskRunID string) []store.LogLine {
	t.Helper()
	var out []store.LogLine
	var after int64
	for {
		page, err := s.ListLogs(context.Background(), flowRunID, taskRunID, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out
		}
		after = page[len(page)-1].ID
	}
}

// counts returns how many rows of each table v's records are.
func (v view) counts() map[string]int64 {
	c := map[string]int64{
		"projects":      int64(len(v.Projects)),
		"flows":         int64(len(v.Flows)),
		"flow_versions": int64(len(v.Versions)),
		"flow_runs":     int64(len(v.Runs)),
		"tokens":        int64(len(v.TokensByHash)),
		"schedules":     int64(len(v.Schedules)),
		"agents":        int64(len(v.Agents)),
		"secrets":       int64(len(v.SecretValues)),
		"results":       int64(len(v.Results)),
	}
	for _, trs := range v.TaskRuns {
		c["task_runs"] += int64(len(trs))
	}
	for _, h := range v.Histories {
		c["states"] += int64(len(h))
	}
	for _, lines := range v.Logs {
		c["logs"] += int64(len(lines))
	}
	return c
}

func (v view) run(id string) store.FlowRun {
	for _, r := range v.Runs {
		if r.ID == id {
			return r
		}
	}
	return store.FlowRun{}
}

// requireSameJSON fails unless got and want have the same JSON form
// (times in UTC to the nanosecond, JSON documents compacted), and shows
// where they differ.
func requireSameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.MarshalIndent(got, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.MarshalIndent(want, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(g, w) {
		return
	}
	gl, wl := strings.Split(string(g), "\n"), strings.Split(string(w), "\n")
	for i := range min(len(gl), len(wl)) {
		if gl[i] != wl[i] {
			lo := max(0, i-8)
			t.Fatalf("%s differs at line %d:\ngot:\n%s\nwant:\n%s", what, i+1,
				strings.Join(gl[lo:min(len(gl), i+3)], "\n"), strings.Join(wl[lo:min(len(wl), i+3)], "\n"))
		}
	}
	t.Fatalf("%s: %d lines of JSON, want %d", what, len(gl), len(wl))
}

func sameJSON(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

// dumpRows returns every row of s, by table.
func dumpRows(t *testing.T, s store.Source) map[string][]store.Row {
	t.Helper()
	out := make(map[string][]store.Row)
	err := s.Dump(t.Context(), func(d store.Dumper) error {
		for _, tb := range store.Schema() {
			if err := d.Dump(t.Context(), tb, func(r store.Row) error {
				out[tb.Name] = append(out[tb.Name], r)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	return out
}
