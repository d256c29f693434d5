package ui_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
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
