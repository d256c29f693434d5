package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

// logsLine is a log line to seed: its task key ("" for the run's own).
type logsLine struct {
	task, level, msg, attrs string
}

// logsSeed creates a running run of flow with task runs for the tasks
// its lines name, and appends the lines in order.
func logsSeed(e *env, flow string, lines []logsLine) api.FlowRun {
	e.t.Helper()
	ctx := context.Background()
	run := e.run(flow, "")
	rn := e.runner(run.ID)
	rn.run(state.Running, "")
	for _, l := range lines {
		if l.task != "" && rn.ver[l.task] == 0 {
			rn.task(l.task, state.Running, "")
		}
	}
	det, err := e.api.FlowRun(ctx, run.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	ids := map[string]string{}
	for _, t := range det.TaskRuns {
		ids[t.Key] = t.ID
	}
	base := time.Date(2026, 11, 26, 14, 3, 5, 0, time.UTC)
	var ls []api.LogLine
	for i, l := range lines {
		ll := api.LogLine{TaskRunID: ids[l.task], Time: base.Add(time.Duration(i) * time.Millisecond), Level: l.level, Message: l.msg}
		if l.attrs != "" {
			ll.Attrs = json.RawMessage(l.attrs)
		}
		ls = append(ls, ll)
	}
	for len(ls) > 0 {
		n := min(len(ls), 10_000)
		if err := e.api.AppendLogs(ctx, run.ID, ls[:n]); err != nil {
			e.t.Fatal(err)
		}
		ls = ls[n:]
	}
	return run
}

// logsIDs returns the ids of a logs tab's lines, in order.
func logsIDs(p page) string {
	var ids []string
	for _, m := range regexp.MustCompile(`<li id="(L\d+)"`).FindAllStringSubmatch(p.body, -1) {
		ids = append(ids, m[1])
	}
	return strings.Join(ids, ",")
}

// TestLogsFilters: search, level and task filters combine, in the URL;
// lines keep their number in the whole log; a filtered log is not
// followed live; the download link carries the filters.
func TestLogsFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	run := logsSeed(e, "etl", []logsLine{
		{"", "INFO", "run started", ""},                                   // L1
		{"extract", "INFO", "extract: 1200 rows read", `{"rows":1200}`},   // L2
		{"extract", "WARN", "the upstream API is slow", ""},               // L3
		{"load", "ERROR", "the Upstream API said 503", `{"status":503}`},  // L4
		{"load[0]", "INFO", "child zero loaded", `{"host":"UPSTREAM-1"}`}, // L5
		{"load[1]", "DEBUG", "child one: École fermée", ""},               // L6
		{"", "ERROR", "giving up", ""},                                    // L7
	})
	u := e.user()
	u.signIn(e.admin)
	base := "/ui/runs/" + run.ID + "?tab=logs"

	for _, tc := range []struct {
		query, want string
	}{
		{"", "L1,L2,L3,L4,L5,L6,L7"},
		{"&q=upstream", "L3,L4,L5"},         // any case, and in the attributes
		{"&q=UPSTREAM&level=warn", "L3,L4"}, // level and above
		{"&level=ERROR", "L4,L7"},
		{"&task=extract", "L2,L3"},
		{"&task=load", "L4,L5,L6"},             // a mapped task keeps its children's lines
		{"&task=load[1]", "L6"},                // one child
		{"&task=load&q=upstream", "L4,L5"},     // task and search combine
		{"&task=load&level=ERROR&q=503", "L4"}, // all three
		{"&q=%C3%89COLE", "L6"},                // a search beyond ASCII: "ÉCOLE"
		{"&q=rows%22%3A1200", "L2"},            // the attributes as JSON text
		{"&task=nope", ""},                     // a task with no task run: no line
		{"&q=no+such+text", ""},
	} {
		p := u.mustGet(base + tc.query)
		if got := logsIDs(p); got != tc.want {
			t.Errorf("%s: the lines are %q, want %q", tc.query, got, tc.want)
		}
		if tc.query != "" && strings.Contains(p.body, "data-live") {
			t.Errorf("%s: a filtered log is followed live", tc.query)
		}
	}

	// The page: marks, the task choices, the download link with the filters.
	p := u.mustGet(base + "&task=load&q=upstream")
	p.contains(t,
		`the <mark>Upstream</mark> API said 503`,
		`{&#34;host&#34;:&#34;<mark>UPSTREAM</mark>-1&#34;}`,
		`<option value="load" selected>load</option>`,
		`<option value="extract">extract</option>`,
		`href="/ui/runs/`+run.ID+`/logs.txt?q=upstream&amp;task=load"`,
		`Download these lines as text`,
		`2 of 7 lines.`,
	)
	p.lacks(t, `<option value="load[0]"`) // a mapped task is one choice
	p = u.mustGet(base)
	p.contains(t, `data-live`, `data-n="7"`, `href="/ui/runs/`+run.ID+`/logs.txt"`, `<script src="/ui/static/logs.js" defer></script>`)

	if p := u.get(base + "&level=loud"); p.status != http.StatusBadRequest || !strings.Contains(p.body, "level &#34;loud&#34; is not one of DEBUG, INFO, WARN, ERROR") {
		t.Errorf("a bad level = %d:\n%s", p.status, p.body)
	}
}

