package ui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/testenv"
)

// runner is the API client of a run's program: it writes with a run token.
type runner struct {
	t   testing.TB
	id  string
	api *client.Client
	ver map[string]int64 // task key → version
}

func (e *env) runner(id string) *runner {
	e.t.Helper()
	nt, err := e.api.MintRunToken(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	cl, err := client.New(e.url, nt.Secret)
	if err != nil {
		e.t.Fatal(err)
	}
	return &runner{t: e.t, id: id, api: cl, ver: map[string]int64{}}
}

// task moves a task run to kind.
func (rn *runner) task(key string, kind state.Kind, msg string) {
	rn.t.Helper()
	trs, err := rn.api.WriteTaskRunStates(context.Background(), rn.id, []api.TaskRunWrite{{Key: key, Task: key, ExpectVersion: rn.ver[key], State: state.State{Kind: kind, Message: msg, Time: time.Now()}}})
	if err != nil {
		rn.t.Fatal(err)
	}
	for _, tr := range trs {
		rn.ver[tr.Key] = tr.Version
	}
}

// run moves the run to kind.
func (rn *runner) run(kind state.Kind, msg string) {
	rn.t.Helper()
	ctx := context.Background()
	det, err := rn.api.FlowRun(ctx, rn.id)
	if err != nil {
		rn.t.Fatal(err)
	}
	if _, err := rn.api.SetFlowRunState(ctx, rn.id, api.SetState{State: state.State{Kind: kind, Message: msg, Time: time.Now()}, ExpectVersion: det.FlowRun.Version}); err != nil {
		rn.t.Fatal(err)
	}
}

func (rn *runner) logs(lines ...string) {
	rn.t.Helper()
	var ls []api.LogLine
	for _, l := range lines {
		level, msg, _ := strings.Cut(l, " ")
		ls = append(ls, api.LogLine{Time: time.Now(), Level: level, Message: msg})
	}
	if err := rn.api.AppendLogs(context.Background(), rn.id, ls); err != nil {
		rn.t.Fatal(err)
	}
}

// sse is one server-sent event.
type sse struct {
	id, event, data string
}

// stream is an open event stream of the UI.
type stream struct {
	t      testing.TB
	events chan sse
	cancel func()
	status int
	seen   []sse // every event read
}

// events opens path as an event stream with the user's cookies.
func (u *user) events(path, lastID string) *stream {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	req, err := http.NewRequestWithContext(ctx, "GET", u.e.url+path, nil)
	if err != nil {
		u.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := u.hc.Do(req)
	if err != nil {
		cancel()
		u.t.Fatal(err)
	}
	s := &stream{t: u.t, events: make(chan sse, 1000), cancel: func() { cancel(); res.Body.Close() }, status: res.StatusCode}
	u.t.Cleanup(s.cancel)
	if res.StatusCode != http.StatusOK {
		close(s.events)
		return s
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		u.t.Errorf("events Content-Type %q", ct)
	}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					s.events <- ev
				}
				ev = sse{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return s
}

// next returns the next event, failing after a while without one; ok is
// false at the end of the stream.
func (s *stream) next() (sse, bool) {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if ok {
			s.seen = append(s.seen, ev)
		}
		return ev, ok
	case <-time.After(10 * time.Second):
		s.t.Fatal("no event in 10s")
	}
	return sse{}, false
}

// want reads events until one of kind whose data has every one of parts.
func (s *stream) want(event string, parts ...string) sse {
	s.t.Helper()
	var seen []string
	for {
		ev, ok := s.next()
		if !ok {
			s.t.Fatalf("the stream ended before a %s event with %q; it sent %s", event, parts, seen)
		}
		seen = append(seen, ev.event+" "+ev.data)
		if ev.event != event {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(ev.data, p)
		}
		if all {
			return ev
		}
	}
}

// TestLiveEvents: the run page's event stream sends a run's state, its
// task runs' states and new log lines as a runner writes them, resumes
// after Last-Event-ID without repeating lines, refuses a signed-out user,
// and ends once the run finished and everything was sent.
func TestLiveEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	run := e.run("etl", "")
	rn := e.runner(run.ID)
	rn.run(state.Running, "")
	rn.logs("INFO before the page")
	path := "/ui/runs/" + run.ID + "/events"

	u := e.user()
	if s := u.events(path, ""); s.status != http.StatusUnauthorized {
		t.Fatalf("signed out: events = %d, want 401", s.status)
	}
	u.signIn(e.admin)
	if s := u.events("/ui/runs/nope/events", ""); s.status != http.StatusNotFound {
		t.Errorf("events of no run = %d, want 404", s.status)
	}

	// The page showed line 1 (its ID is in the page); the stream starts after it.
	page := u.mustGet("/ui/runs/" + run.ID + "?tab=logs")
	page.contains(t, `data-live`, `data-n="1"`, `id="run-head" data-run="`+run.ID+`"`)
	lines, err := e.api.Logs(context.Background(), run.ID, client.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	first := lines.Logs[0].ID
	page.contains(t, fmt.Sprintf(`data-after="%d"`, first))

	s := u.events(fmt.Sprintf("%s?after=%d&n=1", path, first), "")
	s.want("run", `"state":"Running"`, `"class":"active"`)
	rn.task("extract", state.Running, "")
	s.want("task", `"key":"extract"`, `"state":"Running"`)
	rn.logs("INFO line two", "WARN line three")
	defer noLine(t, s, "before the page")
	two := s.want("log", `"message":"line two"`, `"n":2`, `"level":"INFO"`)
	three := s.want("log", `"message":"line three"`, `"n":3`)
	var l3 struct {
		ID int64 `json:"id"`
		N  int   `json:"n"`
	}
	if err = json.Unmarshal([]byte(three.data), &l3); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d.3.", l3.ID); !strings.HasPrefix(three.id, want) {
		t.Errorf("the third line's event id is %q, want %q and the task cursor", three.id, want)
	}
	if two.id == three.id {
		t.Errorf("two events share id %q", two.id)
	}
	// A change of a task's state is sent.
	rn.task("extract", state.Success, "")
	ev := s.want("task", `"key":"extract"`)
	if !strings.Contains(ev.data, `"state":"Success"`) {
		t.Errorf("the task event after Running is %s, want Success", ev.data)
	}
	s.cancel()

	// Resume after line 3: line 4 comes, lines 1 to 3 do not.
	rn.logs("INFO line four")
	s = u.events(path, three.id)
	defer noLine(t, s, "before the page", "line two", "line three")
	s.want("run", `"state":"Running"`)
	s.want("log", `"message":"line four"`, `"n":4`)
	rn.task("load", state.Running, "")
	s.want("task", `"key":"load"`, `"state":"Running"`, `"attempt"`)
	rn.logs("INFO last words")
	rn.run(state.Success, "all done")
	s.want("run", `"state":"Success"`, `"message":"all done"`, `"finished":true`)
	s.want("end", `"state":"Success"`)
	// The stream ends after end; nothing of lines 1 to 3 came again.
	for {
		ev, ok := s.next()
		if !ok {
			break
		}
		t.Errorf("after end: %s %s", ev.event, ev.data)
	}

	// A finished run's stream sends its state and ends at once;
	// logs=0 sends no lines.
	s = u.events(path+"?logs=0", "")
	var got []string
	for {
		ev, ok := s.next()
		if !ok {
			break
		}
		got = append(got, ev.event)
	}
	if strings.Join(got, ",") != "task,task,run,end" {
		t.Errorf("a finished run's stream with logs=0 sent %v, want task,task,run,end", got)
	}
	if s := u.events(path, "garbage"); s.status != http.StatusBadRequest {
		t.Errorf("a bad Last-Event-ID = %d, want 400", s.status)
	}
}

