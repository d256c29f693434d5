package ui_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/reevehq/reeve/internal/state"

	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/testenv"
)

const typedParams = `"parameters":[` +
	`{"name":"day","type":"string","go_type":"string","required":true},` +
	`{"name":"count","type":"integer","go_type":"int","default":3},` +
	`{"name":"dry","type":"boolean","go_type":"bool","default":false},` +
	`{"name":"tags","type":"array","go_type":"[]string","default":[]}]`

// TestFlowPages: the flows list links to each flow's page, which shows
// its versions, recent runs and a run form built from the newest
// version's typed parameters; the form creates a run with typed values
// and goes to its page; a bad value shows the API's message on the form,
// which keeps what the user typed.
func TestFlowPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	fl := e.flow("etl", typedParams)
	old := e.run("etl", `{"day":"2026-01-01"}`)
	u := e.user()
	u.signIn(e.token("developer"))

	u.mustGet("/ui/flows").contains(t, `<a href="/ui/flows/`+fl.ID+`">etl</a>`)
	p := u.mustGet("/ui/flows/" + fl.ID)
	det, err := e.api.Flow(ctx, fl.ID)
	if err != nil {
		t.Fatal(err)
	}
	p.contains(t,
		`<tr data-version="1">`, det.Versions[0].SpecHash, "local: <code>/usr/local/bin/flows</code>",
		`data-run="`+old.ID+`"`, `href="/ui/runs?flow=etl&amp;project=default" id="all-runs"`,
		`action="/ui/flows/`+fl.ID+`/run"`, `name="p.day"`, `name="p.count"`, `<select id="p-dry" name="p.dry">`, `<textarea id="p-tags" name="p.tags"`,
		"(string, Go string, required)", "(integer, Go int, default <code>3</code>)", "No schedules.",
		// The newest version's graph, with no run states.
		`<section id="flow-graph"`, `id="n-a"`, `id="n-b"`)
	csrf := p.csrf(t)

	// Without the CSRF token no run is created.
	if p := u.post("/ui/flows/"+fl.ID+"/run", url.Values{"p.day": {"2026-11-26"}}); p.status != http.StatusForbidden {
		t.Errorf("run without a CSRF token = %d, want 403", p.status)
	}

	// A run with typed values.
	p = u.post("/ui/flows/"+fl.ID+"/run", url.Values{"csrf": {csrf}, "p.day": {"2026-11-26"}, "p.count": {"7"}, "p.dry": {"true"}, "p.tags": {`["a","b"]`}, "name": {"by hand"}})
	id, ok := strings.CutPrefix(p.location(), "/ui/runs/")
	if p.status != http.StatusSeeOther || !ok || id == "" {
		t.Fatalf("run = %d to %q, want 303 to the new run's page:\n%s", p.status, p.location(), p.body)
	}
	rd, err := e.api.FlowRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(rd.FlowRun.Params, &got); err != nil {
		t.Fatal(err)
	}
	if got["day"] != "2026-11-26" || got["count"] != 7.0 || got["dry"] != true || len(got["tags"].([]any)) != 2 || rd.FlowRun.Name != "by hand" {
		t.Errorf("the run's parameters are %s (name %q), want day, count 7, dry true, tags [a b]", rd.FlowRun.Params, rd.FlowRun.Name)
	}
	u.mustGet(p.location()).contains(t, "<code>count=7</code>")

	// Empty fields take the defaults.
	p = u.post("/ui/flows/"+fl.ID+"/run", url.Values{"csrf": {csrf}, "p.day": {"2026-11-27"}, "p.count": {""}, "p.dry": {""}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("run with defaults = %d:\n%s", p.status, p.body)
	}
	rd, _ = e.api.FlowRun(ctx, strings.TrimPrefix(p.location(), "/ui/runs/"))
	if s := string(rd.FlowRun.Params); !strings.Contains(s, `"count":3`) || !strings.Contains(s, `"dry":false`) {
		t.Errorf("a run with empty fields has parameters %s, want the defaults", s)
	}

	// A bad value: the API's message, and the form keeps what was typed.
	before, _ := e.api.FlowRuns(ctx, clientFilterFlow(fl.ID))
	p = u.post("/ui/flows/"+fl.ID+"/run", url.Values{"csrf": {csrf}, "p.day": {"2026-11-28"}, "p.count": {"seven"}, "p.tags": {`["x"]`}})
	if p.status != http.StatusBadRequest {
		t.Fatalf("run with a bad value = %d, want 400:\n%s", p.status, p.body)
	}
	p.contains(t, `role="alert"`, "The run was not created", `parameter &#34;count&#34; must be of type integer`,
		`name="p.count" value="seven"`, `name="p.day" value="2026-11-28"`, `>[&#34;x&#34;]</textarea>`)
	// A required parameter left out.
	p = u.post("/ui/flows/"+fl.ID+"/run", url.Values{"csrf": {csrf}, "p.count": {"4"}})
	if p.status != http.StatusBadRequest {
		t.Errorf("run without a required value = %d, want 400", p.status)
	}
	p.contains(t, `parameter &#34;day&#34; (string) is required`, `name="p.count" value="4"`)
	after, _ := e.api.FlowRuns(ctx, clientFilterFlow(fl.ID))
	if len(after.FlowRuns) != len(before.FlowRuns) {
		t.Errorf("refused run forms created runs: %d before, %d after", len(before.FlowRuns), len(after.FlowRuns))
	}

	// An agent token sees the flow but no Run form, and a forged one gets
	// the API's 403.
	ag := e.user()
	ag.signIn(e.token("agent"))
	ap := ag.mustGet("/ui/flows/" + fl.ID)
	ap.contains(t, `id="run-not-allowed"`)
	ap.lacks(t, `id="run-form"`)
	p = ag.post("/ui/flows/"+fl.ID+"/run", url.Values{"csrf": {ap.csrf(t)}, "p.day": {"2026-11-26"}})
	if p.status != http.StatusForbidden {
		t.Errorf("an agent's run = %d, want 403", p.status)
	}
	p.contains(t, "may not POST /api/v1/flow_runs")

	// A flow that does not exist.
	if p := u.get("/ui/flows/nope"); p.status != http.StatusNotFound {
		t.Errorf("GET /ui/flows/nope = %d, want 404", p.status)
	}
}