// TestLogsDownload: logs.txt streams the filtered log as text in the
// user's zone, across the API's pages, as an attachment; signed out it
// leads to the sign-in page, and an unknown run is a 404.
func TestLogsDownload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	lines := []logsLine{
		{"", "INFO", "run started", ""},
		{"extract", "WARN", "slow upstream", `{"ms":900}`},
	}
	// More than one API page (10,000 lines).
	for i := range 12_000 {
		lines = append(lines, logsLine{"load", "DEBUG", fmt.Sprintf("row %d", i+1), ""})
	}
	lines = append(lines, logsLine{"", "ERROR", "the end", ""})
	run := logsSeed(e, "etl", lines)
	path := "/ui/runs/" + run.ID + "/logs.txt"

	if p := e.user().get(path); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/ui/login?next=") {
		t.Errorf("signed out: logs.txt = %d to %q, want 303 to the sign-in page", p.status, p.location())
	}
	u := e.user()
	u.signIn(e.admin)
	u.post("/ui/preferences", url.Values{"csrf": {u.mustGet("/ui/preferences").csrf(t)}, "tz": {"Europe/Paris"}, "clock": {"24"}, "theme": {"system"}})

	p := u.mustGet(path)
	if ct := p.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := p.header.Get("Content-Disposition"); cd != `attachment; filename="run-`+run.ID+`.log.txt"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	got := strings.Split(strings.TrimSuffix(p.body, "\n"), "\n")
	if len(got) != len(lines) {
		t.Fatalf("the download has %d lines, want %d", len(got), len(lines))
	}
	for i, want := range map[int]string{
		0:              "2026-11-26T15:03:05.000+01:00 INFO  run started",
		1:              `2026-11-26T15:03:05.001+01:00 WARN  [extract] slow upstream {"ms":900}`,
		2:              "2026-11-26T15:03:05.002+01:00 DEBUG [load] row 1",
		len(lines) - 2: "2026-11-26T15:03:17.001+01:00 DEBUG [load] row 12000",
		len(lines) - 1: "2026-11-26T15:03:17.002+01:00 ERROR the end",
	} {
		if got[i] != want {
			t.Errorf("line %d = %q, want %q", i+1, got[i], want)
		}
	}

	// The tab's filters apply.
	for _, tc := range []struct{ query, want string }{
		{"?level=WARN", "WARN  [extract] slow upstream {\"ms\":900}|ERROR the end"},
		{"?task=extract", "WARN  [extract] slow upstream {\"ms\":900}"},
		{"?q=ROW+1199", "DEBUG [load] row 1199|DEBUG [load] row 11990|DEBUG [load] row 11991|DEBUG [load] row 11992|DEBUG [load] row 11993|DEBUG [load] row 11994|DEBUG [load] row 11995|DEBUG [load] row 11996|DEBUG [load] row 11997|DEBUG [load] row 11998|DEBUG [load] row 11999"},
		{"?task=nope", ""},
	} {
		body := u.mustGet(path + tc.query).body
		var rest []string
		for l := range strings.Lines(body) {
			_, after, _ := strings.Cut(strings.TrimSuffix(l, "\n"), " ")
			rest = append(rest, after)
		}
		if g := strings.Join(rest, "|"); g != tc.want {
			t.Errorf("%s: the download is %q, want %q", tc.query, g, tc.want)
		}
	}
	if p := u.get("/ui/runs/nope/logs.txt"); p.status != http.StatusNotFound {
		t.Errorf("logs.txt of no run = %d, want 404", p.status)
	}
	if p := u.get(path + "?level=loud"); p.status != http.StatusBadRequest {
		t.Errorf("logs.txt with a bad level = %d, want 400", p.status)
	}
	if !slices.Contains(strings.Split(u.mustGet("/ui/runs/"+run.ID+"?tab=logs&level=ERROR").body, `"`), path+"?level=ERROR") {
		t.Error("the tab's download link does not carry its level filter")
	}
}

// TestLogsEscaped: a log line's text is shown as text, never as markup,
// with and without a search marking it.
func TestLogsEscaped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	run := logsSeed(e, "etl", []logsLine{
		{"<b>x</b>", "INFO", `<img src=x onerror="alert(1)"> & </span></li>`, `{"html":"<script>alert(2)</script>"}`},
	})
	u := e.user()
	u.signIn(e.admin)
	for _, q := range []string{"", "&q=img+src", "&q=script"} {
		p := u.mustGet("/ui/runs/" + run.ID + "?tab=logs" + q)
		p.lacks(t, "<img", "<script>alert", "<b>x")
		p.contains(t, `&lt;b&gt;x&lt;/b&gt;`, `onerror=&#34;alert(1)&#34;&gt; &amp; &lt;/span&gt;&lt;/li&gt;`)
		if strings.Contains(q, "img") {
			p.contains(t, `&lt;<mark>img src</mark>=x`)
		}
		if strings.Contains(q, "script") {
			// (the API's JSON writes < and > in attributes as \u003c, \u003e)
			p.contains(t, `\u003c<mark>script</mark>\u003ealert(2)\u003c/<mark>script</mark>\u003e`)
		}
	}
}