// noLine fails the test if the stream sent a log line with one of msgs.
func noLine(t *testing.T, s *stream, msgs ...string) {
	t.Helper()
	for _, ev := range s.seen {
		for _, m := range msgs {
			if ev.event == "log" && strings.Contains(ev.data, `"message":"`+m+`"`) {
				t.Errorf("the stream sent the line %q, which the page already had: %s", m, ev.data)
			}
		}
	}
}

// TestLiveResumeRepeatsNoLine: a stream resumed with Last-Event-ID sends
// exactly the lines after it.
func TestLiveResumeRepeatsNoLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	run := e.run("etl", "")
	rn := e.runner(run.ID)
	rn.run(state.Running, "")
	for i := range 5 {
		rn.logs(fmt.Sprintf("INFO line %d", i+1))
	}
	u := e.user()
	u.signIn(e.admin)
	path := "/ui/runs/" + run.ID + "/events"
	s := u.events(path, "")
	var ids []string
	for range 5 {
		ids = append(ids, s.want("log").id)
	}
	s.cancel()
	rn.logs("INFO line 6")
	rn.run(state.Failed, "boom")
	s = u.events(path, ids[2])
	var msgs []string
	for {
		ev, ok := s.next()
		if !ok {
			break
		}
		if ev.event == "log" {
			var l struct {
				N       int    `json:"n"`
				Message string `json:"message"`
			}
			_ = json.Unmarshal([]byte(ev.data), &l)
			msgs = append(msgs, fmt.Sprintf("%d:%s", l.N, l.Message))
		}
	}
	if got := strings.Join(msgs, ","); got != "4:line 4,5:line 5,6:line 6" {
		t.Errorf("resumed after line 3, the stream sent %s", got)
	}
}

