package ui_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/testenv"
)

// graphSignIn signs the browser in through the login page and lands on path.
func (b *browser) graphSignIn(e *env, path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(e.url+path), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), e.admin), chromedp.Click(chromedp.CSS("#sign-in")))
	b.at(path, func(s string) bool { return s == path })
}

// graphText is the text of an element, SVG ones too (which have no innerText).
func (b *browser) graphText(css string) string {
	b.t.Helper()
	return evalIn[string](b, `(e => e ? e.textContent : "(none)")(document.querySelector(`+jsString(css)+`))`)
}

// TestBrowserGraphLargeFanOut: the graph tab of a run of 50 tasks and a
// 5,000-way map opens as a bounded page with the map as one node and its
// counts, and takes 5,000 state changes of the map's children live,
// without a reload and without a long task over 200 ms, ending with the
// right counts.
func TestBrowserGraphLargeFanOut(t *testing.T) {
	e := newEnv(t)
	// The browser after the server: its cleanup runs first.
	ctx := testenv.Chrome(t)
	e.graphFlow("fanout", 50)
	run := e.run("fanout", "")
	rn := e.runner(run.ID)
	rn.run(state.Running, "")
	rn.graphWrite(state.Success, "items", "p01", "p02")
	rn.graphWrite(state.Running, "work")
	rn.graphWrite(state.Running, graphKeys(0, 5000)...)
	b := &browser{t: t, ctx: ctx}
	path := "/ui/runs/" + run.ID + "?tab=graph"
	b.graphSignIn(e, path)

	// Open it again, signed in, and time it.
	b.do("open the graph tab", chromedp.Navigate(e.url+path), chromedp.WaitVisible(chromedp.CSS("#n-work")))
	b.waitJS("the page loaded", `document.readyState === "complete" && performance.getEntriesByType("navigation")[0].loadEventEnd > 0`)
	timing := evalIn[string](b, `(() => { const n = performance.getEntriesByType("navigation")[0];
		return "response " + Math.round(n.responseEnd - n.startTime) + " ms, DOMContentLoaded " + Math.round(n.domContentLoadedEventEnd - n.startTime) + " ms, load " + Math.round(n.loadEventEnd - n.startTime) + " ms, " + Math.round(n.transferSize / 1024) + " KiB"; })()`)
	t.Logf("the graph tab of a run of 50 tasks and a 5,000-way map opened in: %s", timing)
	if n := evalIn[int](b, `document.getElementsByTagName("*").length`); n >= 2000 {
		t.Errorf("the page holds %d elements, want fewer than 2,000 for any fan-out", n)
	} else {
		t.Logf("the page holds %d elements", n)
	}
	if s := b.graphText("#n-work .gn-counts"); s != "5,000 · 5,000 Running" {
		t.Errorf("the mapped task's node reads %q, want 5,000 · 5,000 Running", s)
	}
	if n := b.count("svg.graph .gnode"); n != 51 {
		t.Errorf("the graph draws %d nodes, want 51", n)
	}
	evalIn[int](b, `window.__marker = 1`)
	evalIn[bool](b, `window.__long = []; new PerformanceObserver(l => l.getEntries().forEach(e => window.__long.push(Math.round(e.duration)))).observe({type: "longtask"}); true`)

	// 5,000 children finish, in batches of 500 as a runner sends them.
	for i := 0; i < 5000; i += 500 {
		rn.graphWrite(state.Success, graphKeys(i, i+500)...)
	}
	b.waitJS("the counts reach 5,000 Success", `document.querySelector("#n-work .gn-counts").textContent === "5,000 · 5,000 Success"`)
	if s := b.graphText("#n-work title"); !strings.Contains(s, "5,000 · 5,000 Success") {
		t.Errorf("the node's title reads %q", s)
	}
	long := evalIn[[]int](b, `window.__long`)
	t.Logf("long tasks while 5,000 changes streamed in: %v ms", long)
	for _, d := range long {
		if d > 200 {
			t.Errorf("a long task of %d ms ran while 5,000 state changes streamed in (budget: none over 200 ms); all: %v", d, long)
		}
	}
	if m := evalIn[int](b, `window.__marker || 0`); m != 1 {
		t.Fatal("the graph tab was reloaded")
	}
	if n := evalIn[int](b, `document.getElementsByTagName("*").length`); n >= 2000 {
		t.Errorf("after the stream the page holds %d elements", n)
	}
	// The timeline and tasks tabs are as small: the map is one row.
	for _, tab := range []struct{ name, counts string }{
		{"timeline", "#tl-work .group-counts"},
		{"tasks", `#tasks tr[data-task="work"] .group-counts`},
	} {
		b.do("open the "+tab.name+" tab", chromedp.Navigate(e.url+"/ui/runs/"+run.ID+"?tab="+tab.name), chromedp.WaitVisible(chromedp.CSS(tab.counts)))
		if s := b.text(tab.counts); s != "5,000 · 5,000 Success" {
			t.Errorf("the %s tab's mapped row reads %q", tab.name, s)
		}
		if n := evalIn[int](b, `document.getElementsByTagName("*").length`); n >= 2000 {
			t.Errorf("the %s tab holds %d elements, want fewer than 2,000", tab.name, n)
		}
	}
}

