package ui_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
)

// schedRow returns a schedule's row of the schedules page.
func schedRow(t testing.TB, p page, id string) string {
	t.Helper()
	row := regexp.MustCompile(`(?s)<tr data-schedule="` + regexp.QuoteMeta(id) + `">.*?</tr>`).FindString(p.body)
	if row == "" {
		t.Fatalf("the schedules page has no row for %s:\n%s", id, p.body)
	}
	return row
}

// TestSchedulesPage: the schedules page shows each schedule's flow, cron
// and zone (or interval), status and next fire times in the user's zone
// and the schedule's; a developer pauses, resumes and runs one now (with
// the schedule's parameters); an agent token sees no buttons and a forged
// form gets the API's refusal; the project filter narrows the list.
func TestSchedulesPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	etl := e.flow("etl", typedParams)
	report := dashFlowIn(t, e, "ops", "report", "")
	cron, err := e.api.CreateSchedule(ctx, api.CreateSchedule{FlowID: etl.ID, Cron: "0 6 * * *", Timezone: "Europe/Paris", Params: json.RawMessage(`{"day":"2026-01-01","count":9}`)})
	if err != nil {
		t.Fatal(err)
	}
	every, err := e.api.CreateSchedule(ctx, api.CreateSchedule{FlowID: report.ID, Interval: api.Duration(15 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}

	u := e.user()
	u.signIn(e.token("developer"))
	req, _ := http.NewRequest("GET", e.url+"/ui/schedules", nil)
	req.AddCookie(&http.Cookie{Name: "reeve_prefs", Value: "theme=system&tz=Asia/Tokyo&clock=24"})
	p := u.do(req)
	if p.status != http.StatusOK {
		t.Fatalf("GET /ui/schedules = %d:\n%s", p.status, p.body)
	}
	p.contains(t, `href="/ui/schedules" aria-current="page"`)
	row := schedRow(t, p, cron.ID)
	for _, want := range []string{`<a href="/ui/flows/` + etl.ID + `">etl</a>`, "<code>0 6 * * *</code> in", "Europe/Paris", `data-status="active"`} {
		if !strings.Contains(row, want) {
			t.Errorf("the cron schedule's row lacks %q:\n%s", want, row)
		}
	}
	// 06:00 in Paris (CET, UTC+1) is 14:00 in Tokyo (JST, UTC+9).
	if !strings.Contains(row, `14:00:00 JST</time> <span class="muted">= `) || !strings.Contains(row, " 06:00 CET</span>") {
		t.Errorf("the next fire times are not shown in the user's zone and the schedule's:\n%s", row)
	}
	if n := strings.Count(row, "<li><time"); n != 5 {
		t.Errorf("the cron schedule shows %d next times, want 5", n)
	}
	if !strings.Contains(row, "<code>{&#34;day&#34;:&#34;2026-01-01&#34;,&#34;count&#34;:9}</code>") {
		t.Errorf("the schedule's parameters are not shown:\n%s", row)
	}
	if r := schedRow(t, p, every.ID); !strings.Contains(r, "every 15m0s") || !strings.Contains(r, "<td>ops</td>") {
		t.Errorf("the interval schedule's row lacks its interval and project:\n%s", r)
	}

	// Pause, then resume.
	csrf := p.csrf(t)
	if p := u.post("/ui/schedules/"+cron.ID+"/pause", url.Values{"project": {""}}); p.status != http.StatusForbidden {
		t.Errorf("pause without a CSRF token = %d, want 403", p.status)
	}
	p = u.post("/ui/schedules/"+cron.ID+"/pause", url.Values{"csrf": {csrf}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/ui/schedules?") {
		t.Fatalf("pause = %d to %q:\n%s", p.status, p.location(), p.body)
	}
	p = u.mustGet(p.location())
	p.contains(t, "Schedule "+cron.ID+" paused")
	row = schedRow(t, p, cron.ID)
	if !strings.Contains(row, `data-status="paused"`) || !strings.Contains(row, `/ui/schedules/`+cron.ID+`/resume`) || strings.Contains(row, "/pause") {
		t.Errorf("the paused schedule's row does not say paused with a Resume button:\n%s", row)
	}
	if sc, _ := e.api.Schedule(ctx, cron.ID); !sc.Paused {
		t.Error("the schedule is not paused in the API")
	}
	p = u.post("/ui/schedules/"+cron.ID+"/resume", url.Values{"csrf": {csrf}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("resume = %d:\n%s", p.status, p.body)
	}
	if sc, _ := e.api.Schedule(ctx, cron.ID); sc.Paused {
		t.Error("the schedule is still paused after resume")
	}

	// Run now: a run of the flow with the schedule's parameters.
	p = u.post("/ui/schedules/"+cron.ID+"/run", url.Values{"csrf": {csrf}})
	id, ok := strings.CutPrefix(p.location(), "/ui/runs/")
	if p.status != http.StatusSeeOther || !ok {
		t.Fatalf("run now = %d to %q:\n%s", p.status, p.location(), p.body)
	}
	rd, err := e.api.FlowRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var params map[string]any
	_ = json.Unmarshal(rd.FlowRun.Params, &params)
	if rd.FlowRun.FlowID != etl.ID || params["day"] != "2026-01-01" || params["count"] != float64(9) {
		t.Errorf("run now made a run of %s with %s, want etl with the schedule's parameters", rd.FlowRun.FlowID, rd.FlowRun.Params)
	}

	// The project filter.
	op := u.mustGet("/ui/schedules?project=ops")
	op.contains(t, `data-schedule="`+every.ID+`"`, `<option value="ops" selected>`)
	op.lacks(t, `data-schedule="`+cron.ID+`"`)

	// An agent token sees the schedules but no buttons; a forged form
	// gets the API's refusal.
	ag := e.user()
	ag.signIn(e.token("agent"))
	ap := ag.mustGet("/ui/schedules")
	ap.contains(t, `data-schedule="`+cron.ID+`"`)
	ap.lacks(t, "/pause", "/resume", "/run\"", "Run now")
	for _, action := range []string{"pause", "run"} {
		fp := ag.post("/ui/schedules/"+cron.ID+"/"+action, url.Values{"csrf": {ap.csrf(t)}})
		if fp.status != http.StatusForbidden || !strings.Contains(fp.body, "a agent token may not POST") {
			t.Errorf("a forged %s by an agent token = %d, want 403 with the API's message:\n%s", action, fp.status, fp.body)
		}
	}
	if sc, _ := e.api.Schedule(ctx, cron.ID); sc.Paused {
		t.Error("the agent's forged pause paused the schedule")
	}
}
