package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

// TestCopySchemaMatchesMigrations checks store.Schema against the tables
// the migrations make: the same tables and columns, of matching types and
// nullability. A migration that adds a column fails it until the column is
// added to store.Schema, so that `reeve server migrate-store` copies it.
func TestCopySchemaMatchesMigrations(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTest(t)
	type column struct {
		typ     string
		notNull bool
	}
	live := make(map[string]map[string]column)
	rows, err := s.read.QueryContext(ctx, `
		SELECT m.name, p.name, p.type, p."notnull", p.pk
		FROM sqlite_master AS m, pragma_table_info(m.name) AS p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\' AND m.name <> 'goose_db_version'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			table, name, typ string
			notNull, pk      int
		)
		if err := rows.Scan(&table, &name, &typ, &notNull, &pk); err != nil {
			t.Fatal(err)
		}
		if live[table] == nil {
			live[table] = make(map[string]column)
		}
		// A primary key holds no NULL in the store's tables, whatever
		// SQLite's notnull says of it.
		live[table][name] = column{typ: typ, notNull: notNull == 1 || pk > 0}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sqliteType := map[store.ColumnType]string{
		store.TypeText: "TEXT", store.TypeJSON: "TEXT", store.TypeInt: "INTEGER", store.TypeBool: "INTEGER",
		store.TypeTime: "INTEGER", store.TypeBytes: "BLOB",
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
			if lc.typ != sqliteType[c.Type] {
				t.Errorf("column %s.%s is %s in SQLite, but store.Schema says %s", tb.Name, c.Name, lc.typ, c.Type)
			}
			if lc.notNull == c.Null {
				t.Errorf("column %s.%s: NOT NULL is %v in SQLite, but store.Schema says Null %v", tb.Name, c.Name, lc.notNull, c.Null)
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

// TestCopyToSQLite copies a store into an empty one (a backup, in effect)
// and checks every row arrived as it was, and that the copy works on.
func TestCopyToSQLite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src, dst := openTest(t), openTest(t)
	run, taskRun := fillSmall(t, src)

	var calls []string
	counts, err := store.Copy(ctx, src, dst, func(table string, done, total int64) {
		calls = append(calls, fmt.Sprintf("%s %d/%d", table, done, total))
	})
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	want := map[string]int64{"projects": 1, "flows": 1, "flow_versions": 2, "flow_runs": 2, "task_runs": 1,
		"states": 6, "logs": 1500, "secrets": 1, "tokens": 2, "schedules": 1, "agents": 1, "results": 1}
	if len(counts) != len(store.Schema()) {
		t.Errorf("Copy returned %d counts, want one per table (%d)", len(counts), len(store.Schema()))
	}
	for _, c := range counts {
		if c.Rows != want[c.Table] {
			t.Errorf("Copy copied %d rows of %s, want %d", c.Rows, c.Table, want[c.Table])
		}
	}
	if got, wantCalls := strings.Join(calls, "; "), "logs 0/1500; logs 1000/1500; logs 1500/1500"; !strings.Contains(got, wantCalls) {
		t.Errorf("progress calls %q do not contain %q", got, wantCalls)
	}
	if a, b := dumpRows(t, src), dumpRows(t, dst); !reflect.DeepEqual(a, b) {
		t.Errorf("the copy's rows differ from the source's:\nsource %v\ncopy   %v", a, b)
	}

	// The copy works on: a new log line gets an ID past the copied ones, a
	// state change records its history.
	lines, err := dst.ListLogs(ctx, run.ID, "", 0, 10000)
	if err != nil || len(lines) != 1500 {
		t.Fatalf("ListLogs on the copy = %d lines, %v; want 1500", len(lines), err)
	}
	last := lines[len(lines)-1].ID
	if err := dst.AppendLogs(ctx, []store.LogLine{{FlowRunID: run.ID, TaskRunID: taskRun.ID, Level: "INFO", Message: "after"}}); err != nil {
		t.Fatalf("AppendLogs on the copy: %v", err)
	}
	after, err := dst.ListLogs(ctx, run.ID, "", last, 10)
	if err != nil || len(after) != 1 || after[0].ID <= last || after[0].Message != "after" {
		t.Fatalf("ListLogs after %d on the copy = %+v, %v; want the new line with a larger ID", last, after, err)
	}
	got, err := dst.GetFlowRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.SetFlowRunState(ctx, run.ID, got.Version, state.State{Kind: state.Success}); err != nil {
		t.Fatalf("SetFlowRunState on the copy: %v", err)
	}
	h, err := dst.History(ctx, run.ID, "")
	if err != nil || len(h) != 3 || h[2].Kind != state.Success {
		t.Errorf("History on the copy = %v, %v; want Scheduled, Running, Success", h, err)
	}

	// A second copy finds the target not empty.
	_, err = store.Copy(ctx, src, dst, nil)
	if !errors.Is(err, reeve.ErrConflict) || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Copy into a store with records: error %v, want ErrConflict saying the target is not empty", err)
	}
}

// TestCopyRefusesUnknownSchema checks that a column or a table that
// store.Schema does not know stops the copy before it writes anything.
func TestCopyRefusesUnknownSchema(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ddl string
		side      string // the store that gets the DDL
		want      []string
	}{
		{"new column in the source", `ALTER TABLE agents ADD COLUMN zone TEXT`, "source", []string{"agents", "zone"}},
		{"new column in the target", `ALTER TABLE tokens ADD COLUMN note TEXT`, "target", []string{"tokens", "note"}},
		{"new table in the source", `CREATE TABLE webhooks (id TEXT PRIMARY KEY)`, "source", []string{"webhooks"}},
		{"missing column in the target", `ALTER TABLE logs DROP COLUMN attrs`, "target", []string{"logs", "attrs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			src, dst := openTest(t), openTest(t)
			fillSmall(t, src)
			s := src
			if tc.side == "target" {
				s = dst
			}
			if _, err := s.write.ExecContext(ctx, tc.ddl); err != nil {
				t.Fatal(err)
			}
			_, err := store.Copy(ctx, src, dst, nil)
			if !errors.Is(err, reeve.ErrInternal) {
				t.Fatalf("Copy: error %v, want ErrInternal", err)
			}
			for _, w := range append(tc.want, tc.side) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if ps, err := dst.ListProjects(ctx); err != nil || len(ps) != 0 {
				t.Errorf("after a failed copy the target has projects %v (%v), want none", ps, err)
			}
		})
	}
}

// fillSmall fills s with a bit of everything: one project, a flow with two
// versions, a run with a task run and 1500 log lines, a claimed run, a
// secret, tokens, a schedule and an agent. It returns the first run and
// its task run.
func fillSmall(t *testing.T, s *Store) (store.FlowRun, store.TaskRun) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := s.CreateProject(ctx, store.Project{Name: "alpha", Description: "the first"})
	must(err)
	reg := store.Registration{Project: p.Name, Flow: "etl", SpecHash: "h1", Spec: json.RawMessage(`{"name": "etl"}`),
		Storage: store.Storage{Kind: "local", Path: "/bin/etl"}, Labels: []string{"linux"}}
	_, _, err = s.RegisterFlow(ctx, reg)
	must(err)
	reg.SpecHash, reg.Spec = "h2", json.RawMessage(`{"name": "etl", "v": 2}`)
	v2, _, err := s.RegisterFlow(ctx, reg)
	must(err)
	run, _, err := s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v2.ID, Params: json.RawMessage(`{"day": "2026-03-14"}`),
		IdempotencyKey: "k1", Labels: []string{"linux"}})
	must(err)
	run, err = s.SetFlowRunState(ctx, run.ID, run.Version, state.State{Kind: state.Running})
	must(err)
	trs, err := s.WriteTaskRunStates(ctx, run.ID, 0, []store.TaskRunWrite{
		{Key: "extract", Task: "extract", State: state.State{Kind: state.Running, Attempt: 1}},
		{Key: "extract", Task: "extract", Expect: 1, State: state.State{Kind: state.Success, Attempt: 1,
			Result: &state.Result{Store: "file:///r", Key: "k", Serializer: "json"}}},
	})
	must(err)
	lines := make([]store.LogLine, 1500)
	for i := range lines {
		lines[i] = store.LogLine{FlowRunID: run.ID, Level: "INFO", Message: fmt.Sprintf("line %d é", i),
			Time: time.Now().Add(time.Duration(i) * time.Microsecond)}
		if i%2 == 0 {
			lines[i].TaskRunID, lines[i].Attrs = trs[0].ID, json.RawMessage(fmt.Sprintf(`{"i": %d}`, i))
		}
	}
	must(s.AppendLogs(ctx, lines))
	_, err = s.PutSecret(ctx, p.ID, "DB_PASSWORD", []byte{0, 1, 2, 0xff})
	must(err)
	_, err = s.PutResult(ctx, p.ID, "etl/"+run.ID+"/extract.json", []byte{'{', '}', 0, 0xff})
	must(err)
	tok, err := s.CreateToken(ctx, store.Token{Name: "ci", Role: store.RoleDeveloper, Hash: "aa",
		ExpiresAt: time.Now().Add(time.Hour)})
	must(err)
	_, err = s.RevokeToken(ctx, tok.ID)
	must(err)
	_, err = s.CreateToken(ctx, store.Token{Name: "run", Role: store.RoleRun, Hash: "bb", FlowRunID: run.ID, Attempt: 1})
	must(err)
	sc, err := s.CreateSchedule(ctx, store.Schedule{FlowID: v2.FlowID, Interval: 90 * time.Minute, Params: json.RawMessage(`{"a": 1}`)})
	must(err)
	a, err := s.RegisterAgent(ctx, "agent-1", []string{"linux"}, []string{"local", "docker"})
	must(err)
	claimed, _, err := s.CreateFlowRun(ctx, store.FlowRun{FlowVersionID: v2.ID, ScheduleID: sc.ID, IdempotencyKey: "sc-1",
		ScheduledAt: time.Now().Add(-time.Minute)})
	must(err)
	got, err := s.ClaimFlowRun(ctx, a.ID, time.Time{})
	must(err)
	if got.ID != claimed.ID {
		t.Fatalf("ClaimFlowRun claimed %s, want %s", got.ID, claimed.ID)
	}
	_, err = s.HeartbeatFlowRun(ctx, got.ID, got.Attempt)
	must(err)
	return run, trs[1]
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