// TestBrowserGraphLive: watch a run live from Pending to Success without
// reload on the graph tab: nodes turn from dashed to running to done, the
// mapped task's counts grow, the badge ends Success; the timeline tab
// then shows a bar per task.
func TestBrowserGraphLive(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Chrome(t)
	e.graphFlow("small", 4) // items, work (mapped), p01, p02, report
	run := e.run("small", "")
	rn := e.runner(run.ID)
	b := &browser{t: t, ctx: ctx}
	path := "/ui/runs/" + run.ID + "?tab=graph"
	b.graphSignIn(e, path)
	b.do("see the graph", chromedp.WaitVisible(chromedp.CSS("#n-report")))
	if n := b.count("svg.graph .gn-notstarted"); n != 5 {
		t.Errorf("before the run, %d nodes are dashed, want all 5", n)
	}
	evalIn[int](b, `window.__marker = 1`)
	evalIn[bool](b, `window.__errors = []; window.addEventListener("error", e => window.__errors.push(e.message)); true`)
	node := func(key, st, cls string) string {
		return fmt.Sprintf(`(n => n && n.getAttribute("data-state") === %q && n.classList.contains(%q) && !n.classList.contains("gn-notstarted"))(document.getElementById("n-%s"))`, st, cls, key)
	}

	rn.run(state.Running, "")
	rn.graphWrite(state.Running, "items")
	b.waitJS("items runs", node("items", "Running", "gn-active"))
	if s := b.graphText("#n-items .gn-state"); s != "Running" {
		t.Errorf("the running node says %q", s)
	}
	rn.graphWrite(state.Success, "items")
	rn.graphWrite(state.Running, "work", "work[0]", "work[1]", "work[2]", "p01")
	b.waitJS("the map runs", `document.querySelector("#n-work .gn-counts").textContent === "3 · 3 Running"`)
	b.waitJS("items is done", node("items", "Success", "gn-ok"))
	b.waitJS("the group is running", node("work", "Running", "gn-active"))
	rn.graphWrite(state.Success, "work[0]", "work[1]", "work[2]", "p01")
	rn.graphWrite(state.Mapped, "work")
	rn.graphWrite(state.Success, "p02")
	rn.graphWrite(state.Success, "report")
	rn.run(state.Success, "all done")
	b.waitJS("the badge is Success", `!!document.querySelector('#run-state [data-state="Success"]')`)
	b.waitJS("the map is done", `document.querySelector("#n-work .gn-counts").textContent === "3 · 3 Success"`)
	b.waitJS("report is done", node("report", "Success", "gn-ok"))
	if n := b.count("svg.graph .gn-notstarted"); n != 0 {
		t.Errorf("after the run, %d nodes are still dashed", n)
	}
	if m := evalIn[int](b, `window.__marker || 0`); m != 1 {
		t.Fatal("the graph tab was reloaded")
	}
	if errs := evalIn[[]string](b, `window.__errors`); len(errs) > 0 {
		t.Errorf("the page's script failed: %v", errs)
	}

	// The timeline: a bar per task, the mapped task one row with counts.
	b.do("open the timeline", chromedp.Click(chromedp.CSS("#tab-timeline")))
	b.at("the timeline tab", func(s string) bool { return strings.HasSuffix(s, "?tab=timeline") })
	if n := b.count("#timeline .tl-row"); n != 5 {
		t.Errorf("the timeline has %d rows, want 5", n)
	}
	if s := b.text("#tl-work .group-counts"); s != "3 · 3 Success" {
		t.Errorf("the mapped row's counts read %q", s)
	}
	if n := evalIn[int](b, `[...document.querySelectorAll("#timeline .tl-bar")].filter(r => r.getAttribute("width") !== "0").length`); n != 5 {
		t.Errorf("%d of 5 rows have a bar", n)
	}
}

// TestBrowserTasksGroupLive: on the tasks tab, a map that starts while
// the page is open appears as one row whose counts follow its children,
// never a row per child.
func TestBrowserTasksGroupLive(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Chrome(t)
	e.graphFlow("small", 4)
	run := e.run("small", "")
	rn := e.runner(run.ID)
	rn.run(state.Running, "")
	rn.graphWrite(state.Running, "items")
	b := &browser{t: t, ctx: ctx}
	path := "/ui/runs/" + run.ID + "?tab=tasks"
	b.graphSignIn(e, path)
	b.do("see the tasks", chromedp.WaitVisible(chromedp.CSS(`#tasks tr[data-task="items"]`)))
	evalIn[int](b, `window.__marker = 1`)

	rn.graphWrite(state.Success, "items")
	rn.graphWrite(state.Running, graphKeys(0, 300)...)
	row := `#tasks tr[data-task="work"][data-group]`
	b.waitJS("the map's row appears", `(r => !!r && r.querySelector(".group-counts").textContent === "300 · 300 Running")(document.querySelector(`+jsString(row)+`))`)
	rn.graphWrite(state.Success, graphKeys(0, 300)...)
	b.waitJS("its counts follow", `document.querySelector(`+jsString(row+" .group-counts")+`).textContent === "300 · 300 Success"`)
	if n := b.count(`#tasks tr[data-task^="work["]`); n != 0 {
		t.Errorf("the tasks tab shows %d rows of children, want none", n)
	}
	if href := evalIn[string](b, `document.querySelector(`+jsString(row+" a")+`).getAttribute("href")`); href != "/ui/runs/"+run.ID+"/tasks/work" {
		t.Errorf("the map's row links to %q", href)
	}
	if n := b.count(`#tasks tbody tr`); n != 2 {
		t.Errorf("the tasks tab has %d rows, want 2 (items, work)", n)
	}
	if m := evalIn[int](b, `window.__marker || 0`); m != 1 {
		t.Fatal("the tasks tab was reloaded")
	}
}