// waitJS waits until a JavaScript expression is true.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// An evaluation while the page navigates fails ("No node with
		// given id", "Execution context was destroyed"): try again.
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting until %s (%s; last error: %v)", what, expr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrowserLiveRun: a run's page follows the run without a reload: a
// task's state changes and a new task gets a row, new log lines are
// appended (followed at the bottom, counted in a "new lines" button when
// the reader scrolled up), and the header's badge turns Success.
func TestBrowserLiveRun(t *testing.T) {
	e := newEnv(t)
	// The browser after the server: its cleanup runs first, so no page
	// still holds a stream when the server closes.
	ctx := testenv.Chrome(t)
	e.flow("etl", "")
	run := e.run("etl", "")
	rn := e.runner(run.ID)
	rn.run(state.Running, "")
	rn.task("extract", state.Running, "")
	var first []string
	for i := range 150 {
		first = append(first, fmt.Sprintf("INFO row batch %d read", i+1))
	}
	rn.logs(first...)
	b := &browser{t: t, ctx: ctx}
	page := e.url + "/ui/runs/" + run.ID

	b.do("open the run", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), e.admin), chromedp.Click(chromedp.CSS("#sign-in")))
	b.at("the run page", func(s string) bool { return s == "/ui/runs/"+run.ID })
	b.do("see the tasks", chromedp.WaitVisible(chromedp.CSS(`#tasks tr[data-task="extract"]`)))
	evalIn[int](b, `window.__marker = 1`)

	// The tasks tab: a state changes in place, a new task gets a row.
	rn.task("extract", state.Success, "")
	rn.task("load", state.Running, "loading")
	b.waitJS("extract is Success", `!!document.querySelector('#tasks tr[data-task="extract"] td:nth-child(2) [data-state="Success"]')`)
	b.waitJS("load has a row", `!!document.querySelector('#tasks tr[data-task="load"] td:nth-child(2) [data-state="Running"]')`)
	if s := b.text(`#tasks tr[data-task="load"] td:nth-child(5)`); s != "loading" {
		t.Errorf("load's message reads %q", s)
	}
	if m := evalIn[int](b, `window.__marker || 0`); m != 1 {
		t.Fatal("the tasks tab was reloaded")
	}

	// The logs tab at the bottom follows new lines.
	b.do("open the logs", chromedp.Click(chromedp.CSS("#tab-logs")))
	b.at("the logs tab", func(s string) bool { return strings.HasSuffix(s, "?tab=logs") })
	b.do("see the logs", chromedp.WaitVisible(chromedp.CSS("#L150")))
	evalIn[int](b, `window.__marker = 2`)
	evalIn[chromedp.Void](b, `window.scrollTo(0, document.documentElement.scrollHeight)`)
	rn.logs("INFO hello from the runner")
	b.waitJS("line 151 appears", `!!document.getElementById("L151")`)
	if s := b.text("#L151 .msg"); s != "hello from the runner" {
		t.Errorf("line 151 reads %q", s)
	}
	b.waitJS("the page follows to the bottom", `window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2`)
	if !evalIn[bool](b, `document.getElementById("new-lines").hidden`) {
		t.Error("at the bottom, the new lines button shows")
	}

	// Scrolled up, the reader stays put and is told of new lines.
	evalIn[chromedp.Void](b, `window.scrollTo(0, 0)`)
	rn.logs("WARN one more", "ERROR and another")
	b.waitJS("line 153 appears", `!!document.getElementById("L153")`)
	b.waitJS("the new lines button shows", `!document.getElementById("new-lines").hidden`)
	if s := b.text("#new-lines"); !strings.HasPrefix(s, "2 new lines") {
		t.Errorf("the button reads %q, want 2 new lines", s)
	}
	if y := evalIn[float64](b, `window.scrollY`); y != 0 {
		t.Errorf("scrolled up, the page moved to %v", y)
	}
	if s := b.text("#log-count"); s != "153 of 153 lines." {
		t.Errorf("the line count reads %q, want 153 of 153 lines.", s)
	}
	b.do("jump to the new lines", chromedp.Click(chromedp.CSS("#new-lines")))
	b.waitJS("at the bottom", `window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 2`)
	b.waitJS("the button hides", `document.getElementById("new-lines").hidden`)

	// The run finishes: the badge turns Success.
	rn.run(state.Success, "all done")
	b.waitJS("the badge is Success", `!!document.querySelector('#run-state [data-state="Success"].state-ok')`)
	if s := b.text("#run-state"); !strings.Contains(s, "Success") || !strings.Contains(s, "all done") {
		t.Errorf("the run's state reads %q", s)
	}
	if m := evalIn[int](b, `window.__marker || 0`); m != 2 {
		t.Fatal("the logs tab was reloaded")
	}
	if n := b.count("#log li[id^=L]"); n != 153 {
		t.Errorf("the log shows %d lines, want 153 (none twice)", n)
	}
}