func clientFilterFlow(id string) client.FlowRunFilter { return client.FlowRunFilter{FlowID: id} }

// TestBrowserRunForm: in a browser, a user opens a flow from the flows
// list, fills its run form and lands on the new run's page, which shows
// the typed parameters.
func TestBrowserRunForm(t *testing.T) {
	e := newEnv(t)
	// The browser after the server: its cleanup runs first, so no page
	// still holds a stream when the server closes.
	ctx := testenv.Chrome(t)
	fl := e.flow("etl", typedParams)
	b := &browser{t: t, ctx: ctx}
	b.do("open the sign-in page", chromedp.Navigate(e.url+"/ui/login?next=/ui/flows"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), e.admin), chromedp.Click(chromedp.CSS("#sign-in")))
	b.at("the flows list", func(s string) bool { return s == "/ui/flows" })
	b.do("open the flow", chromedp.WaitVisible(chromedp.CSS("#flows")), chromedp.Click(chromedp.CSS(`#flows a[href="/ui/flows/`+fl.ID+`"]`)))
	b.at("the flow page", func(s string) bool { return s == "/ui/flows/"+fl.ID })
	b.do("fill the run form", chromedp.WaitVisible(chromedp.CSS("#run-form")),
		chromedp.SendKeys(chromedp.CSS("#p-day"), "2026-11-26"),
		chromedp.SendKeys(chromedp.CSS("#p-count"), "12"),
		chromedp.SetValue(chromedp.CSS("#p-dry"), "true"),
		chromedp.Click(chromedp.CSS("#run-submit")))
	path := b.at("the new run's page", func(s string) bool { return strings.HasPrefix(s, "/ui/runs/") })
	id := strings.TrimPrefix(path, "/ui/runs/")
	b.do("see the run", chromedp.WaitVisible(chromedp.CSS("#run-state")))
	facts := b.text(".facts")
	for _, want := range []string{`count=12`, `day="2026-11-26"`, `dry=true`} {
		if !strings.Contains(facts, want) {
			t.Errorf("the new run's page shows %q, want %s", facts, want)
		}
	}
	rd, err := e.api.FlowRun(context.Background(), id)
	if err != nil {
		t.Fatalf("the page's run %q: %v", id, err)
	}
	if rd.FlowRun.FlowID != fl.ID {
		t.Errorf("the new run is of flow %s, want %s", rd.FlowRun.FlowID, fl.ID)
	}
}

