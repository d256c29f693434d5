package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/security"
	"github.com/chromedp/chromedp"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/testenv"
)

// logsSignIn opens path in the browser, signs in on the page it is sent
// to, and waits until it is back at path.
func logsSignIn(b *browser, e *env, path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(e.url+path), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), e.admin), chromedp.Click(chromedp.CSS("#sign-in")))
	b.at(path, func(s string) bool { return s == path })
}

// logsTab opens another tab of the browser (same cookies), closed when the
// test ends. (The tab is created by a first action without a timeout: the
// end of the first action's context would close it.)
func logsTab(t *testing.T, ctx context.Context) *browser {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return &browser{t: t, ctx: tab}
}

// logsClick clicks a node with the shift key held or not.
func (b *browser) logsClick(css string, shift bool) {
	b.t.Helper()
	var opts []chromedp.MouseOption
	if shift {
		opts = append(opts, chromedp.ButtonModifiers(chromedp.ModifierShift))
	}
	b.do("click "+css, chromedp.QueryAfter(chromedp.CSS(css), func(ctx context.Context, t *chromedp.Target, nodes []*chromedp.Node) (chromedp.Void, error) {
		_, err := chromedp.MouseClickNode(nodes[0], opts...)(ctx, t)
		return chromedp.Void{}, err
	}))
}

// TestBrowserLogsSearchAndRange: a 20,000-line log is searched in the
// page (every match in the page, marked, numbered as in the whole log);
// a #L120-L140 link opened in a fresh tab highlights the range with line
// 120 in view; clicking and shift-clicking line numbers selects a range
// and puts it in the URL.
func TestBrowserLogsSearchAndRange(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Chrome(t)
	e.flow("etl", "")
	lines := make([]logsLine, 20_000)
	var want []string
	for i := range lines {
		lines[i] = logsLine{"", "INFO", fmt.Sprintf("batch %d: 1200 rows read", i+1), ""}
		if (i+1)%1000 == 321 {
			lines[i] = logsLine{"", "ERROR", fmt.Sprintf("batch %d: the upstream said 503 (Service Unavailable)", i+1), ""}
			want = append(want, fmt.Sprintf("L%d", i+1))
		}
	}
	run := logsSeed(e, "etl", lines)
	b := &browser{t: t, ctx: ctx}
	path := "/ui/runs/" + run.ID + "?tab=logs"
	logsSignIn(b, e, path)
	b.do("see the log", chromedp.WaitVisible(chromedp.CSS("#L20000")))

	b.do("search", chromedp.SendKeys(chromedp.CSS("#q"), "service unavailable"), chromedp.Click(chromedp.CSS("#search")))
	b.at("the search", func(s string) bool { return strings.Contains(s, "q=service+unavailable") })
	if ids := evalIn[string](b, `[...document.querySelectorAll("#log li[id^=L]")].map(e => e.id).join(",")`); ids != strings.Join(want, ",") {
		t.Errorf("the search shows %s, want %s", ids, strings.Join(want, ","))
	}
	if n := evalIn[int](b, `[...document.querySelectorAll("#log mark")].filter(m => m.textContent === "Service Unavailable").length`); n != len(want) {
		t.Errorf("%d marks read Service Unavailable, want %d", n, len(want))
	}
	if s := b.text("#log-count"); s != fmt.Sprintf("%d of 20000 lines.", len(want)) {
		t.Errorf("the count reads %q", s)
	}
	if href := evalIn[string](b, `document.getElementById("log-download").getAttribute("href")`); href != "/ui/runs/"+run.ID+"/logs.txt?q=service+unavailable" {
		t.Errorf("the download link is %q", href)
	}

	// A range none of whose lines matched: the page scrolls to where it
	// would be, the next matching line.
	// ("batch 3" matches lines 3, 30-39, 300-399 (and 321) and 3000-3999.)
	b.do("search batch 3 with a range", chromedp.Navigate(e.url+path+"&q=batch+3#L400-L2999"), chromedp.WaitVisible(chromedp.CSS("#L3999")))
	b.waitJS("line 3000 is at the top", `(r => r.top >= 0 && r.top < 100)(document.getElementById("L3000").getBoundingClientRect())`)
	if n := b.count("#log li.sel"); n != 0 {
		t.Errorf("%d lines are highlighted; none of the range matched", n)
	}

	// A link to a range, in a fresh tab.
	tab := logsTab(t, ctx)
	link := path + "#L120-L140"
	tab.do("open the range link", chromedp.Navigate(e.url+link), chromedp.WaitVisible(chromedp.CSS("#L140")))
	tab.waitJS("the range is highlighted", `document.querySelectorAll("#log li.sel").length === 21`)
	if ids := evalIn[string](tab, `[...document.querySelectorAll("#log li.sel")].map(e => e.id).join(",")`); !strings.HasPrefix(ids, "L120,L121,") || !strings.HasSuffix(ids, ",L140") {
		t.Errorf("the highlighted lines are %s, want L120 to L140", ids)
	}
	if !evalIn[bool](tab, `(r => r.top >= 0 && r.top < window.innerHeight)(document.getElementById("L120").getBoundingClientRect())`) {
		t.Errorf("line 120 is not in view: its top is at %v, the window is %v high",
			evalIn[float64](tab, `document.getElementById("L120").getBoundingClientRect().top`), evalIn[float64](tab, `window.innerHeight`))
	}
	if y := evalIn[float64](tab, `window.scrollY`); y < 1000 {
		t.Errorf("the page did not scroll to line 120 (scrollY %v)", y)
	}
	if c := evalIn[string](tab, `getComputedStyle(document.getElementById("L130")).backgroundColor + "|" + getComputedStyle(document.getElementById("L141")).backgroundColor`); strings.Split(c, "|")[0] == strings.Split(c, "|")[1] {
		t.Errorf("line 130 in the range looks like line 141 outside it (%s)", c)
	}

	// Click a line number, shift-click another: the range and the URL follow.
	entries := evalIn[int](tab, `history.length`)
	tab.logsClick("#L150 a.ln", false)
	tab.waitJS("line 150 is selected", `location.hash === "#L150" && document.querySelectorAll("#log li.sel").length === 1`)
	tab.logsClick("#L145 a.ln", true)
	tab.waitJS("lines 145 to 150 are selected", `location.hash === "#L145-L150" && document.querySelectorAll("#log li.sel").length === 6`)
	if s := evalIn[string](tab, `location.pathname + location.search`); s != path {
		t.Errorf("the range click moved the page to %s", s)
	}
	if n := evalIn[int](tab, `history.length`); n != entries {
		t.Errorf("selecting lines added %d history entries; the hash is replaced, not pushed", n-entries)
	}
}