// TestBrowserLiveHiddenAndFallback: a hidden tab holds no stream and
// catches up when shown again, with no line twice; when the stream keeps
// failing, the page refreshes its parts by polling, still without a reload.
func TestBrowserLiveHiddenAndFallback(t *testing.T) {
	e := newEnv(t)
	// The browser after the server: its cleanup runs first, so no page
	// still holds a stream when the server closes.
	ctx := testenv.Chrome(t)
	e.flow("etl", "")
	run := e.run("etl", "")
	rn := e.runner(run.ID)
	rn.run(state.Running, "")
	rn.logs("INFO one", "INFO two")
	b := &browser{t: t, ctx: ctx}
	b.do("open the run's logs", chromedp.Navigate(e.url+"/ui/runs/"+run.ID+"?tab=logs"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), e.admin), chromedp.Click(chromedp.CSS("#sign-in")))
	b.at("the logs tab", func(s string) bool { return s == "/ui/runs/"+run.ID+"?tab=logs" })
	b.do("see the logs", chromedp.WaitVisible(chromedp.CSS("#L2")))
	evalIn[int](b, `window.__marker = 1`)
	visibility := func(hidden bool) {
		t.Helper()
		evalIn[chromedp.Void](b, fmt.Sprintf(`Object.defineProperty(document, "hidden", {configurable: true, get: () => %v}); document.dispatchEvent(new Event("visibilitychange"))`, hidden))
	}

	// Hidden: nothing arrives.
	rn.logs("INFO three")
	b.waitJS("line 3 appears", `!!document.getElementById("L3")`)
	visibility(true)
	rn.logs("INFO four", "INFO five")
	time.Sleep(1500 * time.Millisecond)
	if n := b.count("#log li[id^=L]"); n != 3 {
		t.Errorf("while hidden the log went from 3 to %d lines", n)
	}
	// Shown: the lines written meanwhile come, none twice.
	visibility(false)
	b.waitJS("line 5 appears", `!!document.getElementById("L5")`)
	time.Sleep(500 * time.Millisecond)
	if ids := evalIn[string](b, `[...document.querySelectorAll("#log li[id^=L]")].map(e => e.id).join(",")`); ids != "L1,L2,L3,L4,L5" {
		t.Errorf("after showing the tab the log is %s", ids)
	}

	// A stream that cannot be opened gives way to polling the page.
	visibility(true)
	evalIn[chromedp.Void](b, `window.__opened = 0; window.EventSource = function () { var s = this; window.__opened++; s.readyState = 2; s.close = function () {}; s.addEventListener = function () {}; setTimeout(function () { if (s.onerror) { s.onerror(new Event("error")); } }, 10); }; window.EventSource.CLOSED = 2`)
	visibility(false)
	b.waitJS("the failing stream was tried", `window.__opened === 1`)
	rn.logs("WARN six")
	rn.run(state.Failed, "it broke")
	b.waitJS("the badge is Failed", `!!document.querySelector('#run-state [data-state="Failed"]')`)
	b.waitJS("line 6 appears", `!!document.getElementById("L6")`)
	if m := evalIn[int](b, `window.__marker || 0`); m != 1 {
		t.Fatal("the page was reloaded")
	}
	if n := evalIn[int](b, `window.__opened`); n != 1 {
		t.Errorf("after falling back to polling, %d streams were opened, want 1", n)
	}
}

