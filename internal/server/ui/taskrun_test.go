package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

// taskrunSpec is a flow extract → transform (mapped over extract's
// result) → load, and report after load; extract takes a parameter and a
// constant.
const taskrunSpec = `"parameters":[{"name":"day","type":"string","go_type":"string","default":"today"},{"name":"count","type":"integer","go_type":"int","default":3}],` +
	`"tasks":[` +
	`{"id":"extract","task":"etl.extract","inputs":[{"kind":"param","param":"day"},{"kind":"const","value":{"limit":5}}],"options":{"retries":2,"retry_delay":"1s"}},` +
	`{"id":"transform","task":"etl.transform","mapped":true,"inputs":[{"kind":"task","task":"extract","each":true}]},` +
	`{"id":"load","task":"etl.load","inputs":[{"kind":"task","task":"transform"}]},` +
	`{"id":"report","task":"etl.report","after":["load"]}]`

// taskrunFlow registers a flow of taskrunSpec (name, with extra spec
// members).
func (e *env) taskrunFlow(name, extra string) api.Flow {
	e.t.Helper()
	if extra != "" {
		extra = "," + extra
	}
	spec := fmt.Sprintf(`{"spec_version":1,"name":%q,%s%s}`, name, taskrunSpec, extra)
	reg, err := e.api.RegisterFlow(context.Background(), api.RegisterFlow{Spec: json.RawMessage(spec), Storage: api.Storage{Kind: "local", Path: "/usr/local/bin/flows"}})
	if err != nil {
		e.t.Fatal(err)
	}
	return reg.Flow
}

// taskrunWriter writes task run states of one run as the admin, keeping
// each task run's version.
type taskrunWriter struct {
	e   *env
	id  string
	ver map[string]int64
}

func (e *env) taskrunWriter(id string) *taskrunWriter {
	return &taskrunWriter{e: e, id: id, ver: map[string]int64{}}
}

// write moves task runs to states, in order, in one batch.
func (w *taskrunWriter) write(states ...taskrunState) {
	w.e.t.Helper()
	var ws []api.TaskRunWrite
	next := map[string]int64{}
	for _, s := range states {
		v, ok := next[s.key]
		if !ok {
			v = w.ver[s.key]
		}
		idx := -1
		if _, rest, ok := strings.Cut(s.key, "["); ok {
			fmt.Sscanf(rest, "%d]", &idx)
		}
		st := s.st
		if st.Time.IsZero() {
			st.Time = time.Now()
		}
		base, _, _ := strings.Cut(s.key, "[")
		ws = append(ws, api.TaskRunWrite{Key: s.key, Task: base, MapIndex: idx, ExpectVersion: v, State: st})
		next[s.key] = v + 1
	}
	trs, err := w.e.api.WriteTaskRunStates(context.Background(), w.id, ws)
	if err != nil {
		w.e.t.Fatal(err)
	}
	for _, tr := range trs {
		w.ver[tr.Key] = tr.Version
	}
}

type taskrunState struct {
	key string
	st  state.State
}

func trs(key string, kind state.Kind, attempt int, msg string) taskrunState {
	return taskrunState{key, state.State{Kind: kind, Attempt: attempt, Message: msg}}
}

// taskrunRows counts a page's rows of task runs.
func taskrunRows(p page) int { return strings.Count(p.body, `<tr data-task="`) }

