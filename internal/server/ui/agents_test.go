package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/agent"
	"github.com/reevehq/reeve/internal/runner/process"
	"github.com/reevehq/reeve/internal/server/ui"
	"github.com/reevehq/reeve/internal/testenv"
)

// TestAgentsPage: an agent registered through the API shows as healthy
// with its labels, storage kinds, last heartbeat (with its zone and how
// long ago) and its runs in flight; a due run whose labels no online
// agent covers is listed with the reason it waits.
func TestAgentsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	agentAPI := clientAs(t, e, e.token("agent"))
	a, err := agentAPI.RegisterAgent(ctx, api.RegisterAgent{Name: "builder-1", Labels: []string{"linux", "gpu"}, StorageKinds: []string{"local", "docker"}})
	if err != nil {
		t.Fatal(err)
	}
	e.flow("etl", `"labels":["gpu"]`)
	claimed := e.run("etl", "")
	c, err := agentAPI.Claim(ctx, a.ID, time.Second)
	if err != nil || c == nil || c.FlowRun.ID != claimed.ID {
		t.Fatalf("claim = %+v, %v; want run %s", c, err, claimed.ID)
	}
	e.flow("arm", `"labels":["arm64"]`)
	stranded := e.run("arm", "")

	u := e.user()
	u.signIn(e.token("developer"))
	p := u.mustGet("/ui/agents")
	p.contains(t, `href="/ui/agents" aria-current="page"`, `href="/ui/secrets"`)
	row := regexp.MustCompile(`(?s)<tr data-agent="builder-1"[^>]*>.*?</tr>`).FindString(p.body)
	if row == "" {
		t.Fatalf("the agents page has no row for builder-1:\n%s", p.body)
	}
	for _, want := range []string{`data-health="healthy"`, "healthy", "<code>gpu</code>", "<code>linux</code>", "<code>local</code>", "<code>docker</code>", " s ago)", `<td class="in-flight">1</td>`} {
		if !strings.Contains(row, want) {
			t.Errorf("builder-1's row lacks %q:\n%s", want, row)
		}
	}
	// The heartbeat carries its zone (the default is the server's local zone).
	zone := time.Now().Format("MST")
	if !regexp.MustCompile(`\d\d:\d\d:\d\d ` + regexp.QuoteMeta(zone) + `</time>`).MatchString(row) {
		t.Errorf("builder-1's last heartbeat has no zone %s:\n%s", zone, row)
	}
	// In UTC the heartbeat reads UTC.
	req, _ := http.NewRequest("GET", e.url+"/ui/agents", nil)
	req.AddCookie(&http.Cookie{Name: "reeve_prefs", Value: "theme=system&tz=UTC&clock=24"})
	u.do(req).contains(t, " UTC</time>")

	st := regexp.MustCompile(`(?s)<table class="grid" id="stranded">.*?</table>`).FindString(p.body)
	if !strings.Contains(st, `data-run="`+stranded.ID+`"`) || !strings.Contains(st, "no online agent&#39;s labels cover the labels [arm64]") {
		t.Errorf("the stranded runs do not list %s with its reason:\n%s", stranded.ID, st)
	}
	if strings.Contains(st, claimed.ID) {
		t.Errorf("the stranded runs list the claimed run %s", claimed.ID)
	}

	// The page's script refreshes from a fragment: both tables' bodies
	// alone; signed out it is a 401, and the script reloads the page.
	live := u.mustGet("/ui/agents/live")
	live.contains(t, `<tbody id="agents-body">`, `<tbody id="stranded-body">`, `data-agent="builder-1"`, `data-health="healthy"`, `data-run="`+stranded.ID+`"`)
	live.lacks(t, "<html", "<form")
	if p := e.user().get("/ui/agents/live"); p.status != http.StatusUnauthorized {
		t.Errorf("signed out, GET /ui/agents/live = %d, want 401", p.status)
	}
	p.contains(t, `<div id="agents-live" data-poll-ms="10000">`, `<script src="/ui/static/agents.js" defer></script>`)

	// Every role that may read agents sees the page; it has no forms.
	ag := e.user()
	ag.signIn(e.token("agent"))
	ap := ag.mustGet("/ui/agents")
	ap.contains(t, `data-agent="builder-1"`)
	if strings.Count(ap.body, "<form") != 1 { // sign out only
		t.Errorf("the agents page has forms besides sign out:\n%s", ap.body)
	}
}

