package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/chromedp"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/testenv"
)

// a11yNamedRoles are the roles of controls that must have an accessible
// name: a screen reader would announce one without a name as just
// "button" or "link".
var a11yNamedRoles = map[string]bool{
	"button": true, "link": true, "textbox": true, "searchbox": true, "combobox": true, "listbox": true,
	"checkbox": true, "radio": true, "spinbutton": true, "switch": true, "menuitem": true, "tab": true, "slider": true,
}

// a11yUnnamed returns the controls of the current page's accessibility
// tree (from Chromium's Accessibility domain) that have no name, each as
// "role (DOM description)".
func a11yUnnamed(b *browser) []string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	tree, err := chromedp.Call(ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		b.t.Fatalf("read the accessibility tree: %v", err)
	}
	var bad []string
	for _, n := range tree.Nodes {
		if n.Ignored || n.Role == nil {
			continue
		}
		role := a11yString(n.Role)
		if !a11yNamedRoles[role] {
			continue
		}
		if strings.TrimSpace(a11yString(n.Name)) == "" {
			bad = append(bad, fmt.Sprintf("%s (DOM node %d)", role, n.BackendDOMNodeID))
		}
	}
	if len(bad) > 0 {
		// Say which elements they are: their outer HTML, shortened.
		desc := evalIn[[]string](b, `(() => {
			const out = [];
			for (const el of document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, [role]")) {
				const named = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") || el.textContent.trim() || (el.labels && el.labels.length) || el.title || el.getAttribute("placeholder");
				if (!named) { out.push(el.outerHTML.slice(0, 200)); }
			}
			return out;
		})()`)
		bad = append(bad, desc...)
	}
	return bad
}

// a11yString is an accessibility value's text ("" for none).
func a11yString(v *accessibility.Value) string {
	if v == nil || len(v.Value) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(v.Value, &s); err != nil {
		return string(v.Value)
	}
	return s
}

// a11ySignIn signs the browser in with token.
func a11ySignIn(b *browser, url, token string) {
	b.t.Helper()
	b.do("open the sign-in form", chromedp.Navigate(url+"/ui/login"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#sign-in")))
	b.at("the runs list", func(s string) bool { return s == "/ui/runs" })
}

// TestBrowserAccessibility walks the main pages (a run's tabs and task
// pages included) as an admin (who sees
// every form) and fails on any control in Chromium's accessibility tree
// that has no name; the shortcuts dialog, open, is checked too.
func TestBrowserAccessibility(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testenv.Chrome(t)
	bg := context.Background()
	fl := e.flow("etl", typedParams)
	failed := e.run("etl", `{"day":"2026-11-26"}`)
	e.setState(failed.ID, state.Running, "")
	rn := e.runner(failed.ID)
	rn.task("a", state.Running, "")
	rn.task("a", state.Success, "")
	rn.task("b", state.Running, "")
	rn.task("b", state.Failed, "the upstream API said 503")
	e.logs(failed.ID, "INFO extract started", "ERROR the upstream API said 503")
	e.setState(failed.ID, state.Failed, "the upstream API is down")
	e.run("etl", `{"day":"2026-11-27"}`)
	if _, err := e.api.CreateSchedule(bg, api.CreateSchedule{FlowID: fl.ID, Cron: "0 6 * * *", Timezone: "Europe/Paris", Params: json.RawMessage(`{"day":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.SetSecret(bg, "", "DB_PASSWORD", "hunter2"); err != nil {
		t.Fatal(err)
	}
	if _, err := clientAs(t, e, e.token("agent")).RegisterAgent(bg, api.RegisterAgent{Name: "cpu-1", Labels: []string{"linux"}}); err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, ctx: ctx}
	a11ySignIn(b, e.url, e.admin)

	pages := []string{
		"/ui/runs",
		"/ui/runs?state=Failed",
		"/ui/runs/" + failed.ID + "?tab=tasks",
		"/ui/runs/" + failed.ID + "?tab=logs",
		"/ui/runs/" + failed.ID + "?tab=logs&q=upstream",
		"/ui/runs/" + failed.ID + "?tab=details",
		"/ui/runs/" + failed.ID + "?tab=graph",
		"/ui/runs/" + failed.ID + "?tab=timeline",
		"/ui/runs/" + failed.ID + "/tasks/a",
		"/ui/runs/" + failed.ID + "/tasks/b",
		"/ui/flows",
		"/ui/flows/" + fl.ID,
		"/ui/agents",
		"/ui/secrets",
		"/ui/dashboard",
		"/ui/schedules",
		"/ui/projects",
		"/ui/preferences",
	}
	for _, path := range pages {
		b.do("open "+path, chromedp.Navigate(e.url+path), chromedp.WaitReady(chromedp.CSS("footer")))
		if msg := evalIn[string](b, `(document.getElementById("error") || {}).textContent || ""`); msg != "" {
			t.Errorf("%s shows an error instead of the page: %s", path, msg)
		}
		if bad := a11yUnnamed(b); len(bad) > 0 {
			t.Errorf("%s has controls without a name:\n  %s", path, strings.Join(bad, "\n  "))
		}
	}
	// The check itself finds an unnamed control.
	evalIn[chromedp.Void](b, `document.querySelector("main").appendChild(document.createElement("button")), undefined`)
	if bad := a11yUnnamed(b); len(bad) == 0 {
		t.Error("an unnamed button added to the page was not found: the check checks nothing")
	}
	// The shortcuts dialog, open.
	b.do("open the shortcuts", chromedp.Navigate(e.url+"/ui/runs"), chromedp.WaitVisible(chromedp.CSS("#runs")), chromedp.KeyEvent("?"), chromedp.WaitVisible(chromedp.CSS("#shortcuts-close")))
	if bad := a11yUnnamed(b); len(bad) > 0 {
		t.Errorf("the shortcuts dialog has controls without a name:\n  %s", strings.Join(bad, "\n  "))
	}
}