// TestTaskRunPage: a task run's page shows its state, every attempt
// with its error, its inputs (a parameter's value, a constant, an
// upstream task), where its result is stored, and links to its upstream
// and downstream tasks; a mapped task's page lists its children a page
// of 100 at a time with counts per state and a state filter; a child
// links to its parent and siblings; a task that has not started shows
// that; a task the run does not have is a 404 page.
func TestTaskRunPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.taskrunFlow("etl", "")
	run := e.run("etl", `{"day":"2026-11-26"}`)
	e.setState(run.ID, state.Running, "")
	w := e.taskrunWriter(run.ID)
	w.write(trs("extract", state.Pending, 0, ""), trs("extract", state.Running, 1, ""),
		trs("extract", state.Retrying, 1, "attempt 1 failed; retrying in 1s: connection reset by peer"),
		trs("extract", state.Running, 2, ""),
		taskrunState{"extract", state.State{Kind: state.Success, Attempt: 2, Result: &state.Result{Store: "reeve://server", Key: "runs/extract.json", Serializer: "json"}}},
		trs("transform", state.Running, 0, "mapped over 250 elements"))
	var children []taskrunState
	for i := range 250 {
		kind := state.Success
		switch {
		case i%50 == 7:
			kind = state.Failed
		case i >= 240:
			kind = state.Running
		}
		msg := ""
		if kind == state.Failed {
			msg = fmt.Sprintf("row %d: bad date", i)
		}
		children = append(children, trs(fmt.Sprintf("transform[%d]", i), kind, 1, msg))
	}
	w.write(children...)
	// transform[3] failed, and ran again after a restart: its runner
	// numbered the new attempt 1 again. load came from the cache.
	w.write(trs("transform[3]", state.Running, 1, ""), trs("transform[3]", state.Failed, 1, "row 3: timeout"), trs("transform[3]", state.Running, 1, ""), trs("transform[3]", state.Success, 1, ""),
		trs("load", state.Pending, 0, ""), trs("load", state.Cached, 0, "cached for 1h"))
	u := e.user()
	u.signIn(e.token("agent")) // every role that may read runs may read task runs
	base := "/ui/runs/" + run.ID + "/tasks/"

	p := u.mustGet(base + "extract")
	p.contains(t, `<h1 class="task-key">extract</h1>`, `<div id="task-state"><span class="state state-ok" data-state="Success">`,
		`href="/ui/runs/`+run.ID+`" id="flow-run"`, "<code>etl.extract</code>",
		`data-attempt="1"`, "Attempt 1", `<pre class="task-error" role="note">attempt 1 failed; retrying in 1s: connection reset by peer</pre>`,
		`data-attempt="2"`, "Attempt 2", "Before the first attempt",
		"parameter <code>day</code>", `<code>&#34;2026-11-26&#34;</code>`, `<code>{&#34;limit&#34;:5}</code>`,
		"stored at <code>reeve://server#runs/extract.json</code> (json)", "<dt>retries</dt><dd>2, delay 1s</dd>",
		`<dd id="upstream">none</dd>`, `<a class="mono" href="`+base+`transform">transform</a>`,
		`href="/ui/runs/`+run.ID+`?tab=logs&amp;task=extract" id="task-logs"`)
	if n := strings.Count(p.body, `class="card attempt"`); n != 3 {
		t.Errorf("extract shows %d attempt groups, want 3 (before, 1, 2)", n)
	}
	p.lacks(t, `id="children"`)

	// The mapped parent: counts, 100 children a page, a state filter.
	p = u.mustGet(base + "transform")
	p.contains(t, `id="children"`, "All 250", `data-state="Failed"`, "5</a>", `data-state="Running"`, "10</a>", "Page 1 of 3",
		"mapped: 250 children", `<a class="mono" href="`+base+`transform%5B0%5D">transform[0]</a>`,
		`<a class="mono" href="`+base+`extract">extract</a>`, `<a class="mono" href="`+base+`load">load</a>`,
		`href="`+base+`transform?page=2#children" id="next-page"`)
	p.lacks(t, `id="prev-page"`, "transform[100]")
	if n := taskrunRows(p); n != 100 {
		t.Errorf("page 1 lists %d children, want 100", n)
	}
	p = u.mustGet(base + "transform?page=3")
	if n := taskrunRows(p); n != 50 {
		t.Errorf("page 3 lists %d children, want 50", n)
	}
	p.contains(t, "transform[249]", `href="`+base+`transform?page=2#children" id="prev-page"`)
	p.lacks(t, `id="next-page"`)
	p = u.mustGet(base + "transform?state=Failed")
	if n := taskrunRows(p); n != 5 {
		t.Errorf("the Failed filter lists %d children, want 5", n)
	}
	p.contains(t, "transform[7]", "row 57: bad date", "Page 1 of 1 · 5 Failed")
	p.lacks(t, "transform[8]<")
	if p := u.mustGet(base + "transform?state=Failed&page=2"); taskrunRows(p) != 0 || !strings.Contains(p.body, "No child is Failed on page 2") {
		t.Errorf("page 2 of 5 failed children: %d rows", taskrunRows(p))
	}
	for _, bad := range []string{"transform?state=Broken", "transform?page=0", "transform?page=x"} {
		if p := u.get(base + bad); p.status != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", bad, p.status)
		}
	}

	// A child: its parent, its siblings, its error.
	p = u.mustGet(base + url.PathEscape("transform[7]"))
	p.contains(t, `<h1 class="task-key">transform[7]</h1>`, `data-state="Failed"`, "row 7: bad date",
		`7 of <a href="`+base+`transform" class="mono" id="parent">transform</a>`,
		`href="`+base+`transform%5B6%5D" id="prev-child"`, `href="`+base+`transform%5B8%5D" id="next-child"`,
		`(mapped over each element)`)
	p = u.mustGet(base + url.PathEscape("transform[3]"))
	p.contains(t, "<h3>Attempt 1", "<h3>Attempt 2 <span class=\"muted\">(attempt 1 of its runner: the run was restarted)</span>", "row 3: timeout")
	u.mustGet(base+"load").contains(t, "<h3>Finished without running</h3>", `data-state="Cached"`)
	// The same page when the brackets come unescaped.
	u.mustGet(base+"transform[7]").contains(t, `<h1 class="task-key">transform[7]</h1>`)

	// A task of the spec that has not started.
	p = u.mustGet(base + "report")
	p.contains(t, "not started", "This task has not started in this run yet.", `<a class="mono" href="`+base+`load">load</a>`, `<dd id="downstream">none</dd>`)

	// A task the run does not have, and a run that does not exist.
	p = u.get(base + "nope")
	if p.status != http.StatusNotFound {
		t.Errorf("GET a missing task = %d, want 404", p.status)
	}
	p.contains(t, "<title>Task not found", `has no task run &#34;nope&#34;`)
	// Keys that only start like a task of the spec are not it.
	for _, key := range []string{"report[x]", "report[", "report[-1]", "report[99999999999999999999]", "report[0]"} {
		if p := u.get(base + url.PathEscape(key)); p.status != http.StatusNotFound {
			t.Errorf("GET the task %q = %d, want 404", key, p.status)
		}
	}
	if p := u.get("/ui/runs/no-such-run/tasks/extract"); p.status != http.StatusNotFound {
		t.Errorf("GET a task of a missing run = %d, want 404", p.status)
	}
}

