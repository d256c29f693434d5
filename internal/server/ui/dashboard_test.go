package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
)

// dashFlowIn registers a flow of one task in a project (created if new).
func dashFlowIn(t testing.TB, e *env, project, name, extra string) api.Flow {
	t.Helper()
	ctx := context.Background()
	if _, err := e.api.Project(ctx, project); err != nil {
		if _, err := e.api.CreateProject(ctx, api.CreateProject{Name: project}); err != nil {
			t.Fatal(err)
		}
	}
	if extra != "" {
		extra = "," + extra
	}
	spec := fmt.Sprintf(`{"spec_version":1,"name":%q,"tasks":[{"id":"a","task":"a"}]%s}`, name, extra)
	reg, err := e.api.RegisterFlow(ctx, api.RegisterFlow{Project: project, Spec: json.RawMessage(spec), Storage: api.Storage{Kind: "local", Path: "/usr/local/bin/flows"}})
	if err != nil {
		t.Fatal(err)
	}
	return reg.Flow
}

// dashEnd moves a run through Running to a finished kind.
func dashEnd(e *env, id string, kind state.Kind, msg string) {
	e.setState(id, state.Running, "")
	e.setState(id, kind, msg)
}

// dashSection returns the HTML of the table (or element) with id.
func dashSection(t testing.TB, p page, tag, id string) string {
	t.Helper()
	s := regexp.MustCompile(`(?s)<` + tag + `[^>]* id="` + id + `".*?</` + tag + `>`).FindString(p.body)
	if s == "" {
		t.Fatalf("the page has no <%s id=%q>:\n%s", tag, id, p.body)
	}
	return s
}

