package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/secret"
	"github.com/reevehq/reeve/internal/server"
	"github.com/reevehq/reeve/internal/store/sqlite"
	"github.com/reevehq/reeve/internal/testenv"
)

// TestMain fails the tests if a goroutine is left running: every follow
// and claim ends, every server closes.
func TestMain(m *testing.M) { testenv.Main(m) }

// etlSpec is a flow spec as reeve save writes it: a required parameter,
// one with a default, one task and a declared secret.
const etlSpec = `{
  "spec_version": 1,
  "name": "etl",
  "parameters": [
    {"name": "day", "type": "string", "go_type": "string", "required": true},
    {"name": "n", "type": "integer", "go_type": "int", "default": 3}
  ],
  "tasks": [{"id": "extract", "task": "demo.extract", "inputs": [{"kind": "param", "param": "day"}]}],
  "secrets": [{"name": "DB_PASSWORD"}]
}`

// env is a real Reeve server (SQLite store, AES-GCM secrets) served over
// HTTP in-process, and a client with its admin token.
type env struct {
	url   string
	admin *client.Client
}

// newEnv starts a server on a new database; wrap, if given, wraps its
// handler (to observe or break requests).
func newEnv(t *testing.T, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "reeve.db"))
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close the store: %v", err)
		}
	})
	srv, err := server.New(server.Config{Store: st, Sealer: secret.NewBox(secret.NewKey())})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	adminSecret, created, err := srv.Bootstrap(ctx, "")
	if err != nil || !created {
		t.Fatalf("Bootstrap = %v, %v: want a new admin token", created, err)
	}
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &env{url: ts.URL, admin: newClient(t, ts.URL, adminSecret)}
}

func newClient(t *testing.T, url, token string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, token, opts...)
	if err != nil {
		t.Fatalf("client.New(%q): %v", url, err)
	}
	return c
}

// as returns a client with a new token of role.
func (e *env) as(t *testing.T, role string) *client.Client {
	t.Helper()
	nt, err := e.admin.CreateToken(t.Context(), api.CreateToken{Name: role + " of " + t.Name(), Role: role})
	if err != nil {
		t.Fatalf("CreateToken(%s): %v", role, err)
	}
	return newClient(t, e.url, nt.Secret)
}

// register registers etlSpec in the default project.
func (e *env) register(t *testing.T) *api.Registered {
	t.Helper()
	reg, err := e.admin.RegisterFlow(t.Context(), api.RegisterFlow{
		Spec:    json.RawMessage(etlSpec),
		Storage: api.Storage{Kind: "local", Path: "/usr/local/bin/etl"},
	})
	if err != nil {
		t.Fatalf("RegisterFlow: %v", err)
	}
	return reg
}

// createRun creates a run of a flow.
func (e *env) createRun(t *testing.T, flowID string) api.FlowRun {
	t.Helper()
	created, err := e.admin.CreateFlowRun(t.Context(), api.CreateFlowRun{FlowID: flowID, Params: json.RawMessage(`{"day": "2026-01-02"}`)})
	if err != nil {
		t.Fatalf("CreateFlowRun: %v", err)
	}
	return created.FlowRun
}

// finish moves a run to Success.
func (e *env) finish(t *testing.T, runID string) api.FlowRun {
	t.Helper()
	ctx := t.Context()
	d, err := e.admin.FlowRun(ctx, runID)
	if err != nil {
		t.Fatalf("FlowRun: %v", err)
	}
	run, err := e.admin.SetFlowRunState(ctx, runID, api.SetState{State: reeve.State{Kind: reeve.Success}, ExpectVersion: d.FlowRun.Version})
	if err != nil {
		t.Fatalf("SetFlowRunState(Success): %v", err)
	}
	return *run
}

// wantErr fails unless err matches target and its message has each of
// the substrings.
func wantErr(t *testing.T, err, target error, substrings ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want one matching %v", err, target)
	}
	for _, s := range substrings {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

func check(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url, token string
		opts       []client.Option
		want       string // the URL, or a part of the error
	}{
		{url: "http://127.0.0.1:4200", want: "http://127.0.0.1:4200"},
		{url: "https://reeve.example.com/", want: "https://reeve.example.com"},
		{url: "https://example.com/reeve/api/v1/", want: "https://example.com/reeve"},
		{url: "", want: "no server URL"},
		{url: "127.0.0.1:4200", want: "does not start with http"},
		{url: "localhost", want: "does not start with http"},
		{url: "ftp://example.com", want: "does not start with http"},
		{url: "http://", want: "has no host"},
		{url: "http://u:p@example.com", want: "user name or password"},
		{url: "http://example.com?x=1", want: "query"},
		{url: "http://example.com", token: "reeve_abc\n", want: "line break"},
		{url: "http://example.com", opts: []client.Option{client.WithHTTPClient(nil)}, want: "WithHTTPClient(nil)"},
		{url: "http://example.com", opts: []client.Option{client.WithTimeout(-time.Second)}, want: "negative"},
	} {
		c, err := client.New(tc.url, tc.token, tc.opts...)
		switch {
		case err != nil:
			if !errors.Is(err, reeve.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New(%q) = %v, want an invalid error saying %q", tc.url, err, tc.want)
			}
		case c.URL() != tc.want:
			t.Errorf("New(%q).URL() = %q, want %q", tc.url, c.URL(), tc.want)
		}
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	anon := newClient(t, e.url, "") // health checks need no token
	check(t, "Healthz", anon.Healthz(t.Context()))
	check(t, "Ready", anon.Ready(t.Context()))
}

func TestProjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()

	p, err := e.admin.CreateProject(ctx, api.CreateProject{Name: "billing", Description: "invoices"})
	check(t, "CreateProject", err)
	if p.ID == "" || p.Name != "billing" || p.Description != "invoices" || p.CreatedAt.IsZero() {
		t.Errorf("CreateProject = %+v", p)
	}
	got, err := e.admin.Project(ctx, "billing")
	check(t, "Project", err)
	if *got != *p {
		t.Errorf("Project = %+v, want %+v", got, p)
	}
	ps, err := e.admin.Projects(ctx)
	check(t, "Projects", err)
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"billing", "default"}) {
		t.Errorf("Projects = %v, want billing and default", names)
	}

	_, err = e.admin.CreateProject(ctx, api.CreateProject{Name: "billing"})
	wantErr(t, err, reeve.ErrConflict, `create project "billing": `)
	_, err = e.admin.CreateProject(ctx, api.CreateProject{Name: "Not Valid"})
	wantErr(t, err, reeve.ErrInvalid, "project name")
	_, err = e.admin.Project(ctx, "nope")
	wantErr(t, err, reeve.ErrNotFound, `get project "nope": `, "nope")
	_, err = e.admin.Project(ctx, "")
	wantErr(t, err, reeve.ErrInvalid, "empty")
}