// TestRunActions: retry from failed and run again, with their buttons
// shown only to roles that may write and only when they apply; a forged
// form is refused with the API's message.
func TestRunActions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fl := e.taskrunFlow("etl", `"labels":["gpu"]`)
	failed := e.run("etl", `{"day":"2026-11-26","count":7}`)
	e.setState(failed.ID, state.Running, "")
	e.setState(failed.ID, state.Failed, "load failed")
	running := e.run("etl", "")
	e.setState(running.ID, state.Running, "")
	done := e.run("etl", "")
	e.setState(done.ID, state.Running, "")
	e.setState(done.ID, state.Success, "")

	dev := e.user()
	dev.signIn(e.token("developer"))
	p := dev.mustGet("/ui/runs/" + failed.ID)
	p.contains(t, `action="/ui/runs/`+failed.ID+`/retry"`, `id="retry">Retry from failed</button>`, `id="rerun">Run again</button>`,
		`href="/ui/flows/`+fl.ID+`?from=`+failed.ID+`#run" id="rerun-edit"`)
	csrf := p.csrf(t)
	p = dev.mustGet("/ui/runs/" + running.ID)
	p.contains(t, `id="cancel"`, `id="rerun"`)
	p.lacks(t, `id="retry"`)
	dev.mustGet("/ui/runs/"+done.ID).lacks(t, `id="retry"`, `id="cancel"`)

	// Refusals: a running run, a successful one, no CSRF token.
	cases := []struct {
		name, id string
		form     url.Values
		status   int
		want     []string
	}{
		{"running", running.ID, url.Values{"csrf": {csrf}}, http.StatusConflict, []string{"The run was not retried", "is Running, not finished"}},
		{"succeeded", done.ID, url.Values{"csrf": {csrf}}, http.StatusConflict, []string{"The run was not retried", "succeeded (Success): there is nothing to restart"}},
		{"no csrf", failed.ID, url.Values{}, http.StatusForbidden, []string{"CSRF check"}},
	}
	for _, c := range cases {
		p := dev.post("/ui/runs/"+c.id+"/retry", c.form)
		if p.status != c.status {
			t.Errorf("%s: retry = %d, want %d:\n%s", c.name, p.status, c.status, p.body)
		}
		p.contains(t, c.want...)
	}
	if k := e.state(running.ID); k != state.Running {
		t.Errorf("the running run is %s after a refused retry", k)
	}

	// An agent token sees no action and a forged form gets the API's 403.
	ag := e.user()
	ag.signIn(e.token("agent"))
	p = ag.mustGet("/ui/runs/" + failed.ID)
	p.lacks(t, `id="retry"`, `id="rerun"`, `id="rerun-edit"`)
	acsrf := p.csrf(t)
	for _, action := range []string{"retry", "rerun"} {
		p := ag.post("/ui/runs/"+failed.ID+"/"+action, url.Values{"csrf": {acsrf}})
		if p.status != http.StatusForbidden {
			t.Errorf("an agent's %s = %d, want 403", action, p.status)
		}
		p.contains(t, "You may not", "may not POST /api/v1/flow_runs")
	}
	if k := e.state(failed.ID); k != state.Failed {
		t.Errorf("the failed run is %s after an agent's forged retry", k)
	}

	// Retry from failed: the run is scheduled again, same ID.
	p = dev.post("/ui/runs/"+failed.ID+"/retry", url.Values{"csrf": {csrf}})
	if p.status != http.StatusSeeOther || p.location() != "/ui/runs/"+failed.ID {
		t.Fatalf("retry = %d to %q, want 303 to the run:\n%s", p.status, p.location(), p.body)
	}
	p = dev.mustGet(p.location())
	p.contains(t, `data-state="Scheduled"`, "failed and unfinished task runs run again", `id="cancel"`)
	p.lacks(t, `id="retry"`)
}

