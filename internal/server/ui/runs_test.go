package ui_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/server/ui"
	"github.com/reevehq/reeve/internal/state"
)

// runsListNewest creates n runs of flow and returns their IDs, newest first.
func runsListNewest(e *env, flow string, n int) []string {
	var ids []string
	for range n {
		ids = slices.Insert(ids, 0, e.run(flow, "").ID)
	}
	return ids
}

// runsListCheck gets a runs-list query and checks its rows.
func runsListCheck(t *testing.T, u *user, query string, want ...string) page {
	t.Helper()
	p := u.mustGet("/ui/runs?" + query)
	if got := p.rows(); !slices.Equal(got, want) {
		t.Errorf("runs?%s = %v, want %v", query, got, want)
	}
	return p
}

// TestRunsListTimeFilters: created after/before in the user's zone, the
// quick ranges, and what is refused.
func TestRunsListTimeFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	ids := runsListNewest(e, "etl", 3)
	u := e.user()
	csrf := u.signIn(e.admin).csrf(t)
	if p := u.post("/ui/preferences", url.Values{"csrf": {csrf}, "theme": {"system"}, "tz": {"Asia/Tokyo"}, "clock": {"24"}}); p.status != http.StatusSeeOther {
		t.Fatalf("save preferences = %d", p.status)
	}
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	// A datetime-local is read in the user's zone: a minute ago in Tokyo
	// keeps the runs (read as UTC it would be 9 hours ahead, and keep none).
	minuteAgo := time.Now().Add(-time.Minute).In(tokyo).Format("2006-01-02T15:04")
	inAnHour := time.Now().Add(time.Hour).In(tokyo).Format("2006-01-02T15:04")
	p := runsListCheck(t, u, "after="+minuteAgo, ids...)
	p.contains(t, `value="`+minuteAgo+`"`, "(Asia/Tokyo)")
	runsListCheck(t, u, "after="+inAnHour)
	runsListCheck(t, u, "before="+minuteAgo)
	runsListCheck(t, u, "after="+minuteAgo+"&before="+inAnHour, ids...)
	runsListCheck(t, u, "after="+url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)), ids...)
	p = runsListCheck(t, u, "range=1h", ids...)
	p.contains(t, `<option value="1h" selected>`, `<a href="/ui/runs?range=24h" title="created in the last 24 hours">24h</a>`)
	runsListCheck(t, u, "range=24h&before="+minuteAgo)

	for _, tc := range []struct{ query, says string }{
		{"range=2h", "is not one of 1h, 24h, 7d, 30d"},
		{"after=yesterday", "is not a time"},
		{"after=" + inAnHour + "&before=" + minuteAgo, "the time range is empty"},
		{"param=day", "is not name=value"},
		{"param=day=1&param=day=2", "is filtered twice"},
		{"q=" + strings.Repeat("x", 201), "keep it under 200"},
	} {
		p := u.get("/ui/runs?" + tc.query)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, tc.says) {
			t.Errorf("runs?%s = %d, want 400 saying %q:\n%s", tc.query, p.status, tc.says, p.body)
		}
	}
}

// TestRunsListRows: the columns, and the durations of running runs carry
// what the browser needs to make them tick.
func TestRunsListRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	running, done, waiting := e.run("etl", "").ID, e.run("etl", "").ID, e.run("etl", "").ID
	e.setState(running, state.Running, "")
	e.setState(done, state.Running, "")
	e.setState(done, state.Success, "")
	u := e.user()
	p := u.signIn(e.admin)
	p.contains(t, `<th scope="col">Start</th>`, `<th scope="col">Duration</th>`, `<th scope="col">Tasks</th>`, `src="/ui/static/runs.js"`,
		`id="new-runs"`, `data-poll="/ui/runs/new?limit=50"`)
	row := func(id string) string {
		t.Helper()
		m := regexp.MustCompile(`(?s)<tr data-run="` + id + `">.*?</tr>`).FindString(p.body)
		if m == "" {
			t.Fatalf("no row for %s", id)
		}
		return m
	}
	if r := row(running); !regexp.MustCompile(`class="c-dur" data-tick data-elapsed="\d+"`).MatchString(r) {
		t.Errorf("a running run's duration does not tick:\n%s", r)
	}
	for _, id := range []string{done, waiting} {
		if r := row(id); strings.Contains(r, "data-tick") {
			t.Errorf("run %s's duration ticks, but it is not running:\n%s", id, r)
		}
	}
	// The run page's duration ticks too, while its badge says it runs.
	u.mustGet("/ui/runs/"+running).contains(t, `data-tick-while="#run-state"`)
	u.mustGet("/ui/runs/"+done).lacks(t, "data-tick ")
	// Page 2 has no banner.
	p2 := u.mustGet("/ui/runs?limit=1&cursor=" + url.QueryEscape(runsListCursor(t, u.mustGet("/ui/runs?limit=1"))) + "&prev=")
	p2.lacks(t, `id="new-runs"`)
}