func TestFlows(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()

	reg := e.register(t)
	if !reg.Created || reg.Flow.Name != "etl" || reg.Version.Version != 1 || reg.Version.SpecHash == "" || reg.Version.Storage.Path != "/usr/local/bin/etl" {
		t.Errorf("RegisterFlow = %+v", reg)
	}
	again := e.register(t)
	if again.Created || again.Version.ID != reg.Version.ID {
		t.Errorf("RegisterFlow again = created %v, version %s: want the same version", again.Created, again.Version.ID)
	}

	fs, err := e.admin.Flows(ctx, "", "etl")
	check(t, "Flows", err)
	if len(fs) != 1 || fs[0].ID != reg.Flow.ID {
		t.Errorf("Flows(default, etl) = %+v, want flow %s", fs, reg.Flow.ID)
	}
	fs, err = e.admin.Flows(ctx, "default", "other")
	check(t, "Flows", err)
	if len(fs) != 0 {
		t.Errorf("Flows(default, other) = %+v, want none", fs)
	}
	_, err = e.admin.Flows(ctx, "nope", "")
	wantErr(t, err, reeve.ErrNotFound, "list flows: ")

	d, err := e.admin.Flow(ctx, reg.Flow.ID)
	check(t, "Flow", err)
	if d.Flow.ID != reg.Flow.ID || len(d.Versions) != 1 || d.Versions[0].ID != reg.Version.ID {
		t.Errorf("Flow = %+v", d)
	}
	v, err := e.admin.FlowVersion(ctx, reg.Version.ID)
	check(t, "FlowVersion", err)
	var sp struct{ Name string }
	if err := json.Unmarshal(v.Spec, &sp); err != nil || sp.Name != "etl" || v.FlowID != reg.Flow.ID {
		t.Errorf("FlowVersion = %+v (spec name %q, %v)", v, sp.Name, err)
	}

	_, err = e.admin.Flow(ctx, "nope")
	wantErr(t, err, reeve.ErrNotFound, "get flow nope: ")
	_, err = e.admin.FlowVersion(ctx, "nope")
	wantErr(t, err, reeve.ErrNotFound, "get flow version nope: ")
	_, err = e.admin.RegisterFlow(ctx, api.RegisterFlow{Spec: json.RawMessage(`{"spec_version": 1, "name": ""}`), Storage: api.Storage{Kind: "local", Path: "/bin/x"}})
	wantErr(t, err, reeve.ErrInvalid, "register flow: ", "name is empty")
}

func TestFlowRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	reg := e.register(t)

	created, err := e.admin.CreateFlowRun(ctx, api.CreateFlowRun{Flow: "etl", Name: "first", Params: json.RawMessage(`{"day": "2026-01-02"}`), IdempotencyKey: "k1"})
	check(t, "CreateFlowRun", err)
	run := created.FlowRun
	if !created.Created || run.FlowID != reg.Flow.ID || run.FlowVersionID != reg.Version.ID || run.State.Kind != reeve.Scheduled || run.Version < 1 {
		t.Errorf("CreateFlowRun = %+v", created)
	}
	var params map[string]any
	if err := json.Unmarshal(run.Params, &params); err != nil || params["day"] != "2026-01-02" || params["n"] != 3.0 {
		t.Errorf("run params = %s (%v), want the day given and n's default", run.Params, err)
	}
	same, err := e.admin.CreateFlowRun(ctx, api.CreateFlowRun{Flow: "etl", Params: json.RawMessage(`{"day": "2026-01-02"}`), IdempotencyKey: "k1"})
	check(t, "CreateFlowRun again", err)
	if same.Created || same.FlowRun.ID != run.ID {
		t.Errorf("CreateFlowRun with the same key = %+v, want run %s again", same, run.ID)
	}
	_, err = e.admin.CreateFlowRun(ctx, api.CreateFlowRun{Flow: "etl"})
	wantErr(t, err, reeve.ErrInvalid, `create a run of flow "etl": `, `"day"`)
	_, err = e.admin.CreateFlowRun(ctx, api.CreateFlowRun{Project: "default", Flow: "nope"})
	wantErr(t, err, reeve.ErrNotFound, `create a run of flow "default/nope": `)

	// Detail, state changes and the history.
	d, err := e.admin.FlowRun(ctx, run.ID)
	check(t, "FlowRun", err)
	if d.FlowRun.ID != run.ID || len(d.History) != 1 || d.History[0].Kind != reeve.Scheduled {
		t.Errorf("FlowRun = %+v", d)
	}
	running, err := e.admin.SetFlowRunState(ctx, run.ID, api.SetState{State: reeve.State{Kind: reeve.Running}, ExpectVersion: run.Version})
	check(t, "SetFlowRunState", err)
	if running.State.Kind != reeve.Running || running.Version != run.Version+1 {
		t.Errorf("SetFlowRunState = %+v", running)
	}
	_, err = e.admin.SetFlowRunState(ctx, run.ID, api.SetState{State: reeve.State{Kind: reeve.Failed}, ExpectVersion: run.Version})
	wantErr(t, err, reeve.ErrConflict, "set the state of flow run "+run.ID+" to Failed: ")
	_, err = e.admin.SetFlowRunState(ctx, "nope", api.SetState{State: reeve.State{Kind: reeve.Running}, ExpectVersion: 1})
	wantErr(t, err, reeve.ErrNotFound)
	_, err = e.admin.FlowRun(ctx, "nope")
	wantErr(t, err, reeve.ErrNotFound, "get flow run nope: ", `"nope"`)

	// Task runs.
	trs, err := e.admin.WriteTaskRunStates(ctx, run.ID, []api.TaskRunWrite{
		{Key: "extract", Task: "demo.extract", State: reeve.State{Kind: reeve.Running}},
	})
	check(t, "WriteTaskRunStates", err)
	if len(trs) != 1 || trs[0].Key != "extract" || trs[0].Version != 1 {
		t.Fatalf("WriteTaskRunStates = %+v", trs)
	}
	_, err = e.admin.WriteTaskRunStates(ctx, run.ID, []api.TaskRunWrite{
		{Key: "extract", Task: "demo.extract", State: reeve.State{Kind: reeve.Success}, ExpectVersion: 7},
	})
	wantErr(t, err, reeve.ErrConflict)
	_, err = e.admin.WriteTaskRunStates(ctx, run.ID, []api.TaskRunWrite{
		{Key: "extract", Task: "demo.extract", State: reeve.State{Kind: reeve.Success}, ExpectVersion: 1},
	})
	check(t, "WriteTaskRunStates", err)
	trs, err = e.admin.TaskRuns(ctx, run.ID)
	check(t, "TaskRuns", err)
	if len(trs) != 1 || trs[0].State.Kind != reeve.Success {
		t.Errorf("TaskRuns = %+v", trs)
	}
	hist, err := e.admin.History(ctx, run.ID, "")
	check(t, "History", err)
	if kinds := kindsOf(hist); !slices.Equal(kinds, []reeve.Kind{reeve.Scheduled, reeve.Running}) {
		t.Errorf("History = %v", kinds)
	}
	hist, err = e.admin.History(ctx, run.ID, trs[0].ID)
	check(t, "History of a task run", err)
	if kinds := kindsOf(hist); !slices.Equal(kinds, []reeve.Kind{reeve.Running, reeve.Success}) {
		t.Errorf("History of the task run = %v", kinds)
	}

	// Cancel: the run is Running, so it waits for its runner to confirm;
	// asking again changes nothing; once it ended, cancel is a conflict.
	cancelling, err := e.admin.CancelFlowRun(ctx, run.ID)
	check(t, "CancelFlowRun", err)
	if cancelling.State.Kind != reeve.Cancelling {
		t.Errorf("CancelFlowRun of a Running run = %+v, want Cancelling", cancelling)
	}
	again, err := e.admin.CancelFlowRun(ctx, run.ID)
	check(t, "CancelFlowRun again", err)
	if again.Version != cancelling.Version {
		t.Errorf("a second cancel moved the run: version %d, then %d", cancelling.Version, again.Version)
	}
	cancelled, err := e.admin.SetFlowRunState(ctx, run.ID, api.SetState{State: reeve.State{Kind: reeve.Cancelled}, ExpectVersion: cancelling.Version})
	check(t, "SetFlowRunState(Cancelled)", err)
	_, err = e.admin.CancelFlowRun(ctx, cancelled.ID)
	wantErr(t, err, reeve.ErrConflict, "cancel flow run "+run.ID+": ")
	restarted, err := e.admin.RestartFlowRun(ctx, run.ID)
	check(t, "RestartFlowRun of a cancelled run", err)
	if restarted.State.Kind != reeve.Scheduled || restarted.AgentID != "" {
		t.Errorf("RestartFlowRun = %+v, want Scheduled and no agent", restarted)
	}
	_, err = e.admin.RestartFlowRun(ctx, run.ID)
	wantErr(t, err, reeve.ErrConflict, "restart flow run "+run.ID+": ")
}