// TestRunAgain: "Run again" creates a run of the same flow version with
// the same parameters and labels; "Edit parameters and run" fills the
// flow's run form from the run, and the run it creates has the edited
// value, of the run's version even when the flow has a newer one.
func TestRunAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	fl := e.taskrunFlow("etl", `"labels":["gpu"]`)
	old := e.run("etl", `{"day":"2026-11-26","count":7}`)
	e.setState(old.ID, state.Running, "")
	e.setState(old.ID, state.Failed, "")
	e.taskrunFlow("etl", `"labels":["gpu"],"description":"version 2"`) // a newer version
	dev := e.user()
	dev.signIn(e.token("developer"))
	csrf := dev.mustGet("/ui/runs/" + old.ID).csrf(t)

	check := func(what, id string, params map[string]any) {
		t.Helper()
		rd, err := e.api.FlowRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		nr := rd.FlowRun
		if nr.ID == old.ID || nr.FlowVersionID != old.FlowVersionID || strings.Join(nr.Labels, ",") != "gpu" {
			t.Errorf("%s: run %s of version %s labels %v, want a new run of version %s labels [gpu]", what, nr.ID, nr.FlowVersionID, nr.Labels, old.FlowVersionID)
		}
		var got map[string]any
		if err := json.Unmarshal(nr.Params, &got); err != nil {
			t.Fatal(err)
		}
		for k, want := range params {
			if got[k] != want {
				t.Errorf("%s: parameter %s = %v, want %v (all: %s)", what, k, got[k], want, nr.Params)
			}
		}
	}

	// The same parameters.
	p := dev.post("/ui/runs/"+old.ID+"/rerun", url.Values{"csrf": {csrf}})
	id, ok := strings.CutPrefix(p.location(), "/ui/runs/")
	if p.status != http.StatusSeeOther || !ok {
		t.Fatalf("run again = %d to %q, want 303 to the new run:\n%s", p.status, p.location(), p.body)
	}
	check("run again", id, map[string]any{"day": "2026-11-26", "count": 7.0})

	// Edited parameters: the form is filled from the run.
	p = dev.mustGet("/ui/flows/" + fl.ID + "?from=" + old.ID)
	p.contains(t, `<h2 id="run">`, `name="from" value="`+old.ID+`"`, `name="p.day" value="2026-11-26"`, `name="p.count" value="7"`,
		"The form holds the parameters of run "+old.ID+" (version 1)", "Run version 1")
	p = dev.post("/ui/flows/"+fl.ID+"/run", url.Values{"csrf": {csrf}, "from": {old.ID}, "p.day": {"2026-11-26"}, "p.count": {"9"}})
	id, ok = strings.CutPrefix(p.location(), "/ui/runs/")
	if p.status != http.StatusSeeOther || !ok {
		t.Fatalf("run with edited parameters = %d to %q:\n%s", p.status, p.location(), p.body)
	}
	check("edited", id, map[string]any{"day": "2026-11-26", "count": 9.0})

	// Without from, the form runs the newest version, empty.
	p = dev.mustGet("/ui/flows/" + fl.ID)
	p.contains(t, "Run version 2", `name="p.count" value=""`)
	p.lacks(t, `name="from"`)

	// A run of another flow cannot fill the form; nor can a missing run.
	e.taskrunFlow("other", "")
	other := e.run("other", "")
	if p := dev.get("/ui/flows/" + fl.ID + "?from=" + other.ID); p.status != http.StatusBadRequest {
		t.Errorf("from a run of another flow = %d, want 400", p.status)
	}
	if p := dev.get("/ui/flows/" + fl.ID + "?from=nope"); p.status != http.StatusNotFound {
		t.Errorf("from a missing run = %d, want 404", p.status)
	}
}