// TestDashboard: the dashboard counts the window's runs by state, each
// count linking to the runs list filtered the same way; lists the failing
// flows (newest failure first, with counts), the late runs with why they
// wait, the next scheduled runs with their zone, and the agents' health;
// the project filter narrows every part.
func TestDashboard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	etl := e.flow("etl", "")
	e.flow("report", "")
	e.flow("gpu-train", `"labels":["gpu"]`)
	nightly := dashFlowIn(t, e, "ops", "nightly", "")

	for i := range 2 {
		dashEnd(e, e.run("etl", "").ID, state.Failed, fmt.Sprintf("etl broke %d", i))
	}
	dashEnd(e, e.run("etl", "").ID, state.Success, "")
	rep := e.run("report", "")
	dashEnd(e, rep.ID, state.TimedOut, "report took too long")
	e.setState(e.run("report", "").ID, state.Running, "")
	late := e.run("gpu-train", "") // due now; no agent covers [gpu]
	e.flow("busy", "")
	overdue, err := e.api.CreateFlowRun(ctx, api.CreateFlowRun{Flow: "busy", ScheduledAt: time.Now().Add(-5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	future, err := e.api.CreateFlowRun(ctx, api.CreateFlowRun{Flow: "busy", ScheduledAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	opsRun, err := e.api.CreateFlowRun(ctx, api.CreateFlowRun{Project: "ops", Flow: "nightly"})
	if err != nil {
		t.Fatal(err)
	}
	dashEnd(e, opsRun.FlowRun.ID, state.Failed, "ops broke")

	if _, err := e.api.CreateSchedule(ctx, api.CreateSchedule{FlowID: etl.ID, Cron: "0 6 * * *", Timezone: "Europe/Paris"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.CreateSchedule(ctx, api.CreateSchedule{FlowID: nightly.ID, Cron: "30 2 * * *", Timezone: "America/New_York"}); err != nil {
		t.Fatal(err)
	}
	agentAPI := clientAs(t, e, e.token("agent"))
	if _, err := agentAPI.RegisterAgent(ctx, api.RegisterAgent{Name: "cpu-1", Labels: []string{"linux"}}); err != nil {
		t.Fatal(err)
	}

	u := e.user()
	u.signIn(e.token("developer"))
	before := time.Now()
	p := u.mustGet("/ui/dashboard")
	p.contains(t, `href="/ui/dashboard" aria-current="page"`, `<option value="24h" selected>`, `<option value="ops">ops</option>`)

	// Counts: every run of the window, by state.
	counts := dashSection(t, p, "ul", "counts")
	for kind, n := range map[string]int{"Failed": 3, "TimedOut": 1, "Success": 1, "Running": 1, "Scheduled": 3} {
		if !regexp.MustCompile(`data-state="` + kind + `"><a href="[^"]*state=` + kind + `[^"]*" aria-label="` + fmt.Sprint(n) + " " + kind + `"`).MatchString(counts) {
			t.Errorf("the counts do not show %d %s with a link:\n%s", n, kind, counts)
		}
	}
	if !strings.Contains(counts, `<span class="dash-n">9</span> runs`) {
		t.Errorf("the counts' total is not 9:\n%s", counts)
	}
	// A count's link is the runs list of that state since the window's start.
	m := regexp.MustCompile(`data-state="Failed"><a href="([^"]+)"`).FindStringSubmatch(counts)
	link, err := url.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
	if err != nil || link.Path != "/ui/runs" || link.Query().Get("state") != "Failed" {
		t.Fatalf("the Failed count links to %q", m[1])
	}
	since, err := time.Parse(time.RFC3339, link.Query().Get("after"))
	if err != nil || since.Before(before.Add(-24*time.Hour-time.Minute)) || since.After(time.Now().Add(-24*time.Hour)) {
		t.Errorf("the Failed count's after is %q, want 24 h ago", link.Query().Get("after"))
	}

	// Failing flows: the newest failure first, with counts and the message.
	failing := dashSection(t, p, "table", "failing")
	rows := regexp.MustCompile(`<tr data-flow="([^"]+)">`).FindAllStringSubmatch(failing, -1)
	var order []string
	for _, r := range rows {
		order = append(order, r[1])
	}
	if strings.Join(order, ",") != "nightly,report,etl" {
		t.Errorf("the failing flows are %v, want nightly, report, etl (newest failure first)", order)
	}
	etlRow := regexp.MustCompile(`(?s)<tr data-flow="etl">.*?</tr>`).FindString(failing)
	for _, want := range []string{`<td class="failures">2</td>`, "etl broke 1", "state=Failed", "state=TimedOut", "flow=etl", "project=default"} {
		if !strings.Contains(etlRow, want) {
			t.Errorf("etl's failing row lacks %q:\n%s", want, etlRow)
		}
	}

	// Late runs: the due run no agent can take, with the monitor's reason.
	lateT := dashSection(t, p, "table", "late")
	if !strings.Contains(lateT, `data-run="`+late.ID+`"`) || !strings.Contains(lateT, "no online agent&#39;s labels cover the labels [gpu]") {
		t.Errorf("the late runs do not list %s with its reason:\n%s", late.ID, lateT)
	}

	// A run due for minutes that an online agent could take waits for a
	// free agent; one due in an hour is not late.
	if !strings.Contains(lateT, `data-run="`+overdue.FlowRun.ID+`"`) || !strings.Contains(lateT, "waiting for a free agent") {
		t.Errorf("the late runs do not list the overdue run %s as waiting for a free agent:\n%s", overdue.FlowRun.ID, lateT)
	}
	if strings.Contains(lateT, future.FlowRun.ID) {
		t.Errorf("the late runs list %s, due in an hour", future.FlowRun.ID)
	}

	// Next scheduled runs: in the user's zone and the schedule's.
	next := dashSection(t, p, "table", "next")
	for _, want := range []string{"Europe/Paris", "America/New_York", "<code>0 6 * * *</code>", ` CET <span class="muted">(Europe/Paris)</span>`, `href="/ui/flows/` + etl.ID + `"`} {
		if !strings.Contains(next, want) {
			t.Errorf("the next runs lack %q:\n%s", want, next)
		}
	}

	// Agents: one healthy, none unhealthy.
	p.contains(t, `data-health="healthy"><span class="state-icon" aria-hidden="true">●</span> 1 healthy`, `</span> 0 unhealthy`, `href="/ui/agents" id="agents-link"`)

	// The project filter narrows every part; the window is kept.
	op := u.mustGet("/ui/dashboard?project=ops&window=1h")
	op.contains(t, `<option value="1h" selected>`, `<option value="ops" selected>`, `<tr data-flow="nightly">`, "America/New_York", `id="no-late"`)
	op.lacks(t, `<tr data-flow="etl">`, "Europe/Paris", late.ID)
	if c := dashSection(t, op, "ul", "counts"); !strings.Contains(c, `<span class="dash-n">1</span> runs`) || !strings.Contains(c, "project=ops") {
		t.Errorf("ops's counts are not its one run, linked with the project:\n%s", c)
	}

	// A window or project that does not exist is a clear 4xx.
	for path, status := range map[string]int{"/ui/dashboard?window=2y": http.StatusBadRequest, "/ui/dashboard?project=nope": http.StatusNotFound} {
		if p := u.get(path); p.status != status || !strings.Contains(p.body, `id="error"`) {
			t.Errorf("GET %s = %d, want %d with a message:\n%s", path, p.status, status, p.body)
		}
	}
}