// clientAs is an API client that sends token.
func clientAs(t testing.TB, e *env, token string) *client.Client {
	t.Helper()
	cl, err := client.New(e.url, token)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// agentsEnv is newEnv with the UI's agent-offline window set to offline:
// the server's API, and in front of it a UI made with that window.
func agentsEnv(t testing.TB, offline time.Duration) *env {
	t.Helper()
	srv, admin := newServer(t)
	pages, err := ui.New(ui.Config{API: srv.Handler(), AgentOfflineAfter: offline})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(ui.Prefix, pages)
	mux.Handle("/", srv.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	cl, err := client.New(hs.URL, admin)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, url: hs.URL, admin: admin, api: cl}
}

// agentsHealth is the health an agent's row shows ("" without a row).
func agentsHealth(b *browser, name string) string {
	b.t.Helper()
	return evalIn[string](b, `(() => { const h = document.querySelector('tr[data-agent=`+jsString(name)+`] [data-health]'); return h ? h.dataset.health : ""; })()`)
}

// agentsVisibility makes the page believe its tab is hidden or shown.
func agentsVisibility(b *browser, hidden bool) {
	b.t.Helper()
	evalIn[chromedp.Void](b, fmt.Sprintf(`Object.defineProperty(document, "hidden", {configurable: true, get: () => %v}); document.dispatchEvent(new Event("visibilitychange"))`, hidden))
}

// agentsWait polls the page until cond holds, or fails saying what it
// waited for.
func agentsWait(b *browser, what string, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrowserAgentsLive: a real agent (internal/agent, heartbeating
// through the API) shows healthy; a run claimed meanwhile shows in
// flight on its agent's new row; a hidden tab does not poll and catches
// up when shown; when the agent is stopped, its row flips to unhealthy
// once the offline window has passed, all without a reload.
func TestBrowserAgentsLive(t *testing.T) {
	t.Parallel()
	const offline = 2 * time.Second
	e := agentsEnv(t, offline)
	ctx := testenv.Chrome(t)
	bg := context.Background()
	agentToken := e.token("agent")
	agentAPI := clientAs(t, e, agentToken)

	procs, err := process.New(process.Config{Dir: filepath.Join(t.TempDir(), "out")})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(agent.Config{Client: agentAPI, Runner: procs, Kind: process.Kind, Name: "runner-1", Labels: []string{"live"},
		MaxRuns: 1, DataDir: t.TempDir(), HeartbeatInterval: 200 * time.Millisecond, ClaimWait: time.Second, StopRunsOnExit: true})
	if err != nil {
		t.Fatal(err)
	}
	actx, stopAgent := context.WithCancel(bg)
	agentDone := make(chan error, 1)
	go func() { agentDone <- ag.Run(actx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		stopAgent()
		if err := <-agentDone; err != nil {
			t.Errorf("agent.Run: %v", err)
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		agents, err := e.api.Agents(bg)
		if err == nil && len(agents) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not register: %v %v", agents, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	b := &browser{t: t, ctx: ctx}
	a11ySignIn(b, e.url, e.token("developer"))
	b.do("open the agents page", chromedp.Navigate(e.url+"/ui/agents"), chromedp.WaitVisible(chromedp.CSS("#agents")))
	if h := agentsHealth(b, "runner-1"); h != "healthy" {
		t.Fatalf("runner-1 shows %q, want healthy", h)
	}
	evalIn[chromedp.Void](b, `window.agentsNoReload = true`)
	// A keyboard selection survives the updates.
	b.do("select the row", chromedp.KeyEvent("j"))

	// Another agent claims a run (one the real agent's labels do not
	// cover): its row appears with the run in flight.
	e.flow("special", `"labels":["special"]`)
	run := e.run("special", "")
	other, err := agentAPI.RegisterAgent(bg, api.RegisterAgent{Name: "claimer", Labels: []string{"special"}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := agentAPI.Claim(bg, other.ID, time.Second); err != nil || c == nil || c.FlowRun.ID != run.ID {
		t.Fatalf("claim = %+v, %v; want run %s", c, err, run.ID)
	}
	agentsWait(b, "the claimer's row shows one run in flight", func() bool {
		return evalIn[string](b, `(() => { const c = document.querySelector('tr[data-agent="claimer"] .in-flight'); return c ? c.textContent : ""; })()`) == "1"
	})

	// Hidden, the page does not poll: the claimer, which never beats,
	// goes offline (the server's fragment says so) but the hidden page
	// fetches nothing and still shows what it showed.
	evalIn[chromedp.Void](b, `window.agentsFetches = 0; const f = window.fetch; window.fetch = function () { window.agentsFetches++; return f.apply(this, arguments); }`)
	agentsVisibility(b, true)
	hiddenAt := time.Now()
	shown := agentsHealth(b, "claimer")
	before := evalIn[int](b, `window.agentsFetches`)
	dev := e.user()
	dev.signIn(e.token("developer"))
	deadline = time.Now().Add(30 * time.Second)
	poll := time.Second // agentsPoll of a 2 s window
	for time.Since(hiddenAt) < poll+poll/2 || !regexp.MustCompile(`(?s)data-agent="claimer".*?data-health="unhealthy"`).MatchString(dev.mustGet("/ui/agents/live").body) {
		if time.Now().After(deadline) {
			t.Fatal("the claimer, which never beats, did not turn unhealthy on the server")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The server has judged it offline, and more than a poll interval
	// has passed since the page was hidden.
	if n := evalIn[int](b, `window.agentsFetches`); n != before {
		t.Errorf("the hidden page fetched %d times", n-before)
	}
	if h := agentsHealth(b, "claimer"); h != shown {
		t.Errorf("the hidden page changed the claimer's health from %q to %q", shown, h)
	}
	// Shown again, it refreshes at once: the claimer is unhealthy, and the
	// real agent, still beating a window after the page opened, healthy.
	agentsVisibility(b, false)
	agentsWait(b, "the claimer shows unhealthy", func() bool { return agentsHealth(b, "claimer") == "unhealthy" })
	if h := agentsHealth(b, "runner-1"); h != "healthy" {
		t.Fatalf("runner-1, still beating, shows %q", h)
	}
	// Stopped, it turns unhealthy within the window and a poll.
	stop()
	agentsWait(b, "runner-1 shows unhealthy", func() bool { return agentsHealth(b, "runner-1") == "unhealthy" })
	if !evalIn[bool](b, `window.agentsNoReload === true`) {
		t.Error("the page was reloaded")
	}
	if got := keysSelected(b); got != "runner-1" {
		t.Errorf("the keyboard selection was lost by the updates (selected %q)", got)
	}
}