// TestBrowserLogsTail: a runner writes lines while the logs tab is open in
// follow mode. At the bottom the page follows them; scrolled up it stays
// where the reader is and the "N new lines" badge counts what came;
// scrolled back to the bottom, it follows again.
func TestBrowserLogsTail(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Chrome(t)
	e.flow("etl", "")
	first := make([]logsLine, 300)
	for i := range first {
		first[i] = logsLine{"", "INFO", fmt.Sprintf("warm-up line %d", i+1), ""}
	}
	run := logsSeed(e, "etl", first)
	b := &browser{t: t, ctx: ctx}
	path := "/ui/runs/" + run.ID + "?tab=logs"
	logsSignIn(b, e, path)
	b.do("see the log", chromedp.WaitVisible(chromedp.CSS("#L300")))
	evalIn[int](b, `window.__marker = 1`)

	// The runner writes a line every 40 ms until the test ends.
	rn := e.runner(run.ID)
	wctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; wctx.Err() == nil; i++ {
			err := rn.api.AppendLogs(wctx, run.ID, []api.LogLine{{Time: time.Now(), Level: "INFO", Message: fmt.Sprintf("tail line %d", i)}})
			if err != nil && wctx.Err() == nil {
				t.Errorf("append a line: %v", err)
				return
			}
			select {
			case <-wctx.Done():
			case <-time.After(40 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { stop(); wg.Wait() })
	lines := func() int { return b.count("#log li[id^=L]") }
	bottom := `window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2`

	// At the bottom: it follows.
	evalIn[chromedp.Void](b, `window.scrollTo(0, document.documentElement.scrollHeight)`)
	n := lines()
	b.waitJS("ten lines more", fmt.Sprintf(`document.querySelectorAll("#log li[id^=L]").length >= %d`, n+10))
	b.waitJS("the page follows to the bottom", bottom)
	if !evalIn[bool](b, `document.getElementById("new-lines").hidden`) {
		t.Error("following at the bottom, the new lines badge shows")
	}

	// Scrolled up: not pulled down, and the badge counts the new lines.
	at := evalIn[int](b, `window.scrollTo(0, 400), document.querySelectorAll("#log li[id^=L]").length`)
	b.waitJS("ten lines more", fmt.Sprintf(`document.querySelectorAll("#log li[id^=L]").length >= %d`, at+10))
	got := evalIn[[]any](b, `[window.scrollY, document.querySelectorAll("#log li[id^=L]").length, document.getElementById("new-lines").hidden, document.getElementById("new-lines").textContent]`)
	if y := got[0].(float64); y != 400 {
		t.Errorf("scrolled up to 400, the page moved to %v while lines came", y)
	}
	if want := fmt.Sprintf("%d new lines ↓", int(got[1].(float64))-at); got[2].(bool) || got[3].(string) != want {
		t.Errorf("the badge is hidden=%v %q, want %q", got[2], got[3], want)
	}

	// Back at the bottom: the badge goes and the page follows again.
	evalIn[chromedp.Void](b, `window.scrollTo(0, document.documentElement.scrollHeight)`)
	b.waitJS("the badge hides", `document.getElementById("new-lines").hidden`)
	n = lines()
	b.waitJS("ten lines more", fmt.Sprintf(`document.querySelectorAll("#log li[id^=L]").length >= %d`, n+10))
	b.waitJS("the page follows to the bottom again", bottom)
	if !evalIn[bool](b, `document.getElementById("new-lines").hidden`) {
		t.Error("following again, the new lines badge shows")
	}
	if m := evalIn[int](b, `window.__marker || 0`); m != 1 {
		t.Fatal("the logs tab was reloaded")
	}
	// No line twice, none missing: numbered 1, 2, 3, ... in order.
	if bad := evalIn[string](b, `[...document.querySelectorAll("#log li[id^=L]")].map((e, i) => e.id === "L" + (i + 1) ? "" : e.id).join("")`); bad != "" {
		t.Errorf("the log's lines are out of order or repeated: %s", bad)
	}
}

// TestBrowserLogsManyTabs: eight run pages open at once in one browser, on
// plain HTTP/1.1 (httptest.Server), each of a live run: a change of each
// run's task reaches its tab.
//
// A browser opens at most 6 connections to a host over HTTP/1.1, and
// headless Chromium's tabs are all visible (so none closes its stream):
// with one stream per tab, six tabs would hold every connection and the
// seventh could not even load its page. static/live.js holds one stream
// per browser (a leader tab's, shared over a BroadcastChannel).
// TestBrowserLogsManyTabsHTTP2 shows the same tabs keep updating over
// HTTP/2, which carries every stream on one connection.
func TestBrowserLogsManyTabs(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Chrome(t)
	logsManyTabs(t, e, ctx, "http/1.1", e.runner)
}

// TestBrowserLogsManyTabsHTTP2: the eight tabs over HTTPS and HTTP/2 (as
// behind a TLS proxy) all keep updating.
func TestBrowserLogsManyTabsHTTP2(t *testing.T) {
	e, hc := logsTLSEnv(t)
	ctx := testenv.Chrome(t)
	if _, err := chromedp.Call(ctx, security.SetIgnoreCertificateErrors, security.SetIgnoreCertificateErrorsParams{Ignore: true}); err != nil {
		t.Fatalf("accept the test server's certificate: %v", err)
	}
	logsManyTabs(t, e, ctx, "h2", func(id string) *runner {
		nt, err := e.api.MintRunToken(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := client.New(e.url, nt.Secret, client.WithHTTPClient(hc))
		if err != nil {
			t.Fatal(err)
		}
		return &runner{t: t, id: id, api: cl, ver: map[string]int64{}}
	})
}

// logsTLSEnv is newEnv's server over HTTPS with HTTP/2, and an HTTP client
// that trusts it.
func logsTLSEnv(t *testing.T) (*env, *http.Client) {
	t.Helper()
	srv, admin := newServer(t)
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.EnableHTTP2 = true
	hs.StartTLS()
	t.Cleanup(hs.Close)
	cl, err := client.New(hs.URL, admin, client.WithHTTPClient(hs.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, url: hs.URL, admin: admin, api: cl}, hs.Client()
}

// logsManyTabs opens a live run page in each of 8 tabs and checks that a
// change of each run's task reaches its tab. The pages must have come
// over proto (as the browser names it: "http/1.1", "h2").
func logsManyTabs(t *testing.T, e *env, ctx context.Context, proto string, newRunner func(id string) *runner) {
	t.Helper()
	e.flow("etl", "")
	const tabs = 8
	var runners []*runner
	var ids []string
	for range tabs {
		run := e.run("etl", "")
		rn := newRunner(run.ID)
		rn.run(state.Running, "")
		rn.task("extract", state.Running, "")
		runners = append(runners, rn)
		ids = append(ids, run.ID)
	}
	first := &browser{t: t, ctx: ctx}
	logsSignIn(first, e, "/ui/runs/"+ids[0])
	bs := []*browser{first}
	for i := 1; i < tabs; i++ {
		b := logsTab(t, ctx)
		b.do("open run "+ids[i], chromedp.Navigate(e.url+"/ui/runs/"+ids[i]))
		bs = append(bs, b)
	}
	for i, b := range bs {
		b.do("see run "+ids[i], chromedp.WaitVisible(chromedp.CSS(`#tasks tr[data-task="extract"]`)))
		if p := evalIn[string](b, `performance.getEntriesByType("navigation")[0].nextHopProtocol`); p != proto {
			t.Fatalf("tab %d's page came over %q, want %q", i, p, proto)
		}
	}
	for i, rn := range runners {
		rn.task("extract", state.Success, fmt.Sprintf("tab %d done", i))
	}
	for i, b := range bs {
		b.waitJS(fmt.Sprintf("tab %d shows its task's change", i), `!!document.querySelector('#tasks tr[data-task="extract"] [data-state="Success"]')`)
	}
}