// runsListCursor is the cursor of a page's Next link.
func runsListCursor(t *testing.T, p page) string {
	t.Helper()
	m := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no Next link:\n%s", p.body)
	}
	q, err := url.ParseQuery(strings.TrimPrefix(html.UnescapeString(m[1]), "/ui/runs?"))
	if err != nil {
		t.Fatal(err)
	}
	return q.Get("cursor")
}

// runsListPoll is GET /ui/runs/new's answer.
type runsListPoll struct {
	New  int `json:"new"`
	Rows []struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Duration string `json:"duration"`
		Elapsed  *int64 `json:"elapsed"`
	} `json:"rows"`
}

func runsListPollGet(t *testing.T, u *user, query string) runsListPoll {
	t.Helper()
	p := u.get("/ui/runs/new?" + query)
	if p.status != http.StatusOK {
		t.Fatalf("GET /ui/runs/new?%s = %d:\n%s", query, p.status, p.body)
	}
	var out runsListPoll
	if err := json.Unmarshal([]byte(p.body), &out); err != nil {
		t.Fatalf("GET /ui/runs/new?%s: %v:\n%s", query, err, p.body)
	}
	return out
}

// TestRunsNew: the banner's poll counts the runs of the filter created
// since the page was read, and gives the page's rows' states.
func TestRunsNew(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	e.flow("report", "")
	old := e.run("etl", "").ID
	u := e.user()
	u.signIn(e.admin)
	since := url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano))
	if got := runsListPollGet(t, u, "flow=etl&since="+since); got.New != 0 || len(got.Rows) != 1 || got.Rows[0].ID != old || got.Rows[0].State != "Scheduled" {
		t.Errorf("before any new run: %+v", got)
	}
	e.run("etl", "")
	e.run("etl", "")
	e.run("report", "")
	e.setState(old, state.Running, "")
	got := runsListPollGet(t, u, "flow=etl&since="+since)
	if got.New != 2 {
		t.Errorf("new etl runs = %d, want 2", got.New)
	}
	if i := slices.IndexFunc(got.Rows, func(r struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Duration string `json:"duration"`
		Elapsed  *int64 `json:"elapsed"`
	}) bool {
		return r.ID == old
	}); i < 0 || got.Rows[i].State != "Running" || got.Rows[i].Elapsed == nil {
		t.Errorf("the old run's row = %+v, want Running and ticking", got.Rows)
	}
	if got := runsListPollGet(t, u, "since="+since); got.New != 3 {
		t.Errorf("new runs of any flow = %d, want 3", got.New)
	}
	if got := runsListPollGet(t, u, "state=Failed&since="+since); got.New != 0 || len(got.Rows) != 0 {
		t.Errorf("new failed runs = %+v, want none", got)
	}
	if p := u.get("/ui/runs/new?since=yesterday"); p.status != http.StatusBadRequest {
		t.Errorf("a bad since = %d, want 400", p.status)
	}
	if p := u.get("/ui/runs/new?flow=nope&since=" + since); p.status != http.StatusNotFound {
		t.Errorf("an unknown flow = %d, want 404", p.status)
	}
	if p := e.user().get("/ui/runs/new?since=" + since); p.status != http.StatusUnauthorized {
		t.Errorf("signed out = %d, want 401", p.status)
	}
}

// bulkPost posts a bulk form.
func bulkPost(u *user, csrf, action, filter string, extra ...string) page {
	form := url.Values{"csrf": {csrf}, "action": {action}, "filter": {filter}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return u.post("/ui/runs/bulk", form)
}

// bulkField is a hidden field's value in a confirmation page.
func bulkField(t *testing.T, p page, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no %s field in the page:\n%s", name, p.body)
	}
	return html.UnescapeString(m[1])
}