// taskrunFanOut gives a run of the taskrunSpec flow a transform mapped
// over n children, every 100th Failed, in batches of 1,000 writes.
func taskrunFanOut(e *env, runID string, n int) {
	e.t.Helper()
	w := e.taskrunWriter(runID)
	w.write(trs("extract", state.Success, 1, ""), trs("transform", state.Running, 0, ""))
	for from := 0; from < n; from += 1000 {
		var batch []taskrunState
		for i := from; i < min(from+1000, n); i++ {
			kind, msg := state.Success, ""
			if i%100 == 99 {
				kind, msg = state.Failed, fmt.Sprintf("row %d is bad", i)
			}
			batch = append(batch, trs(fmt.Sprintf("transform[%d]", i), kind, 1, msg))
		}
		w.write(batch...)
	}
}

// BenchmarkTaskRunPage: the server's time to answer the page of a mapped
// task with 5,000 children (counts over all, one page of 100 rows),
// without and with a state filter, over loopback HTTP.
func BenchmarkTaskRunPage(b *testing.B) {
	e := newEnv(b)
	e.taskrunFlow("etl", "")
	run := e.run("etl", "")
	taskrunFanOut(e, run.ID, 5000)
	u := e.user()
	u.signIn(e.admin)
	for _, c := range []struct{ name, path string }{
		{"children-5000", "transform"},
		{"children-5000-failed", "transform?state=Failed"},
		{"child", url.PathEscape("transform[4999]")},
	} {
		b.Run(c.name, func(b *testing.B) {
			path := "/ui/runs/" + run.ID + "/tasks/" + c.path
			for b.Loop() {
				if p := u.get(path); p.status != http.StatusOK {
					b.Fatalf("GET %s = %d", path, p.status)
				}
			}
		})
	}
}

// BenchmarkFlowHistory: the server's time to answer a flow's page, whose
// history grid reads the task runs of its newest 20 runs, each with a
// 500-way map (10,000 task runs in all).
func BenchmarkFlowHistory(b *testing.B) {
	e := newEnv(b)
	fl := e.taskrunFlow("etl", "")
	for range 20 {
		taskrunFanOut(e, e.run("etl", "").ID, 500)
	}
	u := e.user()
	u.signIn(e.admin)
	for b.Loop() {
		if p := u.get("/ui/flows/" + fl.ID); p.status != http.StatusOK || strings.Count(p.body, `<tr data-run=`) < 20 {
			b.Fatalf("GET the flow page = %d", p.status)
		}
	}
}