func kindsOf(states []reeve.State) []reeve.Kind {
	out := make([]reeve.Kind, len(states))
	for i, s := range states {
		out[i] = s.Kind
	}
	return out
}

func TestFlowRunPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	reg := e.register(t)
	var ids []string
	for range 5 {
		ids = append(ids, e.createRun(t, reg.Flow.ID).ID)
	}
	cancelled, err := e.admin.CancelFlowRun(ctx, ids[2])
	check(t, "CancelFlowRun", err)

	// Page by hand.
	var paged []string
	f := client.FlowRunFilter{FlowID: reg.Flow.ID, Limit: 2}
	for pages := 0; ; pages++ {
		page, err := e.admin.FlowRuns(ctx, f)
		check(t, "FlowRuns", err)
		if len(page.FlowRuns) > 2 || pages > 3 {
			t.Fatalf("page %d has %d runs (limit 2)", pages, len(page.FlowRuns))
		}
		for _, r := range page.FlowRuns {
			paged = append(paged, r.ID)
		}
		if page.NextCursor == "" {
			break
		}
		f.Cursor = page.NextCursor
	}
	// The iterator reads the same runs.
	var all []string
	for r, err := range e.admin.AllFlowRuns(ctx, client.FlowRunFilter{Project: "default", Limit: 2}) {
		check(t, "AllFlowRuns", err)
		all = append(all, r.ID)
	}
	if !slices.Equal(all, paged) {
		t.Errorf("AllFlowRuns = %v, paging by hand = %v", all, paged)
	}
	sorted := slices.Clone(all)
	slices.Sort(sorted)
	slices.Sort(ids)
	if !slices.Equal(sorted, ids) {
		t.Errorf("listed runs %v, want the created ones %v", all, ids)
	}
	// Stopping early stops reading.
	n := 0
	for range e.admin.AllFlowRuns(ctx, client.FlowRunFilter{Limit: 2}) {
		n++
		break
	}
	if n != 1 {
		t.Errorf("a broken loop saw %d runs", n)
	}
	// Filters.
	page, err := e.admin.FlowRuns(ctx, client.FlowRunFilter{States: []reeve.Kind{reeve.Cancelled, reeve.Failed}})
	check(t, "FlowRuns by state", err)
	if len(page.FlowRuns) != 1 || page.FlowRuns[0].ID != cancelled.ID || page.FlowRuns[0].State.Kind != reeve.Cancelled {
		t.Errorf("cancelled runs = %+v", page.FlowRuns)
	}
	page, err = e.admin.FlowRuns(ctx, client.FlowRunFilter{CreatedAfter: time.Now().Add(time.Hour)})
	check(t, "FlowRuns created later", err)
	if len(page.FlowRuns) != 0 {
		t.Errorf("runs created in an hour = %+v", page.FlowRuns)
	}
	page, err = e.admin.FlowRuns(ctx, client.FlowRunFilter{CreatedBefore: time.Now().Add(time.Hour), Limit: 1000})
	check(t, "FlowRuns created before", err)
	if len(page.FlowRuns) != 5 {
		t.Errorf("runs created before in an hour: %d, want 5", len(page.FlowRuns))
	}
	page, err = e.admin.FlowRuns(ctx, client.FlowRunFilter{ScheduledBefore: time.Now().Add(-time.Hour)})
	check(t, "FlowRuns scheduled an hour ago", err)
	if len(page.FlowRuns) != 0 {
		t.Errorf("runs scheduled before an hour ago = %+v", page.FlowRuns)
	}
	page, err = e.admin.FlowRuns(ctx, client.FlowRunFilter{ScheduledBefore: time.Now().Add(time.Hour), Limit: 1000})
	check(t, "FlowRuns scheduled before", err)
	if len(page.FlowRuns) != 5 {
		t.Errorf("runs scheduled before in an hour: %d, want 5", len(page.FlowRuns))
	}
	for _, err := range e.admin.AllFlowRuns(ctx, client.FlowRunFilter{Project: "nope"}) {
		wantErr(t, err, reeve.ErrNotFound, "list flow runs: ")
	}
}