// bulkConfirm posts a confirmation page's form back.
func bulkConfirm(t *testing.T, u *user, p page) page {
	t.Helper()
	return bulkPost(u, p.csrf(t), bulkField(t, p, "action"), bulkField(t, p, "filter"),
		"asof", bulkField(t, p, "asof"), "count", bulkField(t, p, "count"), "confirm", "1")
}

// TestBulkCancelAndRetry: the confirmation names the count and the
// states acted on, runs created after the question are not part of the
// action, a changed count is refused and asked again, bulk retry restarts
// failed runs and never cancelled ones, and the summary says what was
// done and what was skipped and why.
func TestBulkCancelAndRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	e.flow("report", "")
	etl := runsListNewest(e, "etl", 7)
	report := e.run("report", "").ID
	e.setState(etl[0], state.Running, "")
	e.setState(etl[0], state.Success, "")
	e.setState(etl[1], state.Running, "")
	e.setState(etl[1], state.Failed, "boom")
	e.setState(etl[2], state.Running, "")
	e.setState(etl[6], state.Running, "")
	e.setState(etl[6], state.TimedOut, "too slow")
	u := e.user()
	list := u.signIn(e.admin)
	list = u.mustGet("/ui/runs?flow=etl&limit=2")
	list.contains(t, `id="bulk"`, `name="filter" value="flow=etl&amp;limit=2"`, `id="bulk-cancel"`, `id="bulk-retry"`)
	csrf := list.csrf(t)

	// The confirmation: 4 runs can be cancelled (one Running, three
	// Scheduled), over every page; the finished ones are named as skipped.
	ask := bulkPost(u, csrf, "cancel", "flow=etl")
	if ask.status != http.StatusOK {
		t.Fatalf("bulk cancel = %d:\n%s", ask.status, ask.body)
	}
	ask.contains(t, `Cancel <strong id="bulk-count">4</strong> runs matching flow=etl?`, `name="count" value="4"`,
		"1: already finished (Success)", "1: already finished (Failed)", "1: already finished (TimedOut)",
		"Cancels the runs in state Pending, Scheduled, Submitted, Running, Retrying or Cancelling only.",
		`<p id="bulk-pinned">Only runs created before <time datetime="`)
	for _, id := range etl {
		if k := e.state(id); k == state.Cancelled || k == state.Cancelling {
			t.Fatalf("asking cancelled run %s", id)
		}
	}

	// A count that is not the one counted now is refused, and asked again.
	forged := bulkPost(u, csrf, "cancel", "flow=etl", "asof", bulkField(t, ask, "asof"), "count", "3", "confirm", "1")
	if forged.status != http.StatusConflict {
		t.Fatalf("a confirmation with a wrong count = %d, want 409:\n%s", forged.status, forged.body)
	}
	forged.contains(t, "Nothing was done: 3 runs matched when you confirmed, and 4 match now", `name="count" value="4"`)

	// A run created since the question (as a schedule would) is not part
	// of it: the confirmation goes through and leaves the new run alone.
	late := e.run("etl", "").ID
	done := bulkConfirm(t, u, ask)
	if done.status != http.StatusOK {
		t.Fatalf("the confirmed bulk cancel after a new run = %d, want 200:\n%s", done.status, done.body)
	}
	done.contains(t, `<strong id="bulk-done">4</strong> runs cancelled`, `<strong id="bulk-skipped">3</strong> skipped`, "already finished (Success)")
	want := map[string]state.Kind{etl[0]: state.Success, etl[1]: state.Failed, etl[2]: state.Cancelling, etl[3]: state.Cancelled,
		etl[4]: state.Cancelled, etl[5]: state.Cancelled, etl[6]: state.TimedOut, late: state.Scheduled, report: state.Scheduled}
	for id, k := range want {
		if got := e.state(id); got != k {
			t.Errorf("after the bulk cancel run %s is %s, want %s", id, got, k)
		}
	}

	// Retry: the failed runs (Failed, TimedOut) are scheduled again; the
	// runs just cancelled are not, nor the successful and unfinished ones,
	// each saying why.
	retry := bulkPost(u, csrf, "retry", "flow=etl")
	retry.contains(t, `Retry <strong id="bulk-count">2</strong> runs matching flow=etl?`,
		"Retries the runs in state Failed, TimedOut or TriggerFailed only",
		"3: cancelled (retry a cancelled run from its page)", "1: succeeded (Success)",
		"1: not finished (Scheduled)", "1: not finished (Cancelling)")
	// A counted run that changes (late fails) changes the count: asked
	// again. A run created and failed since the question is not counted.
	e.setState(late, state.Running, "")
	e.setState(late, state.Failed, "late")
	later := e.run("etl", "").ID
	e.setState(later, state.Running, "")
	e.setState(later, state.Failed, "later")
	again := bulkConfirm(t, u, retry)
	if again.status != http.StatusConflict {
		t.Fatalf("a retry confirmation after a counted run failed = %d, want 409:\n%s", again.status, again.body)
	}
	again.contains(t, "Nothing was done: 2 runs matched when you confirmed, and 3 match now", `id="bulk-count">3<`)
	if k := e.state(etl[1]); k != state.Failed {
		t.Fatalf("a refused confirmation moved a run to %s", k)
	}
	res := bulkConfirm(t, u, again)
	if res.status != http.StatusOK {
		t.Fatalf("the confirmed bulk retry = %d:\n%s", res.status, res.body)
	}
	res.contains(t, `<strong id="bulk-done">3</strong> runs restarted`, `<strong id="bulk-skipped">5</strong> skipped`)
	want = map[string]state.Kind{etl[0]: state.Success, etl[1]: state.Scheduled, etl[2]: state.Cancelling, etl[3]: state.Cancelled,
		etl[4]: state.Cancelled, etl[5]: state.Cancelled, etl[6]: state.Scheduled, late: state.Scheduled, later: state.Failed}
	for id, k := range want {
		if got := e.state(id); got != k {
			t.Errorf("after the bulk retry run %s is %s, want %s", id, got, k)
		}
	}

	// Nothing to do, and mistakes.
	none := bulkPost(u, csrf, "retry", "flow=report")
	none.contains(t, `id="bulk-none"`, "Nothing to do")
	none.lacks(t, `id="bulk-confirm"`)
	for _, tc := range []struct {
		action, filter string
		status         int
	}{
		{"delete", "flow=etl", http.StatusBadRequest},
		{"cancel", "state=Exploded", http.StatusBadRequest},
		{"cancel", "flow=nope", http.StatusNotFound},
	} {
		if p := bulkPost(u, csrf, tc.action, tc.filter); p.status != tc.status {
			t.Errorf("bulk %s %s = %d, want %d:\n%s", tc.action, tc.filter, p.status, tc.status, p.body)
		}
	}
	if p := bulkPost(u, "", "cancel", "flow=etl"); p.status != http.StatusForbidden {
		t.Errorf("a bulk post without its CSRF token = %d, want 403", p.status)
	}
}