// TestBrowserLiveTabsShare: three live tabs of one browser (two of a run,
// its tasks and its logs, and one of another run) share one stream, held
// by the first tab; each gets its run's changes, no log line twice, and
// when the first tab closes, another takes the stream over and the tabs
// keep updating. A run that fails shows its Retry from failed button
// without a reload, and a task row added live links to its task's page.
func TestBrowserLiveTabsShare(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Chrome(t)
	e.flow("etl", "")
	runA, runB := e.run("etl", ""), e.run("etl", "")
	a, bRun := e.runner(runA.ID), e.runner(runB.ID)
	for _, rn := range []*runner{a, bRun} {
		rn.run(state.Running, "")
		rn.task("extract", state.Running, "")
		rn.logs("INFO one", "INFO two")
	}
	first, closeFirst := chromedp.NewContext(ctx)
	t.Cleanup(closeFirst)
	if err := chromedp.Do(first); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	lead := &browser{t: t, ctx: first}
	logsSignIn(lead, e, "/ui/runs/"+runA.ID)
	logs := logsTab(t, ctx)
	logs.do("open A's logs", chromedp.Navigate(e.url+"/ui/runs/"+runA.ID+"?tab=logs"), chromedp.WaitVisible(chromedp.CSS("#L2")))
	other := logsTab(t, ctx)
	other.do("open B", chromedp.Navigate(e.url+"/ui/runs/"+runB.ID), chromedp.WaitVisible(chromedp.CSS(`#tasks tr[data-task="extract"]`)))

	a.task("extract", state.Success, "")
	a.logs("INFO three")
	bRun.task("extract", state.Success, "")
	lead.waitJS("A's tasks tab shows extract Success", `!!document.querySelector('#tasks tr[data-task="extract"] [data-state="Success"]')`)
	logs.waitJS("A's logs tab shows line 3", `!!document.getElementById("L3")`)
	other.waitJS("B's tab shows extract Success", `!!document.querySelector('#tasks tr[data-task="extract"] [data-state="Success"]')`)

	// The first tab, which holds the stream, goes.
	closeFirst()
	a.logs("INFO four")
	bRun.task("load", state.Running, "")
	logs.waitJS("A's logs tab shows line 4", `!!document.getElementById("L4")`)
	other.waitJS("B's tab has a row for load", `!!document.querySelector('#tasks tr[data-task="load"] [data-state="Running"]')`)
	// A line after them: the stream is in order, so a line sent twice
	// would be in the page before it.
	a.logs("INFO five")
	logs.waitJS("A's logs tab shows line 5", `!!document.getElementById("L5")`)
	if ids := evalIn[string](logs, `[...document.querySelectorAll("#log li[id^=L]")].map(e => e.id).join(",")`); ids != "L1,L2,L3,L4,L5" {
		t.Errorf("A's log shows %s, want L1,L2,L3,L4,L5", ids)
	}
	href := evalIn[string](other, `document.querySelector('#tasks tr[data-task="load"] a').href`)
	if want := e.url + "/ui/runs/" + runB.ID + "/tasks/load"; href != want {
		t.Errorf("the live row links to %s, want %s", href, want)
	}

	// B fails: its Retry from failed button appears, and it works.
	if other.count("#retry") != 0 {
		t.Fatal("a running run shows Retry from failed")
	}
	bRun.task("load", state.Failed, "boom")
	bRun.run(state.Failed, "load failed")
	other.waitJS("the badge is Failed", `!!document.querySelector('#run-state [data-state="Failed"]')`)
	other.waitJS("Retry from failed shows", `!!document.getElementById("retry")`)
	evalIn[chromedp.Void](other, `window.confirm = () => true`)
	other.do("retry", chromedp.Click(chromedp.CSS("#retry")), chromedp.WaitNotPresent(chromedp.CSS("#retry")), chromedp.WaitVisible(chromedp.CSS("#run-state .state")))
	if got, err := e.api.FlowRun(context.Background(), runB.ID); err != nil {
		t.Fatal(err)
	} else if got.FlowRun.State.Kind.Finished() {
		t.Errorf("after Retry from failed the run is %s", got.FlowRun.State.Kind)
	}
}