// TestFlowRunFilterAndCounts checks the runs list's filters (label,
// parameter value, text), task counts and FlowRunCounts through the wire.
func TestFlowRunFilterAndCounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	reg := e.register(t)
	gpu, err := e.admin.RegisterFlow(ctx, api.RegisterFlow{
		Spec:    json.RawMessage(strings.Replace(etlSpec, `"name": "etl"`, `"name": "train"`, 1)),
		Storage: api.Storage{Kind: "local", Path: "/usr/local/bin/etl"},
		Labels:  []string{"gpu", "prod"},
	})
	check(t, "RegisterFlow(train)", err)
	mk := func(flowID, name, params string) api.FlowRun {
		t.Helper()
		c, err := e.admin.CreateFlowRun(ctx, api.CreateFlowRun{FlowID: flowID, Name: name, Params: json.RawMessage(params)})
		check(t, "CreateFlowRun", err)
		return c.FlowRun
	}
	mon := mk(reg.Flow.ID, "monday", `{"day": "mon"}`)
	tue := mk(reg.Flow.ID, "Tuesday backfill", `{"day": "tue", "n": 7}`)
	train := mk(gpu.Flow.ID, "train", `{"day": "mon", "n": 7}`)
	_, err = e.admin.CancelFlowRun(ctx, tue.ID)
	check(t, "CancelFlowRun", err)
	_, err = e.admin.WriteTaskRunStates(ctx, mon.ID, []api.TaskRunWrite{
		{Key: "extract", Task: "extract", State: reeve.State{Kind: reeve.Success}},
		{Key: "load[0]", Task: "load", State: reeve.State{Kind: reeve.Failed}},
		{Key: "load[1]", Task: "load", MapIndex: 1, State: reeve.State{Kind: reeve.Success}},
	})
	check(t, "WriteTaskRunStates", err)

	cases := []struct {
		name string
		f    client.FlowRunFilter
		want []string
	}{
		{"Label", client.FlowRunFilter{Labels: []string{"gpu"}}, []string{train.ID}},
		{"Labels", client.FlowRunFilter{Labels: []string{"gpu", "arm"}}, nil},
		{"Param", client.FlowRunFilter{Params: map[string]string{"day": "mon"}}, []string{train.ID, mon.ID}},
		{"Params", client.FlowRunFilter{Params: map[string]string{"day": "mon", "n": "7"}}, []string{train.ID}},
		{"Text", client.FlowRunFilter{Text: "BACKFILL"}, []string{tue.ID}},
		{"TextAndState", client.FlowRunFilter{Text: "day", States: []reeve.Kind{reeve.Scheduled}}, []string{mon.ID}},
	}
	for _, c := range cases {
		page, err := e.admin.FlowRuns(ctx, c.f)
		check(t, c.name+": FlowRuns", err)
		var got []string
		for _, r := range page.FlowRuns {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: FlowRuns = %v, want %v", c.name, got, c.want)
		}
	}

	page, err := e.admin.FlowRuns(ctx, client.FlowRunFilter{FlowID: reg.Flow.ID, TaskCounts: true})
	check(t, "FlowRuns with task counts", err)
	counts := map[string]map[reeve.Kind]int{}
	for _, r := range page.FlowRuns {
		counts[r.ID] = r.TaskCounts
	}
	want := map[string]map[reeve.Kind]int{mon.ID: {reeve.Success: 2, reeve.Failed: 1}, tue.ID: nil}
	if !maps.EqualFunc(counts, want, maps.Equal) {
		t.Errorf("task counts = %v, want %v", counts, want)
	}
	page, err = e.admin.FlowRuns(ctx, client.FlowRunFilter{FlowID: reg.Flow.ID})
	check(t, "FlowRuns without task counts", err)
	for _, r := range page.FlowRuns {
		if r.TaskCounts != nil {
			t.Errorf("run %s has task counts %v unasked", r.ID, r.TaskCounts)
		}
	}

	got, err := e.admin.FlowRunCounts(ctx, client.FlowRunFilter{Params: map[string]string{"day": "tue"}, Limit: 1})
	check(t, "FlowRunCounts", err)
	if wantCounts := map[reeve.Kind]int64{reeve.Cancelled: 1}; !maps.Equal(got.Counts, wantCounts) || got.Total != 1 {
		t.Errorf("FlowRunCounts(day=tue) = %+v, want %v and total 1", got, wantCounts)
	}
	got, err = e.admin.FlowRunCounts(ctx, client.FlowRunFilter{})
	check(t, "FlowRunCounts of all", err)
	if wantCounts := map[reeve.Kind]int64{reeve.Cancelled: 1, reeve.Scheduled: 2}; !maps.Equal(got.Counts, wantCounts) || got.Total != 3 {
		t.Errorf("FlowRunCounts() = %+v, want %v and total 3", got, wantCounts)
	}
	_, err = e.admin.FlowRunCounts(ctx, client.FlowRunFilter{Project: "nope"})
	wantErr(t, err, reeve.ErrNotFound, "count flow runs: ")
	_, err = e.admin.FlowRunCounts(ctx, client.FlowRunFilter{Params: map[string]string{"": "x"}})
	wantErr(t, err, reeve.ErrInvalid, "name=value")
}

func TestErrorsAcrossTheWire(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()

	// The server's errors keep their code and message.
	_, err := e.admin.FlowRun(ctx, "123")
	wantErr(t, err, reeve.ErrNotFound, `flow run "123" not found`)
	var rerr *reeve.Error
	if !errors.As(err, &rerr) || rerr.Code != reeve.CodeNotFound || err.Error() != "get flow run 123: "+rerr.Message {
		t.Errorf("error %q wraps %+v: want the server's error under the operation", err, rerr)
	}

	_, err = newClient(t, e.url, "").Projects(ctx)
	wantErr(t, err, reeve.ErrUnauthorized, "list projects: ", "no API token")
	_, err = newClient(t, e.url, "reeve_"+strings.Repeat("x", 40)).Projects(ctx)
	wantErr(t, err, reeve.ErrUnauthorized, "unknown API token")
	_, err = newClient(t, e.url, "not-a-reeve-token").Projects(ctx)
	wantErr(t, err, reeve.ErrUnauthorized)

	dev := e.as(t, api.RoleDeveloper)
	_, err = dev.CreateProject(ctx, api.CreateProject{Name: "x"})
	wantErr(t, err, reeve.ErrForbidden, `create project "x": `, "developer")
	_, err = dev.Tokens(ctx)
	wantErr(t, err, reeve.ErrForbidden)
	agent := e.as(t, api.RoleAgent)
	_, err = agent.CreateFlowRun(ctx, api.CreateFlowRun{Flow: "etl"})
	wantErr(t, err, reeve.ErrForbidden)
}

