package ui_test

import (
	"context"
	"fmt"
	"html"
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

func TestSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user()

	// Signed out, a page sends the user to the login page, which brings
	// them back.
	p := u.get("/ui/runs?state=Failed")
	if p.status != http.StatusSeeOther || p.location() != "/ui/login?next="+url.QueryEscape("/ui/runs?state=Failed") {
		t.Fatalf("signed out GET /ui/runs = %d to %q, want 303 to the login page", p.status, p.location())
	}
	if p := u.get("/"); p.status != http.StatusFound || p.location() != "/ui/" {
		t.Errorf("GET / = %d to %q, want a redirect to /ui/", p.status, p.location())
	}
	login := u.mustGet(p.location())
	login.contains(t, `name="next" value="/ui/runs?state=Failed"`, `<html lang="en" data-theme="system">`)

	// A wrong token is refused and sets no session.
	bad := u.post("/ui/login", url.Values{"token": {"reeve_not-a-real-token"}, "next": {"/ui/runs"}})
	if bad.status != http.StatusUnauthorized {
		t.Fatalf("sign in with a wrong token = %d, want 401", bad.status)
	}
	bad.contains(t, "The server does not accept that token")
	if c := bad.header.Get("Set-Cookie"); c != "" {
		t.Errorf("a refused sign-in set a cookie: %s", c)
	}

	// The right token is kept in an HttpOnly, SameSite=Strict cookie of /ui.
	good := u.post("/ui/login", url.Values{"token": {e.admin}, "next": {"/ui/runs?state=Failed"}})
	if good.status != http.StatusSeeOther || good.location() != "/ui/runs?state=Failed" {
		t.Fatalf("sign in = %d to %q, want 303 back to the page asked for", good.status, good.location())
	}
	c := good.header.Get("Set-Cookie")
	for _, want := range []string{"reeve_session=", "Path=/ui", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(c, want) {
			t.Errorf("session cookie %q lacks %s", c, want)
		}
	}
	if strings.Contains(c, "Secure") {
		t.Errorf("session cookie %q is Secure on plain HTTP: the browser would drop it", c)
	}
	u.mustGet("/ui/runs").contains(t, "Sign out", `<h1>Runs</h1>`)

	// Behind a TLS proxy the cookie is Secure; next is only ever a UI path.
	for next, want := range map[string]string{"//evil.example/x": "/ui/runs", "https://evil.example/ui/": "/ui/runs", "/ui/flows": "/ui/flows", "/api/v1/tokens": "/ui/runs"} {
		req, _ := http.NewRequest("POST", e.url+"/ui/login", strings.NewReader(url.Values{"token": {e.admin}, "next": {next}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-Proto", "https")
		p := e.user().do(req)
		if p.location() != want {
			t.Errorf("sign in with next=%q goes to %q, want %q", next, p.location(), want)
		}
		if !strings.Contains(p.header.Get("Set-Cookie"), "Secure") {
			t.Errorf("behind an https proxy the session cookie is not Secure: %s", p.header.Get("Set-Cookie"))
		}
	}

	// A revoked token ends the session at the next page.
	dev := e.user()
	devToken := e.token("developer")
	dev.signIn(devToken)
	tokens, err := e.api.Tokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tokens {
		if tk.Role == "developer" {
			if _, err := e.api.RevokeToken(context.Background(), tk.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if p := dev.get("/ui/runs"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/ui/login") {
		t.Errorf("with a revoked token GET /ui/runs = %d to %q, want the login page", p.status, p.location())
	} else if !strings.Contains(p.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("a revoked token's session cookie is not cleared: %q", p.header.Get("Set-Cookie"))
	}

	// A sign-in posted from another site is refused.
	req, _ := http.NewRequest("POST", e.url+"/ui/login", strings.NewReader(url.Values{"token": {e.admin}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if p := e.user().do(req); p.status != http.StatusForbidden {
		t.Errorf("a cross-site sign-in = %d, want 403", p.status)
	}
	for h, v := range map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "null"} {
		req, _ := http.NewRequest("POST", e.url+"/ui/login", strings.NewReader(url.Values{"token": {e.admin}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(h, v)
		if p := e.user().do(req); p.status != http.StatusForbidden {
			t.Errorf("a sign-in with %s: %s = %d, want 403", h, v, p.status)
		}
	}
	// Behind a proxy that rewrites Host, the browser's same-origin post
	// is taken.
	req, _ = http.NewRequest("POST", e.url+"/ui/login", strings.NewReader(url.Values{"token": {e.admin}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://reeve.example.com")
	req.Header.Set("X-Forwarded-Host", "reeve.example.com")
	if p := e.user().do(req); p.status != http.StatusSeeOther {
		t.Errorf("a sign-in through a proxy = %d, want 303", p.status)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user()
	runs := u.signIn(e.admin)
	token := runs.csrf(t)
	prefs := url.Values{"theme": {"dark"}, "tz": {"UTC"}, "clock": {"24"}}

	for name, csrf := range map[string][]string{"without": nil, "wrong": {"AAAA" + token[4:]}, "empty": {""}} {
		f := url.Values{"csrf": csrf}
		for k, v := range prefs {
			f[k] = v
		}
		p := u.post("/ui/preferences", f)
		if p.status != http.StatusForbidden {
			t.Errorf("preferences %s a CSRF token = %d, want 403", name, p.status)
		}
		p.contains(t, "CSRF")
		if p := u.post("/ui/logout", url.Values{"csrf": csrf}); p.status != http.StatusForbidden {
			t.Errorf("sign out %s a CSRF token = %d, want 403", name, p.status)
		}
	}
	// Still signed in, theme unchanged.
	u.mustGet("/ui/runs").contains(t, `data-theme="system"`)

	prefs.Set("csrf", token)
	if p := u.post("/ui/preferences", prefs); p.status != http.StatusSeeOther {
		t.Fatalf("preferences with the CSRF token = %d, want 303:\n%s", p.status, p.body)
	}
	u.mustGet("/ui/runs").contains(t, `data-theme="dark"`)

	// Another session's token is refused too.
	other := e.user()
	otherToken := other.signIn(e.token("developer")).csrf(t)
	if otherToken == token {
		t.Fatal("two tokens have the same CSRF token")
	}
	if p := u.post("/ui/logout", url.Values{"csrf": {otherToken}}); p.status != http.StatusForbidden {
		t.Errorf("sign out with another session's CSRF token = %d, want 403", p.status)
	}
	if p := u.post("/ui/logout", url.Values{"csrf": {token}}); p.status != http.StatusSeeOther || p.location() != "/ui/login" {
		t.Fatalf("sign out = %d to %q, want 303 to /ui/login", p.status, p.location())
	}
	if p := u.get("/ui/runs"); p.status != http.StatusSeeOther {
		t.Errorf("after signing out GET /ui/runs = %d, want a redirect to the login page", p.status)
	}
}

func TestCancelNeedsARoleThatMay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	run := e.run("etl", "")
	path := "/ui/runs/" + run.ID

	// An agent token reads everything but may not cancel: no button, and
	// a forged form is refused by the API with a message, not a 500.
	agent := e.user()
	agent.signIn(e.token("agent"))
	p := agent.mustGet(path)
	p.lacks(t, `id="cancel"`)
	forged := agent.post(path+"/cancel", url.Values{"csrf": {p.csrf(t)}})
	if forged.status != http.StatusForbidden {
		t.Fatalf("an agent's cancel = %d, want 403:\n%s", forged.status, forged.body)
	}
	forged.contains(t, "You may not cancel this run", `role="alert"`, run.ID)
	if k := e.state(run.ID); k.Finished() {
		t.Fatalf("an agent's refused cancel left the run %s", k)
	}

	dev := e.user()
	dev.signIn(e.token("developer"))
	p = dev.mustGet(path)
	p.contains(t, `id="cancel"`)
	res := dev.post(path+"/cancel", url.Values{"csrf": {p.csrf(t)}})
	if res.status != http.StatusSeeOther || res.location() != path {
		t.Fatalf("a developer's cancel = %d to %q, want 303 to the run", res.status, res.location())
	}
	if k := e.state(run.ID); k != state.Cancelled {
		t.Fatalf("after cancel the run is %s, want Cancelled", k)
	}
	after := dev.mustGet(path)
	after.contains(t, `data-state="Cancelled"`)
	after.lacks(t, `id="cancel"`)
	// Cancelling a finished run again is a message too.
	again := dev.post(path+"/cancel", url.Values{"csrf": {p.csrf(t)}})
	if again.status >= 500 {
		t.Errorf("cancelling a finished run = %d:\n%s", again.status, again.body)
	}
}

func TestPreferences(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	run := e.run("etl", "")
	u := e.user()
	csrf := u.signIn(e.admin).csrf(t)

	save := func(theme, tz, other, clock string) page {
		return u.post("/ui/preferences", url.Values{"csrf": {csrf}, "theme": {theme}, "tz": {tz}, "tz_other": {other}, "clock": {clock}})
	}
	if p := save("dark", "local", "Asia/Tokyo", "12"); p.status != http.StatusSeeOther {
		t.Fatalf("save preferences = %d:\n%s", p.status, p.body)
	}
	p := u.mustGet("/ui/runs")
	// The theme is in the first bytes, so the first paint is right.
	if head := p.body[:min(len(p.body), 120)]; !strings.Contains(head, `<html lang="en" data-theme="dark">`) {
		t.Errorf("the page does not start dark: %q", head)
	}
	// Times carry their zone's name, on a 12-hour clock.
	if !regexp.MustCompile(`\d{4}-\d\d-\d\d \d{1,2}:\d\d:\d\d (AM|PM) JST`).MatchString(p.body) {
		t.Errorf("the runs list shows no 12-hour time in JST:\n%s", p.body)
	}
	p.contains(t, "Times in Asia/Tokyo")
	u.mustGet("/ui/runs/"+run.ID).contains(t, " JST</time>")

	if p := save("light", "UTC", "", "24"); p.status != http.StatusSeeOther {
		t.Fatalf("save preferences = %d", p.status)
	}
	p = u.mustGet("/ui/runs/" + run.ID)
	p.contains(t, `data-theme="light"`)
	if !regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>`).MatchString(p.body) {
		t.Errorf("the run page shows no 24-hour UTC time:\n%s", p.body)
	}

	for _, bad := range [][4]string{{"dark", "Mars/Olympus", "", "24"}, {"dark", "local", "../../etc/passwd", "24"}, {"neon", "UTC", "", "24"}, {"dark", "UTC", "", "13"}} {
		if p := save(bad[0], bad[1], bad[2], bad[3]); p.status != http.StatusBadRequest {
			t.Errorf("save preferences %v = %d, want 400", bad, p.status)
		}
	}

	// A cookie set by hand is read the same way, and nonsense in it is
	// the default.
	for cookie, want := range map[string]string{"theme=dark": `data-theme="dark"`, "theme=%3Cscript%3E": `data-theme="system"`} {
		req, _ := http.NewRequest("GET", e.url+"/ui/login", nil)
		req.AddCookie(&http.Cookie{Name: "reeve_prefs", Value: cookie})
		e.user().do(req).contains(t, want)
	}
}

func TestRunsList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	e.flow("report", "")
	var etl []string // newest first
	for range 5 {
		etl = slices.Insert(etl, 0, e.run("etl", "").ID)
	}
	report := e.run("report", "").ID
	e.setState(etl[0], state.Running, "")
	e.setState(etl[0], state.Failed, "boom")
	e.setState(etl[2], state.Running, "")
	e.setState(etl[2], state.Failed, "boom")
	u := e.user()
	all := u.signIn(e.admin)
	if got, want := all.rows(), append([]string{report}, etl...); !slices.Equal(got, want) {
		t.Fatalf("runs = %v, want %v", got, want)
	}
	all.contains(t, `data-state="Failed"`, ">etl</td>", ">report</td>", `href="/ui/runs/`+report+`"`)

	check := func(query string, want ...string) page {
		t.Helper()
		p := u.mustGet("/ui/runs?" + query)
		if got := p.rows(); !slices.Equal(got, want) {
			t.Errorf("runs?%s = %v, want %v", query, got, want)
		}
		return p
	}
	failed := check("state=Failed", etl[0], etl[2])
	failed.contains(t, `<option value="Failed" selected>`)
	check("state=!Failed", report, etl[1], etl[3], etl[4])
	check("state=!Failed&flow=etl", etl[1], etl[3], etl[4])
	check("flow=report", report)
	check("flow=etl&project=default", etl...)
	if p := u.get("/ui/runs?state=Failed&state=!Failed"); p.status != http.StatusBadRequest || !strings.Contains(p.body, "leaves out every state") {
		t.Errorf("a state filter that leaves out every state = %d, want 400 saying so", p.status)
	}
	if p := u.get("/ui/runs?state=Exploded"); p.status != http.StatusBadRequest || !strings.Contains(p.body, "is not a state") {
		t.Errorf("an unknown state = %d, want 400 saying so", p.status)
	}
	if p := u.get("/ui/runs?flow=nope"); p.status != http.StatusNotFound || !strings.Contains(p.body, "There is no flow named") {
		t.Errorf("an unknown flow = %d, want 404 saying so", p.status)
	}

	// Paging: Next and Previous are links with the API's cursor, and the
	// filters stay in them.
	link := func(p page, id string) string {
		t.Helper()
		m := regexp.MustCompile(`href="([^"]+)" rel="(?:next|prev)" id="` + id + `"`).FindStringSubmatch(p.body)
		if m == nil {
			return ""
		}
		return html.UnescapeString(m[1])
	}
	p1 := check("flow=etl&limit=2", etl[0], etl[1])
	if link(p1, "prev") != "" {
		t.Error("page 1 has a Previous link")
	}
	next := link(p1, "next")
	if !strings.Contains(next, "flow=etl") || !strings.Contains(next, "cursor=") {
		t.Fatalf("Next = %q, want the filter and a cursor", next)
	}
	p2 := check(strings.TrimPrefix(next, "/ui/runs?"), etl[2], etl[3])
	p2.contains(t, "Page 2")
	p3 := check(strings.TrimPrefix(link(p2, "next"), "/ui/runs?"), etl[4])
	if link(p3, "next") != "" {
		t.Error("the last page has a Next link")
	}
	back := check(strings.TrimPrefix(link(p3, "prev"), "/ui/runs?"), etl[2], etl[3])
	check(strings.TrimPrefix(link(back, "prev"), "/ui/runs?"), etl[0], etl[1])

	// Far down the list the URL keeps only the last 20 pages' cursors:
	// the page number stays right, Previous goes back 20 pages, then a
	// First link remains.
	e.flow("many", "")
	var many []string
	for range 25 {
		many = append(many, e.run("many", "").ID)
	}
	slices.Reverse(many) // newest first, as listed
	pg := check("flow=many&limit=1", many[0])
	for i := 1; i < 25; i++ {
		pg = check(strings.TrimPrefix(link(pg, "next"), "/ui/runs?"), many[i])
	}
	pg.contains(t, "Page 25", `id="first">« First</a>`)
	if u, _ := url.Parse(link(pg, "prev")); len(u.Query()["prev"]) != 19 {
		t.Errorf("page 25's Previous link keeps %d cursors, want 19 (20 kept, less its own)", len(u.Query()["prev"]))
	}
	for i := 23; i >= 4; i-- {
		pg = check(strings.TrimPrefix(link(pg, "prev"), "/ui/runs?"), many[i])
		pg.contains(t, fmt.Sprintf("Page %d<", i+1))
	}
	if link(pg, "prev") != "" {
		t.Error("20 pages back, a Previous link remains, though its cursor was dropped")
	}
	pg.contains(t, `<a href="/ui/runs?flow=many&amp;limit=1" id="first">`)
}

func TestRunPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", `"parameters":[{"name":"day","type":"string","go_type":"string","required":true}]`)
	run := e.run("etl", `{"day":"2026-11-26"}`)
	e.setState(run.ID, state.Running, "")
	e.logs(run.ID, "INFO starting the extract", "DEBUG 1200 rows read", "WARN the Needle is late", "ERROR lost the needle again", "INFO done")
	if _, err := e.api.WriteTaskRunStates(context.Background(), run.ID, []api.TaskRunWrite{
		{Key: "a", Task: "a", State: state.State{Kind: state.Failed, Message: "upstream said 503", Time: time.Now(), Attempt: 2}},
		{Key: "b", Task: "b", State: state.State{Kind: state.Pending, Time: time.Now()}},
	}); err != nil {
		t.Fatal(err)
	}
	u := e.user()
	u.signIn(e.admin)
	base := "/ui/runs/" + run.ID

	p := u.mustGet(base)
	p.contains(t, "<h1>etl", `data-state="Running"`, `<code>day=&#34;2026-11-26&#34;</code>`, `id="tab-tasks"`, `aria-current="page" id="tab-tasks"`)
	// The tasks tab: each task run with its state (icon, text, colour),
	// attempt and message.
	p.contains(t, `<td class="mono"><a href="/ui/runs/`+run.ID+`/tasks/a">a</a></td><td><span class="state state-bad" data-state="Failed"><span class="state-icon" aria-hidden="true">✕</span> Failed</span></td><td>2</td>`,
		"upstream said 503", `/tasks/b">b</a></td><td><span class="state state-waiting" data-state="Pending">`)

	logs := u.mustGet(base + "?tab=logs")
	logs.contains(t, `id="L1"`, `id="L5"`, `href="#L3"`, "starting the extract", "5 of 5 lines")

	// Search is case-insensitive, keeps the lines' numbers and marks the
	// matched text; every match is in the page.
	found := u.mustGet(base + "?tab=logs&q=needle")
	found.contains(t, `<li id="L3"`, `<li id="L4"`, "the <mark>Needle</mark> is late", "lost the <mark>needle</mark> again", "2 of 5 lines", `value="needle"`)
	found.lacks(t, `id="L1"`, `id="L2"`, `id="L5"`)

	errorsOnly := u.mustGet(base + "?tab=logs&level=WARN")
	errorsOnly.contains(t, `id="L3"`, `id="L4"`)
	errorsOnly.lacks(t, `id="L1"`, `id="L2"`, `id="L5"`)
	if p := u.get(base + "?tab=logs&level=LOUD"); p.status != http.StatusBadRequest {
		t.Errorf("an unknown level = %d, want 400", p.status)
	}

	details := u.mustGet(base + "?tab=details")
	details.contains(t, `id="history"`, `data-state="Scheduled"`, `data-state="Running"`)
	if p := u.get(base + "?tab=nope"); p.status != http.StatusBadRequest {
		t.Errorf("an unknown tab = %d, want 400", p.status)
	}
	if p := u.get("/ui/runs/no-such-run"); p.status != http.StatusNotFound {
		t.Errorf("an unknown run = %d, want 404", p.status)
	}
}

func TestSecretValuesAreNeverShown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const value = "s3cr3t-value-7f1c9a"
	if _, err := e.api.SetSecret(context.Background(), "", "API_KEY", value); err != nil {
		t.Fatal(err)
	}
	e.flow("etl", `"secrets":[{"name":"API_KEY"}]`)
	run := e.run("etl", "")
	e.logs(run.ID, "INFO using the API key")
	u := e.user()
	u.signIn(e.admin)
	for _, path := range []string{"/ui/runs", "/ui/runs/" + run.ID, "/ui/runs/" + run.ID + "?tab=logs", "/ui/runs/" + run.ID + "?tab=details", "/ui/flows", "/ui/preferences", "/ui/runs?flow=etl"} {
		p := u.mustGet(path)
		p.lacks(t, value)
	}
}