// TestLiveStreamsShareAReader: streams of one run opened at different
// points each get exactly the lines after their own cursor, numbered in
// the whole log, though one reader serves them: one at the start of a
// log longer than the reader keeps, one resumed in the middle, one
// without lines; all end when the run finishes.
func TestLiveStreamsShareAReader(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	run := e.run("etl", "")
	rn := e.runner(run.ID)
	rn.run(state.Running, "")
	const lines = 9000 // more than the reader keeps (4 batches of 2,000)
	var batch []string
	for i := range lines {
		batch = append(batch, fmt.Sprintf("INFO line %d", i+1))
	}
	rn.logs(batch...)
	u := e.user()
	u.signIn(e.admin)
	path := "/ui/runs/" + run.ID + "/events"
	liveReadLines := func(s *stream, from, to int) string {
		t.Helper()
		var id string
		for n := from; n <= to; n++ {
			ev := s.want("log")
			var l struct {
				N       int    `json:"n"`
				Message string `json:"message"`
			}
			_ = json.Unmarshal([]byte(ev.data), &l)
			if l.N != n || l.Message != fmt.Sprintf("line %d", n) {
				t.Fatalf("want line %d, the stream sent %d:%s", n, l.N, l.Message)
			}
			id = ev.id
		}
		return id
	}
	first := u.events(path, "")
	mid := liveReadLines(first, 1, lines/2)
	liveReadLines(first, lines/2+1, lines)
	whole := u.events(path+"?after=0&n=0", "") // behind the reader's lines: reads its way up
	resumed := u.events(path, mid)
	tasks := u.events(path+"?logs=0", "")
	liveReadLines(whole, 1, lines)
	liveReadLines(resumed, lines/2+1, lines)

	rn.logs("INFO line 9001")
	rn.run(state.Success, "")
	for name, s := range map[string]*stream{"first": first, "whole": whole, "resumed": resumed} {
		if ev := s.want("log"); !strings.Contains(ev.data, `"n":9001,`) || !strings.Contains(ev.data, `"message":"line 9001"`) {
			t.Errorf("%s: the new line came as %s", name, ev.data)
		}
		s.want("end")
	}
	tasks.want("end", `"state":"Success"`)
	for _, ev := range tasks.seen {
		if ev.event == "log" {
			t.Errorf("a stream with logs=0 sent a line: %s", ev.data)
		}
	}
}