// TestFlowHistory: a flow's page has a grid of its newest 20 runs by the
// newest version's tasks, each cell the task run's state (icon, class and
// a title naming it) linking to the task run's page, a mapped task's cell
// its children's worst state with how many are in it.
func TestFlowHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fl := e.taskrunFlow("etl", "")
	var runs []string
	for range 22 {
		runs = append(runs, e.run("etl", "").ID)
	}
	newest := runs[len(runs)-1]
	w := e.taskrunWriter(newest)
	w.write(trs("extract", state.Success, 1, ""), trs("transform", state.Running, 0, ""),
		trs("transform[0]", state.Success, 1, ""), trs("transform[1]", state.Failed, 1, "bad row"),
		trs("transform[2]", state.Failed, 1, "bad row"), trs("transform[3]", state.Running, 1, ""))
	e.taskrunWriter(runs[len(runs)-2]).write(trs("extract", state.Failed, 3, "the source is down"))

	u := e.user()
	u.signIn(e.token("agent"))
	p := u.mustGet("/ui/flows/" + fl.ID)
	grid := p.body[strings.Index(p.body, `id="history"`):]
	grid = grid[:strings.Index(grid, "</table>")]
	if n := strings.Count(grid, "<tr data-run="); n != 20 {
		t.Errorf("the history grid has %d rows, want the newest 20", n)
	}
	if strings.Contains(grid, runs[0]) || strings.Contains(grid, runs[1]) || !strings.Contains(grid, runs[2]) {
		t.Error("the history grid does not hold exactly the newest 20 runs")
	}
	for _, col := range []string{"extract", "transform", "load", "report"} {
		if !strings.Contains(grid, `class="task-col">`+col+`</th>`) {
			t.Errorf("the history grid has no column %s", col)
		}
	}
	base := "/ui/runs/" + newest + "/tasks/"
	page{body: grid}.contains(t,
		`<a href="`+base+`extract" class="state state-ok" data-state="Success" title="extract: Success"`,
		`<a href="`+base+`transform" class="state state-bad" data-state="Failed" title="transform: Failed (1 Running, 1 Success, 2 Failed)"`,
		`<span class="count">2/4</span>`,
		`title="load: not run"`,
		`href="/ui/runs/`+runs[len(runs)-2]+`/tasks/extract" class="state state-bad" data-state="Failed" title="extract: Failed: the source is down"`)
	// A cell opens its task run.
	u.mustGet(base+"transform").contains(t, "All 4")
}

// TestFlowHistoryBudget: the grid stops reading task runs once the
// newer runs held 20,000 of them: older runs show their state but no
// cells, and the page says why.
func TestFlowHistoryBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	fl := e.taskrunFlow("etl", "")
	oldest := e.run("etl", "")
	e.taskrunWriter(oldest.ID).write(trs("extract", state.Failed, 1, "old"))
	for range 2 {
		taskrunFanOut(e, e.run("etl", "").ID, 10_000)
	}
	u := e.user()
	u.signIn(e.admin)
	p := u.mustGet("/ui/flows/" + fl.ID)
	p.contains(t, `<tr data-run="`+oldest.ID+`">`, `colspan="4">not read</td>`, "The task runs of the 1 oldest runs were not read")
	if n := strings.Count(p.body, `<span class="count">100/10000</span>`); n != 2 {
		t.Errorf("the grid shows %d maps of 10,000 with 100 Failed, want 2", n)
	}
}