func TestErrorsNotFromReeve(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/flows/bad-gateway":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html>\n<body><h1>502 Bad Gateway</h1>\n<hr>nginx</body></html>")
		case "/api/v1/flows/empty":
			w.WriteHeader(http.StatusGatewayTimeout)
		case "/api/v1/flows/not-found":
			http.NotFound(w, r)
		case "/api/v1/flows/too-many":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/api/v1/flows/teapot":
			w.WriteHeader(http.StatusTeapot)
			fmt.Fprint(w, strings.Repeat("é", 500))
		case "/api/v1/flows/unknown-code":
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"error": {"code": "too_late", "message": "it is too late"}}`)
		case "/api/v1/flows/html-ok":
			fmt.Fprint(w, "<html>welcome to the hotel wifi</html>")
		case "/api/v1/flows/slow":
			<-r.Context().Done()
		}
	}))
	t.Cleanup(proxy.Close)
	c := newClient(t, proxy.URL, "reeve_x", client.WithTimeout(2*time.Second))

	for _, tc := range []struct {
		id         string
		want       error
		substrings []string
	}{
		{"bad-gateway", reeve.ErrUnavailable, []string{"get flow bad-gateway: GET /api/v1/flows/bad-gateway: " + proxy.URL + " answered 502 Bad Gateway", "proxy", "<h1>502 Bad Gateway</h1> <hr>nginx"}},
		{"empty", reeve.ErrUnavailable, []string{"504", "(empty body)"}},
		{"not-found", reeve.ErrNotFound, []string{"404", "404 page not found"}},
		{"too-many", reeve.ErrUnavailable, []string{"429"}},
		{"teapot", reeve.ErrInvalid, []string{"418", "é…"}},
		{"unknown-code", reeve.ErrConflict, []string{"it is too late"}},
		{"html-ok", reeve.ErrInternal, []string{"not the JSON this client reads"}},
	} {
		_, err := c.Flow(ctx, tc.id)
		wantErr(t, err, tc.want, tc.substrings...)
		if len(err.Error()) > 500 {
			t.Errorf("error of %s is %d bytes long: %s", tc.id, len(err.Error()), err)
		}
	}

	// The client's timeout: unavailable, and a deadline.
	_, err := newClient(t, proxy.URL, "", client.WithTimeout(50*time.Millisecond)).Flow(ctx, "slow")
	wantErr(t, err, reeve.ErrUnavailable, "did not answer within 50ms")
	wantErr(t, err, context.DeadlineExceeded)
	// The caller's cancellation: the context's error.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = c.Flow(cctx, "slow")
	wantErr(t, err, context.Canceled, "get flow slow: ")
	if errors.Is(err, reeve.ErrUnavailable) {
		t.Errorf("a cancelled call is %v, not unavailable", err)
	}
}

func TestServerDown(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	c := newClient(t, url, "")
	_, err := c.Projects(t.Context())
	wantErr(t, err, reeve.ErrUnavailable, "list projects: cannot reach the Reeve server at "+url, "is `reeve server` running?", "refused")
	err = c.Healthz(t.Context())
	wantErr(t, err, reeve.ErrUnavailable, "health check: ")
	_, err = c.FollowLogs(t.Context(), "x", client.LogQuery{}, func(api.LogLine) error { return nil })
	wantErr(t, err, reeve.ErrUnavailable, "follow the logs of flow run x: ")
}

func TestLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	run := e.createRun(t, e.register(t).Flow.ID)

	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var lines []api.LogLine
	for i := range 5 {
		lines = append(lines, api.LogLine{Time: start.Add(time.Duration(i) * time.Second), Level: "INFO", Message: fmt.Sprint("line ", i), Attrs: json.RawMessage(`{"i":` + fmt.Sprint(i) + `}`)})
	}
	check(t, "AppendLogs", e.admin.AppendLogs(ctx, run.ID, lines))
	err := e.admin.AppendLogs(ctx, run.ID, []api.LogLine{{Level: "LOUD", Message: "x"}})
	wantErr(t, err, reeve.ErrInvalid, "append logs to flow run "+run.ID+": ", "LOUD")

	page, err := e.admin.Logs(ctx, run.ID, client.LogQuery{Limit: 2})
	check(t, "Logs", err)
	if msgs := messages(page.Logs); !slices.Equal(msgs, []string{"line 0", "line 1"}) || page.NextAfter != page.Logs[1].ID {
		t.Fatalf("first page = %v, next after %d", msgs, page.NextAfter)
	}
	if l := page.Logs[1]; !l.Time.Equal(start.Add(time.Second)) || l.Level != "INFO" || string(l.Attrs) != `{"i":1}` {
		t.Errorf("line 1 = %+v", l)
	}
	page, err = e.admin.Logs(ctx, run.ID, client.LogQuery{After: page.NextAfter})
	check(t, "Logs", err)
	if msgs := messages(page.Logs); !slices.Equal(msgs, []string{"line 2", "line 3", "line 4"}) {
		t.Errorf("second page = %v", msgs)
	}
}

func messages(lines []api.LogLine) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Message
	}
	return out
}

// follower runs FollowLogs in a goroutine, passing the lines on.
type follower struct {
	lines chan api.LogLine
	done  chan struct{}
	run   *api.FlowRun
	err   error
}

func follow(ctx context.Context, c *client.Client, runID string, q client.LogQuery) *follower {
	f := &follower{lines: make(chan api.LogLine, 100), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		f.run, f.err = c.FollowLogs(ctx, runID, q, func(l api.LogLine) error {
			f.lines <- l
			return nil
		})
	}()
	return f
}

// next returns the next line, or fails after a while.
func (f *follower) next(t *testing.T) api.LogLine {
	t.Helper()
	select {
	case l := <-f.lines:
		return l
	case <-f.done:
		t.Fatalf("FollowLogs ended early: %v, %v", f.run, f.err)
	case <-time.After(10 * time.Second):
		t.Fatal("no log line within 10s")
	}
	return api.LogLine{}
}

// wait returns the result of FollowLogs, or fails after a while.
func (f *follower) wait(t *testing.T) (*api.FlowRun, error) {
	t.Helper()
	select {
	case <-f.done:
		return f.run, f.err
	case <-time.After(10 * time.Second):
		t.Fatal("FollowLogs did not end within 10s")
	}
	return nil, nil
}

func TestFollowLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	run := e.createRun(t, e.register(t).Flow.ID)

	check(t, "AppendLogs", e.admin.AppendLogs(ctx, run.ID, []api.LogLine{{Level: "INFO", Message: "before"}}))
	f := follow(ctx, e.admin, run.ID, client.LogQuery{})
	if l := f.next(t); l.Message != "before" || l.ID == 0 {
		t.Fatalf("first line = %+v", l)
	}
	// The stream is open: lines appended now come through it.
	check(t, "AppendLogs", e.admin.AppendLogs(ctx, run.ID, []api.LogLine{{Level: "WARN", Message: "during 1"}, {Level: "INFO", Message: "during 2"}}))
	if l := f.next(t); l.Message != "during 1" || l.Level != "WARN" {
		t.Errorf("second line = %+v", l)
	}
	if l := f.next(t); l.Message != "during 2" {
		t.Errorf("third line = %+v", l)
	}
	e.finish(t, run.ID)
	final, err := f.wait(t)
	check(t, "FollowLogs", err)
	if final.ID != run.ID || final.State.Kind != reeve.Success {
		t.Errorf("FollowLogs returned %+v, want the finished run", final)
	}
	if len(f.lines) != 0 {
		t.Errorf("%d more lines after the end", len(f.lines))
	}

	// A finished run's lines, after one: all at once, then the end.
	var got []string
	final, err = e.admin.FollowLogs(ctx, run.ID, client.LogQuery{After: 1}, func(l api.LogLine) error {
		got = append(got, l.Message)
		return nil
	})
	check(t, "FollowLogs of a finished run", err)
	if !slices.Equal(got, []string{"during 1", "during 2"}) || final.State.Kind != reeve.Success {
		t.Errorf("FollowLogs of a finished run = %v, %v", got, final)
	}

	// An error of the function stops it and is returned.
	errStop := errors.New("stop")
	_, err = e.admin.FollowLogs(ctx, run.ID, client.LogQuery{}, func(api.LogLine) error { return errStop })
	if err != errStop {
		t.Errorf("FollowLogs with a failing function = %v, want its error", err)
	}
	_, err = e.admin.FollowLogs(ctx, "nope", client.LogQuery{}, func(api.LogLine) error { return nil })
	wantErr(t, err, reeve.ErrNotFound, "follow the logs of flow run nope: ")

	// Cancelling the context ends a follow of a run that goes on.
	other := e.createRun(t, run.FlowID)
	cctx, cancel := context.WithCancel(ctx)
	f = follow(cctx, e.admin, other.ID, client.LogQuery{})
	check(t, "AppendLogs", e.admin.AppendLogs(ctx, other.ID, []api.LogLine{{Level: "INFO", Message: "x"}}))
	f.next(t)
	cancel()
	_, err = f.wait(t)
	wantErr(t, err, context.Canceled, "follow the logs of flow run "+other.ID)
}

// cutFirstStream ends the first log stream after its first log event, as
// a dropped connection would, and records each stream's Last-Event-ID.
type cutFirstStream struct {
	next   http.Handler
	cut    atomic.Bool
	mu     sync.Mutex
	lastID []string
}

func (c *cutFirstStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("follow") == "true" {
		c.mu.Lock()
		c.lastID = append(c.lastID, r.Header.Get("Last-Event-ID"))
		c.mu.Unlock()
		if c.cut.CompareAndSwap(false, true) {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			w, r = &cutWriter{ResponseWriter: w, cancel: cancel}, r.WithContext(ctx)
		}
	}
	c.next.ServeHTTP(w, r)
}

// cutWriter passes writes through up to the first log event, then drops
// them and ends the request.
type cutWriter struct {
	http.ResponseWriter
	cancel func()
	cut    bool
}

func (w *cutWriter) Write(b []byte) (int, error) {
	if w.cut {
		return len(b), nil
	}
	if bytes.Contains(b, []byte("event: log")) {
		w.cut = true
		defer w.cancel()
	}
	return w.ResponseWriter.Write(b)
}

func (w *cutWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

func TestFollowLogsReconnects(t *testing.T) {
	t.Parallel()
	cut := &cutFirstStream{}
	e := newEnv(t, func(h http.Handler) http.Handler { cut.next = h; return cut })
	ctx := t.Context()
	run := e.createRun(t, e.register(t).Flow.ID)
	check(t, "AppendLogs", e.admin.AppendLogs(ctx, run.ID, []api.LogLine{{Level: "INFO", Message: "one"}, {Level: "INFO", Message: "two"}}))

	f := follow(ctx, e.admin, run.ID, client.LogQuery{})
	one := f.next(t)
	if two := f.next(t); one.Message != "one" || two.Message != "two" {
		t.Fatalf("lines = %q, %q: want one, two", one.Message, two.Message)
	}
	check(t, "AppendLogs", e.admin.AppendLogs(ctx, run.ID, []api.LogLine{{Level: "INFO", Message: "three"}}))
	if three := f.next(t); three.Message != "three" {
		t.Errorf("third line = %q", three.Message)
	}
	e.finish(t, run.ID)
	final, err := f.wait(t)
	check(t, "FollowLogs", err)
	if final.State.Kind != reeve.Success {
		t.Errorf("final state = %v", final.State.Kind)
	}
	cut.mu.Lock()
	defer cut.mu.Unlock()
	if want := []string{"", fmt.Sprint(one.ID)}; !slices.Equal(cut.lastID, want) {
		t.Errorf("streams opened with Last-Event-ID %q, want %q", cut.lastID, want)
	}
}

func TestAgentsAndClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	reg := e.register(t)
	agent := e.as(t, api.RoleAgent)

	a, err := agent.RegisterAgent(ctx, api.RegisterAgent{Name: "host-1", Labels: []string{"linux", "gpu"}})
	check(t, "RegisterAgent", err)
	if a.ID == "" || a.Name != "host-1" || !slices.Equal(a.Labels, []string{"gpu", "linux"}) {
		t.Errorf("RegisterAgent = %+v", a)
	}
	hb, err := agent.Heartbeat(ctx, a.ID)
	check(t, "Heartbeat", err)
	if hb.LastSeenAt.Before(a.LastSeenAt) {
		t.Errorf("Heartbeat: last seen %v, before %v", hb.LastSeenAt, a.LastSeenAt)
	}
	as, err := e.admin.Agents(ctx)
	check(t, "Agents", err)
	if len(as) != 1 || as[0].ID != a.ID {
		t.Errorf("Agents = %+v", as)
	}
	_, err = agent.Heartbeat(ctx, "nope")
	wantErr(t, err, reeve.ErrNotFound, "heartbeat of agent nope: ")

	// Nothing to claim: nil at the end of the wait, even when the wait is
	// longer than the client's timeout.
	short := newClient(t, e.url, tokenOf(t, e, api.RoleAgent), client.WithTimeout(100*time.Millisecond))
	begin := time.Now()
	cl, err := short.Claim(ctx, a.ID, 300*time.Millisecond)
	if err != nil || cl != nil {
		t.Fatalf("Claim with nothing to claim = %+v, %v; want nil, nil", cl, err)
	}
	if waited := time.Since(begin); waited < 300*time.Millisecond {
		t.Errorf("Claim returned after %v, before its wait", waited)
	}

	// A claim waiting when a run is created gets it.
	type result struct {
		cl  *api.Claim
		err error
	}
	claimed := make(chan result, 1)
	go func() {
		cl, err := agent.Claim(ctx, a.ID, 20*time.Second)
		claimed <- result{cl, err}
	}()
	run := e.createRun(t, reg.Flow.ID)
	var res result
	select {
	case res = <-claimed:
	case <-time.After(20 * time.Second):
		t.Fatal("no claim within 20s")
	}
	check(t, "Claim", res.err)
	cl = res.cl
	if cl == nil || cl.FlowRun.ID != run.ID || cl.FlowRun.State.Kind != reeve.Submitted || cl.FlowRun.AgentID != a.ID ||
		cl.FlowVersion.ID != reg.Version.ID || !strings.HasPrefix(cl.Token, "reeve_") {
		t.Fatalf("Claim = %+v", cl)
	}
	_, err = agent.Claim(ctx, "nope", time.Millisecond)
	wantErr(t, err, reeve.ErrNotFound, "claim a flow run for agent nope: ")

	// The run token works for its run only, while it runs.
	check(t, "SetSecret", errOf(e.admin.SetSecret(ctx, "", "DB_PASSWORD", "hunter2")))
	check(t, "SetSecret", errOf(e.admin.SetSecret(ctx, "", "OTHER", "x")))
	runner := newClient(t, e.url, cl.Token)
	r, err := runner.SetFlowRunState(ctx, run.ID, api.SetState{State: reeve.State{Kind: reeve.Running}, ExpectVersion: cl.FlowRun.Version})
	check(t, "SetFlowRunState with the run token", err)
	_, err = runner.SetFlowRunState(ctx, run.ID, api.SetState{State: reeve.State{Kind: reeve.Running}, ExpectVersion: cl.FlowRun.Version})
	wantErr(t, err, reeve.ErrConflict, "state version")
	v, err := runner.RunSecret(ctx, run.ID, "DB_PASSWORD")
	check(t, "RunSecret", err)
	if v != "hunter2" {
		t.Errorf("RunSecret = %q, want hunter2", v)
	}
	_, err = runner.RunSecret(ctx, run.ID, "OTHER")
	wantErr(t, err, reeve.ErrForbidden, `read secret "OTHER" of flow run `+run.ID+": ", "does not declare")
	_, err = e.admin.RunSecret(ctx, run.ID, "DB_PASSWORD")
	wantErr(t, err, reeve.ErrForbidden)
	check(t, "AppendLogs with the run token", runner.AppendLogs(ctx, run.ID, []api.LogLine{{Level: "INFO", Message: "hi"}}))
	_, err = runner.WriteTaskRunStates(ctx, run.ID, []api.TaskRunWrite{{Key: "extract", Task: "demo.extract", State: reeve.State{Kind: reeve.Running}}})
	check(t, "WriteTaskRunStates with the run token", err)
	_, err = runner.FlowRun(ctx, run.ID)
	check(t, "FlowRun with the run token", err)
	other := e.createRun(t, reg.Flow.ID)
	_, err = runner.FlowRun(ctx, other.ID)
	wantErr(t, err, reeve.ErrForbidden)
	_, err = runner.Projects(ctx)
	wantErr(t, err, reeve.ErrForbidden)

	minted, err := agent.MintRunToken(ctx, run.ID)
	check(t, "MintRunToken", err)
	if minted.Token.FlowRunID != run.ID || minted.Token.Role != api.RoleRun {
		t.Errorf("MintRunToken = %+v", minted.Token)
	}
	_, err = runner.SetFlowRunState(ctx, run.ID, api.SetState{State: reeve.State{Kind: reeve.Success}, ExpectVersion: r.Version})
	check(t, "SetFlowRunState(Success)", err)
	_, err = runner.FlowRun(ctx, run.ID)
	wantErr(t, err, reeve.ErrUnauthorized, "finished")
	_, err = agent.MintRunToken(ctx, run.ID)
	wantErr(t, err, reeve.ErrConflict, "mint a token for flow run "+run.ID+": ")
}

func errOf[T any](_ T, err error) error { return err }

func tokenOf(t *testing.T, e *env, role string) string {
	t.Helper()
	nt, err := e.admin.CreateToken(t.Context(), api.CreateToken{Name: role, Role: role})
	check(t, "CreateToken", err)
	return nt.Secret
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	dev := e.as(t, api.RoleDeveloper)
	_, err := e.admin.CreateProject(ctx, api.CreateProject{Name: "billing"})
	check(t, "CreateProject", err)

	s, err := dev.SetSecret(ctx, "billing", "API_KEY", "k1")
	check(t, "SetSecret", err)
	if s.Name != "API_KEY" || s.ProjectID == "" || s.CreatedAt.IsZero() {
		t.Errorf("SetSecret = %+v", s)
	}
	_, err = dev.SetSecret(ctx, "billing", "API_KEY", "k2")
	check(t, "SetSecret again", err)
	_, err = dev.SetSecret(ctx, "", "DB_PASSWORD", "p")
	check(t, "SetSecret in the default project", err)
	_, err = dev.SetSecret(ctx, "billing", "EMPTY", "")
	wantErr(t, err, reeve.ErrInvalid, `set secret "EMPTY": `)

	secs, err := dev.Secrets(ctx, "billing")
	check(t, "Secrets", err)
	if len(secs) != 1 || secs[0].Name != "API_KEY" {
		t.Errorf("Secrets(billing) = %+v", secs)
	}
	secs, err = dev.Secrets(ctx, "")
	check(t, "Secrets", err)
	if len(secs) != 1 || secs[0].Name != "DB_PASSWORD" {
		t.Errorf("Secrets(default) = %+v", secs)
	}
	check(t, "DeleteSecret", dev.DeleteSecret(ctx, "billing", "API_KEY"))
	secs, err = dev.Secrets(ctx, "billing")
	check(t, "Secrets", err)
	if len(secs) != 0 {
		t.Errorf("Secrets after delete = %+v", secs)
	}
	err = dev.DeleteSecret(ctx, "billing", "API_KEY")
	wantErr(t, err, reeve.ErrNotFound, `delete secret "API_KEY": `)
	_, err = e.as(t, api.RoleAgent).Secrets(ctx, "")
	wantErr(t, err, reeve.ErrForbidden)
}

func TestTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()

	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	nt, err := e.admin.CreateToken(ctx, api.CreateToken{Name: "ci", Role: api.RoleDeveloper, ExpiresAt: expires})
	check(t, "CreateToken", err)
	if nt.Token.ID == "" || nt.Token.Role != api.RoleDeveloper || !nt.Token.ExpiresAt.Equal(expires) || !strings.HasPrefix(nt.Secret, "reeve_") {
		t.Errorf("CreateToken = %+v", nt)
	}
	ts, err := e.admin.Tokens(ctx)
	check(t, "Tokens", err)
	if !slices.ContainsFunc(ts, func(tok api.Token) bool { return tok.ID == nt.Token.ID && tok.Name == "ci" }) || len(ts) != 2 {
		t.Errorf("Tokens = %+v: want the first admin and ci", ts)
	}
	_, err = e.admin.CreateToken(ctx, api.CreateToken{Name: "r", Role: api.RoleRun})
	wantErr(t, err, reeve.ErrInvalid, `create token "r": `)

	ci := newClient(t, e.url, nt.Secret)
	_, err = ci.Projects(ctx)
	check(t, "Projects with the new token", err)
	revoked, err := e.admin.RevokeToken(ctx, nt.Token.ID)
	check(t, "RevokeToken", err)
	if revoked.RevokedAt.IsZero() {
		t.Errorf("RevokeToken = %+v", revoked)
	}
	_, err = ci.Projects(ctx)
	wantErr(t, err, reeve.ErrUnauthorized, "list projects: ", "revoked")
	_, err = e.admin.RevokeToken(ctx, "nope")
	wantErr(t, err, reeve.ErrNotFound, "revoke token nope: ")
}

func TestSchedules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	reg := e.register(t)

	sc, err := e.admin.CreateSchedule(ctx, api.CreateSchedule{FlowID: reg.Flow.ID, Interval: api.Duration(time.Hour), Params: json.RawMessage(`{"day": "today"}`)})
	check(t, "CreateSchedule", err)
	if sc.ID == "" || sc.FlowID != reg.Flow.ID || sc.Interval != api.Duration(time.Hour) || sc.Paused || sc.Anchor.IsZero() {
		t.Errorf("CreateSchedule = %+v", sc)
	}
	_, err = e.admin.CreateSchedule(ctx, api.CreateSchedule{FlowID: reg.Flow.ID, Cron: "0 6 * * *"})
	wantErr(t, err, reeve.ErrInvalid, "create a schedule of flow "+reg.Flow.ID+": ", `"day"`)

	got, err := e.admin.Schedule(ctx, sc.ID)
	check(t, "Schedule", err)
	if got.ID != sc.ID || string(got.Params) != string(sc.Params) {
		t.Errorf("Schedule = %+v, want %+v", got, sc)
	}
	list, err := e.admin.Schedules(ctx, reg.Flow.ID)
	check(t, "Schedules", err)
	if len(list) != 1 || list[0].ID != sc.ID {
		t.Errorf("Schedules = %+v", list)
	}
	list, err = e.admin.Schedules(ctx, "")
	check(t, "Schedules", err)
	if len(list) != 1 {
		t.Errorf("all schedules = %+v", list)
	}
	paused, err := e.admin.PauseSchedule(ctx, sc.ID)
	check(t, "PauseSchedule", err)
	resumed, err := e.admin.ResumeSchedule(ctx, sc.ID)
	check(t, "ResumeSchedule", err)
	if !paused.Paused || resumed.Paused {
		t.Errorf("paused %v, then resumed %v", paused.Paused, resumed.Paused)
	}
	check(t, "DeleteSchedule", e.admin.DeleteSchedule(ctx, sc.ID))
	_, err = e.admin.Schedule(ctx, sc.ID)
	wantErr(t, err, reeve.ErrNotFound, "get schedule "+sc.ID+": ")
	err = e.admin.DeleteSchedule(ctx, sc.ID)
	wantErr(t, err, reeve.ErrNotFound, "delete schedule "+sc.ID+": ")
	_, err = e.admin.PauseSchedule(ctx, "nope")
	wantErr(t, err, reeve.ErrNotFound, "pause schedule nope: ")
}

// TestEveryRoute calls each method of the client and checks that together
// they call every route of api.Routes, each the route it should.
func TestEveryRoute(t *testing.T) {
	t.Parallel()
	routes := http.NewServeMux()
	for _, rt := range api.Routes {
		routes.HandleFunc(rt.Method+" "+api.Prefix+rt.Path, func(http.ResponseWriter, *http.Request) {})
	}
	for _, p := range []string{"GET /healthz", "GET /readyz"} {
		routes.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
	}
	var (
		mu   sync.Mutex
		last string
	)
	e := newEnv(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, pattern := routes.Handler(r)
			mu.Lock()
			last = pattern
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	})
	c, ctx := e.admin, t.Context()
	run := e.createRun(t, e.register(t).Flow.ID)
	e.finish(t, run.ID) // so that following its logs ends
	calls := map[string]func() error{
		"GET /projects":                        func() error { return errOf(c.Projects(ctx)) },
		"POST /projects":                       func() error { return errOf(c.CreateProject(ctx, api.CreateProject{Name: "p"})) },
		"GET /projects/{name}":                 func() error { return errOf(c.Project(ctx, "p")) },
		"POST /flows":                          func() error { return errOf(c.RegisterFlow(ctx, api.RegisterFlow{})) },
		"GET /flows":                           func() error { return errOf(c.Flows(ctx, "", "")) },
		"GET /flows/{id}":                      func() error { return errOf(c.Flow(ctx, "x")) },
		"GET /flow_versions/{id}":              func() error { return errOf(c.FlowVersion(ctx, "x")) },
		"POST /flow_runs":                      func() error { return errOf(c.CreateFlowRun(ctx, api.CreateFlowRun{})) },
		"GET /flow_runs":                       func() error { return errOf(c.FlowRuns(ctx, client.FlowRunFilter{})) },
		"GET /flow_runs/counts":                func() error { return errOf(c.FlowRunCounts(ctx, client.FlowRunFilter{})) },
		"GET /flow_runs/{id}":                  func() error { return errOf(c.FlowRun(ctx, "x")) },
		"POST /flow_runs/{id}/state":           func() error { return errOf(c.SetFlowRunState(ctx, "x", api.SetState{})) },
		"POST /flow_runs/{id}/cancel":          func() error { return errOf(c.CancelFlowRun(ctx, "x")) },
		"POST /flow_runs/{id}/task_run_states": func() error { return errOf(c.WriteTaskRunStates(ctx, "x", nil)) },
		"GET /flow_runs/{id}/history":          func() error { return errOf(c.History(ctx, "x", "")) },
		"POST /flow_runs/{id}/logs":            func() error { return c.AppendLogs(ctx, "x", nil) },
		"GET /flow_runs/{id}/logs": func() error {
			if _, err := c.Logs(ctx, "x", client.LogQuery{}); err != nil {
				return err
			}
			mu.Lock()
			last = ""
			mu.Unlock()
			return errOf(c.FollowLogs(ctx, run.ID, client.LogQuery{}, func(api.LogLine) error { return nil }))
		},
		"GET /flow_runs/{id}/secrets/{name}":   func() error { return errOf(c.RunSecret(ctx, "x", "S")) },
		"POST /flow_runs/{id}/tokens":          func() error { return errOf(c.MintRunToken(ctx, "x")) },
		"PUT /flow_runs/{id}/results/{key...}": func() error { return c.PutResult(ctx, "x", "etl/run/a.json", []byte("v")) },
		"GET /flow_runs/{id}/results/{key...}": func() error {
			_, _, err := c.GetResult(ctx, "x", "etl/run/a.json")
			return err
		},
		"POST /flow_runs/{id}/restart":   func() error { return errOf(c.RestartFlowRun(ctx, "x")) },
		"POST /flow_runs/{id}/heartbeat": func() error { return errOf(c.RunHeartbeat(ctx, "x")) },
		"POST /flow_runs/{id}/lost":      func() error { return errOf(c.ReportLost(ctx, "x", api.ReportLost{Attempt: 1, Reason: "gone"})) },
		"GET /task_runs":                 func() error { return errOf(c.TaskRuns(ctx, "x")) },
		"GET /secrets":                   func() error { return errOf(c.Secrets(ctx, "")) },
		"PUT /secrets/{name}":            func() error { return errOf(c.SetSecret(ctx, "", "S", "v")) },
		"DELETE /secrets/{name}":         func() error { return c.DeleteSecret(ctx, "", "S") },
		"GET /tokens":                    func() error { return errOf(c.Tokens(ctx)) },
		"POST /tokens":                   func() error { return errOf(c.CreateToken(ctx, api.CreateToken{})) },
		"DELETE /tokens/{id}":            func() error { return errOf(c.RevokeToken(ctx, "x")) },
		"GET /agents":                    func() error { return errOf(c.Agents(ctx)) },
		"POST /agents":                   func() error { return errOf(c.RegisterAgent(ctx, api.RegisterAgent{})) },
		"POST /agents/{id}/heartbeat":    func() error { return errOf(c.Heartbeat(ctx, "x")) },
		"POST /agents/{id}/claim":        func() error { return errOf(c.Claim(ctx, "x", time.Millisecond)) },
		"GET /schedules":                 func() error { return errOf(c.Schedules(ctx, "")) },
		"POST /schedules":                func() error { return errOf(c.CreateSchedule(ctx, api.CreateSchedule{})) },
		"GET /schedules/{id}":            func() error { return errOf(c.Schedule(ctx, "x")) },
		"POST /schedules/{id}/pause":     func() error { return errOf(c.PauseSchedule(ctx, "x")) },
		"POST /schedules/{id}/resume":    func() error { return errOf(c.ResumeSchedule(ctx, "x")) },
		"DELETE /schedules/{id}":         func() error { return c.DeleteSchedule(ctx, "x") },
		"GET /healthz":                   func() error { return c.Healthz(ctx) },
		"GET /readyz":                    func() error { return c.Ready(ctx) },
	}
	want := []string{"GET /healthz", "GET /readyz"}
	for _, rt := range api.Routes {
		want = append(want, rt.Method+" "+rt.Path)
	}
	for _, route := range want {
		call := calls[route]
		if call == nil {
			t.Errorf("no client method calls %s", route)
			continue
		}
		delete(calls, route)
		mu.Lock()
		last = ""
		mu.Unlock()
		err := call()
		if errors.Is(err, reeve.ErrUnavailable) || errors.Is(err, reeve.ErrInternal) {
			t.Errorf("%s: %v", route, err)
		}
		mu.Lock()
		got := last
		mu.Unlock()
		method, path, _ := strings.Cut(route, " ")
		if !strings.HasPrefix(path, "/healthz") && !strings.HasPrefix(path, "/readyz") {
			path = api.Prefix + path
		}
		if got != method+" "+path {
			t.Errorf("the method for %s called %q", route, got)
		}
	}
	for route := range calls {
		t.Errorf("%s is not a route of api.Routes", route)
	}
}