// TestLiveBrowserEvents: GET /ui/events streams several runs' changes at
// once, each event naming its run and its cursor; a run that cannot be
// read is said gone; a run that finishes ends, and the stream ends with
// the last; bad parameters are a 400.
func TestLiveBrowserEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	runA, runB := e.run("etl", ""), e.run("etl", "")
	a, b := e.runner(runA.ID), e.runner(runB.ID)
	for _, rn := range []*runner{a, b} {
		rn.run(state.Running, "")
		rn.logs("INFO first")
	}
	u := e.user()
	if s := u.events("/ui/events?run="+runA.ID+"&at=0.0.0&logs=1", ""); s.status != http.StatusUnauthorized {
		t.Fatalf("signed out: events = %d, want 401", s.status)
	}
	u.signIn(e.admin)
	for _, q := range []string{"", "run=" + runA.ID, "run=" + runA.ID + "&at=x&logs=1", "run=" + runA.ID + "&at=0.0.0&logs=1&run=" + runA.ID + "&at=0.0.0&logs=1"} {
		if s := u.events("/ui/events?"+q, ""); s.status != http.StatusBadRequest {
			t.Errorf("/ui/events?%s = %d, want 400", q, s.status)
		}
	}
	s := u.events("/ui/events?run="+runA.ID+"&at=0.0.0&logs=1&run=nope&at=0.0.0&logs=0&run="+runB.ID+"&at=0.0.0&logs=0", "")
	s.want("gone", `"run":"nope"`, `"status":404`)
	s.want("log", `"run":"`+runA.ID+`"`, `"message":"first"`, `"n":1,`)
	b.task("extract", state.Running, "")
	s.want("task", `"run":"`+runB.ID+`"`, `"key":"extract"`)
	a.run(state.Success, "")
	s.want("end", `"run":"`+runA.ID+`"`)
	b.logs("INFO not asked for")
	b.run(state.Failed, "boom")
	s.want("end", `"run":"`+runB.ID+`"`, `"retry":true`)
	if _, ok := s.next(); ok {
		t.Error("the stream went on after its last run ended")
	}
	for _, ev := range s.seen {
		if ev.event == "log" && strings.Contains(ev.data, runB.ID) {
			t.Errorf("a run asked without lines sent one: %s", ev.data)
		}
		if ev.id != "" {
			t.Errorf("an event of /ui/events has an id: %+v", ev)
		}
	}
}

// TestLiveRetryOnlyForActors: the run page tells live.js whether the user
// may act (data-can-act), so a Retry from failed button appears live only
// for roles that may retry; every role's stream says the run may be retried.
func TestLiveRetryOnlyForActors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.flow("etl", "")
	run := e.run("etl", "")
	rn := e.runner(run.ID)
	rn.run(state.Running, "")
	for _, c := range []struct {
		role string
		acts bool
	}{{"developer", true}, {"agent", false}} {
		u := e.user()
		u.signIn(e.token(c.role))
		p := u.mustGet("/ui/runs/" + run.ID)
		if c.acts {
			p.contains(t, `data-run="`+run.ID+`" data-can-act>`)
		} else {
			p.lacks(t, "data-can-act")
		}
	}
	u := e.user()
	u.signIn(e.token("agent"))
	s := u.events("/ui/runs/"+run.ID+"/events?logs=0", "")
	s.want("run", `"state":"Running"`, `"retry":false`, `"elapsed":`)
	rn.run(state.Failed, "boom")
	s.want("end", `"state":"Failed"`, `"retry":true`)
}

// TestBrowserLiveOwnStream: in a browser without BroadcastChannel (so tabs
// cannot share a stream), a run page holds its own stream and still
// follows the run: a task's change and a new log line.
func TestBrowserLiveOwnStream(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Chrome(t)
	e.flow("etl", "")
	run := e.run("etl", "")
	rn := e.runner(run.ID)
	rn.run(state.Running, "")
	rn.task("extract", state.Running, "")
	rn.logs("INFO one")
	b := &browser{t: t, ctx: ctx}
	if _, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: `delete window.BroadcastChannel`}); err != nil {
		t.Fatalf("take BroadcastChannel away: %v", err)
	}
	logsSignIn(b, e, "/ui/runs/"+run.ID+"?tab=logs")
	b.do("see the log", chromedp.WaitVisible(chromedp.CSS("#L1")))
	if evalIn[bool](b, `"BroadcastChannel" in window`) {
		t.Fatal("the page still has BroadcastChannel")
	}
	rn.logs("INFO two")
	rn.logs("INFO three")
	b.waitJS("line 3 appears", `!!document.getElementById("L3")`)
	// The stream is in order: a line sent twice would be before line 3.
	if n := b.count("#log li[id^=L]"); n != 3 {
		t.Errorf("the log shows %d lines, want 3", n)
	}
	rn.run(state.Success, "done")
	b.waitJS("the badge is Success", `!!document.querySelector('#run-state [data-state="Success"]')`)
}
