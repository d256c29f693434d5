package ui_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/testenv"
)

// browser drives one tab; every step is bounded by its own timeout, never
// the tab's first context.
type browser struct {
	t   *testing.T
	ctx context.Context
}

// do runs steps, failing the test with what it was doing.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func evalIn[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// at waits until the page's path and query satisfy ok and the page has
// loaded (a click that navigates returns before the new page is there).
func (b *browser) at(what string, ok func(string) bool) string {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState === "complete" ? location.pathname + location.search : ""`))
		cancel()
		if err == nil && v != "" {
			last = v
			if ok(v) {
				return v
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting until the browser is at %s; it is at %q", what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// back is the browser's Back button. (chromedp.NavigateBack waits for a
// load event, which a page restored from the back-forward cache never
// fires; at waits for the page instead.) It goes back after the
// evaluation returns, since an evaluation that navigates may fail with
// "Inspected target navigated or closed".
func (b *browser) back() {
	b.t.Helper()
	evalIn[chromedp.Void](b, `setTimeout(function () { history.back(); }, 0)`)
}

func (b *browser) count(css string) int {
	b.t.Helper()
	return evalIn[int](b, `document.querySelectorAll(`+jsString(css)+`).length`)
}

func (b *browser) text(css string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", css, err)
	}
	return s
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// TestBrowserTriage: a user signs in, narrows the runs list to a flow's
// failed runs, opens the failure, searches its logs, and reload and Back
// bring back exactly each view.
func TestBrowserTriage(t *testing.T) {
	e := newEnv(t)
	// The browser after the server: its cleanup runs first, so no page
	// still holds a stream when the server closes.
	ctx := testenv.Chrome(t)
	e.flow("etl", "")
	e.flow("report", "")
	ok := e.run("etl", "")
	failed := e.run("etl", `{}`)
	e.run("report", "")
	e.setState(ok.ID, state.Running, "")
	e.setState(ok.ID, state.Success, "")
	e.setState(failed.ID, state.Running, "")
	e.logs(failed.ID, "INFO extract started", "INFO 1200 rows read", "ERROR the upstream API said 503", "WARN retrying the upstream call", "ERROR giving up")
	e.setState(failed.ID, state.Failed, "the upstream API is down")
	b := &browser{t: t, ctx: ctx}

	// Signed out, the server's root leads to the sign-in form.
	b.do("open the server", chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.at("the login page", func(s string) bool { return strings.HasPrefix(s, "/ui/login?next=") })
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), e.admin), chromedp.Click(chromedp.CSS("#sign-in")))
	b.at("the dashboard", func(s string) bool { return s == "/ui/dashboard" })
	b.do("go to the runs", chromedp.Click(chromedp.CSS(`nav a[href="/ui/runs"]`)))
	b.at("the runs list", func(s string) bool { return s == "/ui/runs" })
	b.do("see the runs", chromedp.WaitVisible(chromedp.CSS("#runs")))
	if n := b.count("#runs tr[data-run]"); n != 3 {
		t.Fatalf("the runs list shows %d runs, want 3", n)
	}

	// Filter: the flow etl, state Failed.
	b.do("filter", chromedp.SetValue(chromedp.CSS("#f-flow"), "etl"), chromedp.SetValue(chromedp.CSS("#f-state"), "Failed"), chromedp.Click(chromedp.CSS("#apply")))
	filtered := b.at("the filtered list", func(s string) bool { return strings.Contains(s, "flow=etl") && strings.Contains(s, "state=Failed") })
	if n := b.count("#runs tr[data-run]"); n != 1 {
		t.Fatalf("the filtered list shows %d runs, want 1", n)
	}
	if s := b.text("#runs tbody tr td"); !strings.Contains(s, "Failed") {
		t.Errorf("the run's state reads %q, want Failed", s)
	}

	// Open the run, then its logs, then search them.
	b.do("open the run", chromedp.Click(chromedp.CSS(`#runs a[href="/ui/runs/`+failed.ID+`"]`)))
	b.at("the run page", func(s string) bool { return s == "/ui/runs/"+failed.ID })
	if s := b.text("#run-state"); !strings.Contains(s, "Failed") || !strings.Contains(s, "the upstream API is down") {
		t.Errorf("the run's state reads %q", s)
	}
	b.do("open the logs", chromedp.Click(chromedp.CSS("#tab-logs")))
	b.at("the logs tab", func(s string) bool { return strings.HasSuffix(s, "?tab=logs") })
	if n := b.count("#log li[id^=L]"); n != 5 {
		t.Fatalf("the logs tab shows %d lines, want 5", n)
	}
	b.do("search the logs", chromedp.SendKeys(chromedp.CSS("#q"), "upstream"), chromedp.Click(chromedp.CSS("#search")))
	b.at("the search", func(s string) bool { return strings.Contains(s, "q=upstream") })
	checkSearch := func(when string) {
		t.Helper()
		if n := b.count("#log li[id^=L]"); n != 2 {
			t.Fatalf("%s: the search shows %d lines, want 2", when, n)
		}
		if ids := evalIn[string](b, `[...document.querySelectorAll("#log li[id^=L]")].map(e => e.id).join(",")`); ids != "L3,L4" {
			t.Errorf("%s: the matching lines are %s, want L3,L4 (numbered in the whole log)", when, ids)
		}
		if m := evalIn[string](b, `[...document.querySelectorAll("#log mark")].map(e => e.textContent).join(",")`); m != "upstream,upstream" {
			t.Errorf("%s: the marked text is %q", when, m)
		}
		if v := evalIn[string](b, `document.getElementById("q").value`); v != "upstream" {
			t.Errorf("%s: the search field holds %q", when, v)
		}
	}
	checkSearch("after searching")
	b.do("reload", chromedp.Reload())
	b.at("the search again", func(s string) bool { return strings.Contains(s, "q=upstream") })
	checkSearch("after a reload")

	// Back walks through the views the URL kept.
	b.back()
	b.at("the unfiltered logs", func(s string) bool { return strings.HasSuffix(s, "?tab=logs") })
	if n := b.count("#log li[id^=L]"); n != 5 {
		t.Errorf("back on the logs tab it shows %d lines, want 5", n)
	}
	b.back()
	b.at("the run page", func(s string) bool { return s == "/ui/runs/"+failed.ID })
	if n := b.count(`#tab-tasks[aria-current="page"]`); n != 1 {
		t.Error("back on the run page, the tasks tab is not the current one")
	}
	b.back()
	b.at("the filtered list", func(s string) bool { return s == filtered })
	if n := b.count("#runs tr[data-run]"); n != 1 {
		t.Errorf("back on the filtered list it shows %d runs, want 1", n)
	}
	if v := evalIn[string](b, `document.getElementById("f-flow").value`); v != "etl" {
		t.Errorf("back on the filtered list the flow filter holds %q, want etl", v)
	}
}