// TestBulkRoles: a role that may not cancel sees no bulk form, and its
// forged post does nothing.
func TestBulkRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	ids := runsListNewest(e, "etl", 3)
	agent := e.user()
	p := agent.signIn(e.token("agent"))
	p.lacks(t, `id="bulk"`, `id="bulk-cancel"`)
	forged := bulkPost(agent, p.csrf(t), "cancel", "flow=etl", "count", "3", "confirm", "1")
	if forged.status != http.StatusForbidden {
		t.Fatalf("an agent's bulk cancel = %d, want 403:\n%s", forged.status, forged.body)
	}
	forged.contains(t, "may not cancel runs")
	for _, id := range ids {
		if k := e.state(id); k != state.Scheduled {
			t.Errorf("an agent's refused bulk cancel left run %s %s", id, k)
		}
	}
	dev := e.user()
	p = dev.signIn(e.token("developer"))
	p.contains(t, `id="bulk-cancel"`)
	res := bulkConfirm(t, dev, bulkPost(dev, p.csrf(t), "cancel", ""))
	res.contains(t, `<strong id="bulk-done">3</strong> runs cancelled`)
}

// TestBulkBound: a bulk action over more runs than it may act on at once
// is refused with a message saying how to narrow it. (Not parallel: it
// lowers the bound for the test.)
func TestBulkBound(t *testing.T) {
	defer ui.SetMaxBulkRuns(3)()
	e := newEnv(t)
	e.flow("etl", "")
	runsListNewest(e, "etl", 4)
	u := e.user()
	p := bulkPost(u, u.signIn(e.admin).csrf(t), "cancel", "flow=etl")
	if p.status != http.StatusBadRequest {
		t.Fatalf("a bulk cancel of 4 runs over a bound of 3 = %d, want 400:\n%s", p.status, p.body)
	}
	p.contains(t, "4 runs match: a bulk action acts on at most 3 runs at once. Narrow the filter")
	p.lacks(t, `id="bulk-confirm"`)
}

