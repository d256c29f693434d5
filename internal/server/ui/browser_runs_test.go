package ui_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/testenv"
)

// runsListIDs are the run IDs of the rows the browser shows.
func runsListIDs(b *browser) string {
	b.t.Helper()
	return evalIn[string](b, `[...document.querySelectorAll("#runs tr[data-run]")].map(e => e.dataset.run).join(",")`)
}

// runsListStates are the distinct states of the rows the browser shows.
func runsListStates(b *browser) string {
	b.t.Helper()
	return evalIn[string](b, `[...new Set([...document.querySelectorAll("#runs tr[data-run] .c-state .state")].map(e => e.dataset.state))].sort().join(",")`)
}

// runsListWait waits until expr is true in a page that has loaded, across
// a page load (waitJS tries an evaluation the navigation interrupts again).
func runsListWait(b *browser, what, expr string) {
	b.t.Helper()
	b.waitJS(what, `document.readyState === "complete" && !!(`+expr+`)`)
}

// TestBrowserRunsList: a running run's duration ticks and a row's state
// changes in place; a new run shows behind the "N new — show" banner
// without a reload; filters and paging survive reload and Back; and a
// bulk cancel over a filter acts on every page, after confirming the count.
func TestBrowserRunsList(t *testing.T) {
	e := newEnv(t)
	// The browser after the server: its cleanup runs first.
	ctx := testenv.Chrome(t)
	e.flow("etl", "")
	e.flow("report", "")
	etl := runsListNewest(e, "etl", 65)
	report := runsListNewest(e, "report", 3)
	e.setState(report[0], state.Running, "")
	b := &browser{t: t, ctx: ctx}

	b.do("open the runs", chromedp.Navigate(e.url+"/ui/runs?limit=25"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), e.admin), chromedp.Click(chromedp.CSS("#sign-in")))
	all := b.at("the runs list", func(s string) bool { return s == "/ui/runs?limit=25" })
	b.do("see the runs", chromedp.WaitVisible(chromedp.CSS("#runs")))
	evalIn[int](b, `window.__runsMarker = 1`)

	// Live without a reload: the running run's duration ticks, another
	// run's badge turns Running, and a new run waits behind the banner.
	dur := `#runs tr[data-run="` + report[0] + `"] .c-dur`
	first := b.text(dur)
	b.waitJS("the duration ticks", `document.querySelector(`+jsString(dur)+`).textContent !== `+jsString(first))
	e.setState(report[1], state.Running, "")
	b.waitJS("the badge turns Running", `!!document.querySelector('#runs tr[data-run="`+report[1]+`"] .c-state [data-state="Running"]')`)
	if !evalIn[bool](b, `document.getElementById("new-runs").hidden`) {
		t.Error("the new-runs banner shows before any new run")
	}
	rows := runsListIDs(b)
	fresh := e.run("report", "").ID
	b.waitJS("the banner shows", `!document.getElementById("new-runs").hidden`)
	if s := b.text("#new-runs"); s != "1 new run — show" {
		t.Errorf("the banner reads %q, want 1 new run — show", s)
	}
	if got := runsListIDs(b); got != rows {
		t.Error("the new run pushed the rows")
	}
	if m := evalIn[int](b, `window.__runsMarker || 0`); m != 1 {
		t.Fatal("the runs list was reloaded")
	}
	b.do("show the new run", chromedp.Click(chromedp.CSS("#show-new")))
	runsListWait(b, "the list is reloaded", `!window.__runsMarker`)
	b.at("the first page", func(s string) bool { return s == all })
	if got := runsListIDs(b); !strings.HasPrefix(got, fresh+",") {
		t.Errorf("after show the first row is not the new run: %s", got)
	}
	if !evalIn[bool](b, `document.getElementById("new-runs").hidden`) {
		t.Error("after show the banner still shows")
	}

	// The run page's duration ticks once the run starts, and stops when
	// it ends.
	b.do("open a scheduled run", chromedp.Navigate(e.url+"/ui/runs/"+report[2]), chromedp.WaitVisible(chromedp.CSS("#run-duration")))
	if s := b.text("#run-duration"); s != "—" {
		t.Errorf("a scheduled run's duration reads %q", s)
	}
	e.setState(report[2], state.Running, "")
	b.waitJS("the run page's badge turns Running", `!!document.querySelector('#run-state [data-state="Running"]')`)
	b.waitJS("the run page's duration ticks", `document.getElementById("run-duration").hasAttribute("data-tick")`)
	started := b.text("#run-duration")
	b.waitJS("the run page's duration moves", `document.getElementById("run-duration").textContent !== `+jsString(started))
	e.setState(report[2], state.Success, "")
	b.waitJS("the run page's badge turns Success", `!!document.querySelector('#run-state [data-state="Success"]')`)
	b.waitJS("the run page's duration stops", `!document.getElementById("run-duration").hasAttribute("data-tick")`)
	b.do("back to the runs", chromedp.Navigate(e.url+all), chromedp.WaitVisible(chromedp.CSS("#runs")))

	// Filters and paging; reload and Back restore each view.
	b.do("filter by flow", chromedp.SetValue(chromedp.CSS("#f-flow"), "etl"), chromedp.Click(chromedp.CSS("#apply")))
	filtered := b.at("the filtered list", func(s string) bool { return strings.Contains(s, "flow=etl") && strings.Contains(s, "limit=25") })
	page1 := runsListIDs(b)
	if want := strings.Join(etl[:25], ","); page1 != want {
		t.Fatalf("page 1 of etl shows %s, want %s", page1, want)
	}
	b.do("next page", chromedp.Click(chromedp.CSS("#next")))
	paged := b.at("page 2", func(s string) bool { return strings.Contains(s, "cursor=") })
	page2 := runsListIDs(b)
	if want := strings.Join(etl[25:50], ","); page2 != want {
		t.Fatalf("page 2 of etl shows %s, want %s", page2, want)
	}
	if b.count("#new-runs") != 0 {
		t.Error("page 2 has a new-runs banner")
	}
	b.do("reload", chromedp.Reload())
	b.at("page 2 again", func(s string) bool { return s == paged })
	if got := runsListIDs(b); got != page2 {
		t.Errorf("after a reload page 2 shows %s", got)
	}
	b.back()
	b.at("page 1", func(s string) bool { return s == filtered })
	if got := runsListIDs(b); got != page1 {
		t.Errorf("back on page 1 it shows %s", got)
	}
	if v := evalIn[string](b, `document.getElementById("f-flow").value`); v != "etl" {
		t.Errorf("back on page 1 the flow filter holds %q", v)
	}
	b.back()
	b.at("the unfiltered list", func(s string) bool { return s == all })
	if v := evalIn[string](b, `document.getElementById("f-flow").value`); v != "" {
		t.Errorf("back on the unfiltered list the flow filter holds %q", v)
	}

	// Bulk cancel over the filter: all 65 runs on 3 pages.
	b.do("open the filtered list", chromedp.Navigate(e.url+filtered), chromedp.WaitVisible(chromedp.CSS("#bulk-cancel")))
	b.do("bulk cancel", chromedp.Click(chromedp.CSS("#bulk-cancel")))
	b.at("the confirmation", func(s string) bool { return s == "/ui/runs/bulk" })
	b.do("see the question", chromedp.WaitVisible(chromedp.CSS("#bulk-confirm")))
	if s := b.text("#bulk-question"); s != "Cancel 65 runs matching flow=etl?" {
		t.Errorf("the confirmation asks %q", s)
	}
	if s := b.text("#bulk-pinned"); !strings.HasPrefix(s, "Only runs created before ") {
		t.Errorf("the confirmation does not say which runs it pins: %q", s)
	}
	b.do("confirm", chromedp.Click(chromedp.CSS("#bulk-confirm")))
	b.do("see the summary", chromedp.WaitVisible(chromedp.CSS("#bulk-summary")))
	if s := b.text("#bulk-done"); s != "65" {
		t.Errorf("the summary says %s runs cancelled, want 65", s)
	}
	b.do("back to the runs", chromedp.Click(chromedp.CSS("#bulk-back")))
	b.at("the filtered list", func(s string) bool { return strings.Contains(s, "flow=etl") && !strings.Contains(s, "cursor=") })
	for i, n := range []int{25, 25, 15} {
		if i > 0 {
			b.do("next page", chromedp.Click(chromedp.CSS("#next")))
			runsListWait(b, "the next page", `(new URLSearchParams(location.search)).getAll("prev").length === `+string(rune('0'+i)))
		}
		if got := b.count("#runs tr[data-run]"); got != n {
			t.Errorf("page %d shows %d runs, want %d", i+1, got, n)
		}
		if s := runsListStates(b); s != "Cancelled" {
			t.Errorf("page %d shows states %s, want all Cancelled", i+1, s)
		}
	}
	if b.count("#next") != 0 {
		t.Error("the last page has a Next link")
	}
	for _, id := range report {
		if k := e.state(id); k == state.Cancelled || k == state.Cancelling {
			t.Errorf("the bulk cancel of etl cancelled report run %s", id)
		}
	}
}