// TestRunsListFilters: labels, parameter values and text narrow the
// list, the form shows them again, and each row counts its task runs by
// state.
func TestRunsListFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	params := `"parameters":[{"name":"day","type":"string","go_type":"string","default":"mon"},{"name":"limit","type":"integer","go_type":"int","default":1}]`
	e.flow("etl", params)
	spec := `{"spec_version":1,"name":"train","tasks":[{"id":"a","task":"a"}],` + params + `}`
	if _, err := e.api.RegisterFlow(ctx, api.RegisterFlow{Spec: json.RawMessage(spec), Labels: []string{"gpu", "prod"}, Storage: api.Storage{Kind: "local", Path: "/usr/local/bin/flows"}}); err != nil {
		t.Fatal(err)
	}
	create := func(flow, name, params string) string {
		t.Helper()
		out, err := e.api.CreateFlowRun(ctx, api.CreateFlowRun{Flow: flow, Name: name, Params: json.RawMessage(params)})
		if err != nil {
			t.Fatal(err)
		}
		return out.FlowRun.ID
	}
	mon := create("etl", "Monday load", `{"day":"mon"}`)
	tue := create("etl", "backfill", `{"day":"tue","limit":3}`)
	train := create("train", "", `{"day":"mon","limit":3}`)
	e.setState(tue, state.Running, "")
	e.setState(tue, state.Failed, "the upstream API is down")
	if _, err := e.api.WriteTaskRunStates(ctx, mon, []api.TaskRunWrite{
		{Key: "a", Task: "a", State: state.State{Kind: state.Success, Time: time.Now()}},
		{Key: "b", Task: "b", State: state.State{Kind: state.Success, Time: time.Now()}},
		{Key: "c", Task: "b", State: state.State{Kind: state.Failed, Time: time.Now()}},
	}); err != nil {
		t.Fatal(err)
	}
	u := e.user()
	all := u.signIn(e.admin)
	if got, want := all.rows(), []string{train, tue, mon}; !slices.Equal(got, want) {
		t.Fatalf("runs = %v, want %v", got, want)
	}
	// Task counts: icon and number, the state's name for screen readers.
	all.contains(t, `<span class="tc state-ok" title="2 Success"><span aria-hidden="true">✓</span>2<span class="sr"> Success</span></span>`,
		`<span class="tc state-bad" title="1 Failed">`)

	p := runsListCheck(t, u, "label=gpu", train)
	p.contains(t, `id="f-label" name="label" value="gpu"`)
	runsListCheck(t, u, "label=gpu,prod", train)
	runsListCheck(t, u, "label=gpu&label=arm")
	p = runsListCheck(t, u, "param=day=mon", train, mon)
	p.contains(t, `value="day=mon"`)
	runsListCheck(t, u, "param=limit=3&param=day=tue", tue)
	runsListCheck(t, u, "q=monday", mon)
	runsListCheck(t, u, "q=upstream+API", tue)
	runsListCheck(t, u, "q="+tue[len(tue)-12:], tue)
	runsListCheck(t, u, "q=zebra")
	runsListCheck(t, u, "flow=etl&param=day=mon&state=Scheduled", mon)

	// The bulk confirmation counts the same filter over every page.
	ask := bulkPost(u, all.csrf(t), "cancel", "param=day=mon")
	ask.contains(t, `Cancel <strong id="bulk-count">2</strong> runs matching param=day=mon?`)
	retry := bulkPost(u, all.csrf(t), "retry", "q=upstream")
	retry.contains(t, `Retry <strong id="bulk-count">1</strong> runs matching text &#34;upstream&#34;?`)
}
