package ui

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/state"
)

// The live run page: GET /ui/runs/{id}/events is a server-sent event
// stream of what changes on a run's page, read by static/live.js.
//
// It reads through the in-process API client like every page (the
// in-process transport buffers whole answers, so it cannot follow the
// API's own event stream): one reader per run (a liveHub, below), shared
// by every stream of the run, polls the run's detail and its new log
// lines every livePoll, and each stream sends only what changed since it
// last sent, from its own cursor:
//
//	event: run    the run's state (kind, message, icon, class, duration)
//	event: task   a task run's state (key, kind, attempt, message, span, ...)
//	event: group  a mapped task's children: counts by kind, summary, span
//	event: log    a new log line (id, line number, level, message, ...)
//	event: end    the run finished and everything was sent; the stream ends
//
// A mapped task's children get no task events: one group event per
// mapped task per poll carries their counts (absolute, so a repeated one
// is harmless), so a 5,000-way map costs the page one event, not 5,000.
//
// Every event's id is "LOGID.N.SINCE": the ID of the last log line sent,
// its line number in the whole log, and the task cursor: the newest
// task-run update (Unix microseconds, the server's clock) the browser
// has had every change up to. A browser that reconnects sends it back
// as Last-Event-ID and gets the lines after it, no line twice, and only
// the task runs updated since the cursor (less liveSlack, for writes
// that committed late): the first connection says where the page's log
// ends with ?after=LOGID&n=N (logs=0 asks for no lines) and what the page
// showed with ?since=SINCE (the page's data-since). Without a cursor
// every task run's state is sent once. The run's state is sent once on
// every connection, then only its changes. When the cursor moves without
// an event to carry it, an event with an id and no data carries it.
//
// GET /ui/events is the same for several runs in one stream (see
// browserEvents): live.js's leader tab holds one for every run open in
// the browser, so a browser holds one connection, not one per tab.

// Timings of the live stream. A stream ends after liveMaxAge and the
// browser reconnects with Last-Event-ID (seamless: it resumes where it
// was), so no stream holds a connection open for ever: a server that
// closes waits for its requests to end.
var (
	livePoll      = 250 * time.Millisecond
	liveKeepalive = 15 * time.Second
	liveMaxAge    = 20 * time.Second
)

// liveSlack is how far before its cursor a resumed stream looks for task
// runs' updates: a write whose transaction committed after a later one
// was read has an earlier update time than the cursor. (A variable for
// the tests, which write faster than that.)
var liveSlack = 5 * time.Second

// liveSince is the task cursor of a run's task runs: their newest update
// time in Unix microseconds.
func liveSince(trs []api.TaskRun) int64 {
	var since int64
	for _, tr := range trs {
		since = max(since, tr.UpdatedAt.UnixMicro())
	}
	return since
}

// liveLogBatch bounds the log lines read in one poll; more wait for the
// next, which comes at once.
const liveLogBatch = 2000

// liveRun is the data of a run event.
type liveRun struct {
	State    string `json:"state"`
	Class    string `json:"class"`
	Icon     string `json:"icon"`
	Message  string `json:"message"`
	Duration string `json:"duration"`
	Elapsed  *int64 `json:"elapsed,omitempty"` // ms it has run, while it runs (the page ticks from it)
	Finished bool   `json:"finished"`
	Retry    bool   `json:"retry"` // finished unsuccessfully: it may be retried from its failed tasks
}

// liveTask is the data of a task event.
type liveTask struct {
	Key     string `json:"key"`
	State   string `json:"state"`
	Class   string `json:"class"`
	Icon    string `json:"icon"`
	Attempt int    `json:"attempt"`
	Message string `json:"message"`
	Time    string `json:"time"` // as the page shows it
	ISO     string `json:"iso"`
	Start   int64  `json:"start"` // the timeline's bar, Unix ms; 0: none
	End     int64  `json:"end"`   // 0: still running
}

// liveGroup is the data of a group event: a mapped task's children.
type liveGroup struct {
	Key    string         `json:"key"`
	Total  int            `json:"total"`
	Text   string         `json:"text"`  // "5,000 · 4,980 Success · 20 Running"
	Short  string         `json:"short"` // the same, two kinds at most (the graph's node)
	State  string         `json:"state"` // the summary kind
	Class  string         `json:"class"`
	Icon   string         `json:"icon"`
	Counts map[string]int `json:"counts"`
	Start  int64          `json:"start"`
	End    int64          `json:"end"`
}

func liveGroupOf(g *taskGroup, span timelineSpan) liveGroup {
	lg := liveGroup{Key: g.Base, Total: g.Total, Text: g.countsText(0), Short: g.countsText(2), State: g.Kind.String(),
		Class: stateClass(g.Kind), Icon: stateIcon(g.Kind), Counts: map[string]int{}, Start: msOf(span.Start), End: msOf(span.End)}
	for k, n := range g.Counts {
		if n > 0 {
			lg.Counts[state.Kind(k).String()] = n
		}
	}
	return lg
}

// liveLog is the data of a log event.
type liveLog struct {
	ID      int64           `json:"id"`
	N       int             `json:"n"` // the line's number in the whole log
	Level   string          `json:"level"`
	Message string          `json:"message"`
	Task    string          `json:"task,omitempty"`
	Attrs   json.RawMessage `json:"attrs,omitempty"`
	Time    string          `json:"time"`
	ISO     string          `json:"iso"`
}

func stateIcon(k state.Kind) string {
	if i := stateIcons[k]; i != "" {
		return i
	}
	return "•"
}

// logCursor parses "LOGID.N" or "LOGID.N.SINCE".
func logCursor(s string) (after int64, n int, since int64, ok bool) {
	a, b, found := strings.Cut(s, ".")
	if !found {
		return 0, 0, 0, false
	}
	b, c, withSince := strings.Cut(b, ".")
	after, err1 := strconv.ParseInt(a, 10, 64)
	n, err2 := strconv.Atoi(b)
	var err3 error
	if withSince {
		since, err3 = strconv.ParseInt(c, 10, 64)
	}
	if err1 != nil || err2 != nil || err3 != nil || after < 0 || n < 0 || since < 0 {
		return 0, 0, 0, false
	}
	return after, n, since, true
}

// runEvents streams a run's changes. Signed out, it answers 401 (an
// EventSource cannot follow a trip to the login page; live.js reloads the
// page, which goes there).
func (u *UI) runEvents(w http.ResponseWriter, r *http.Request) {
	s := u.session(r)
	if s == nil {
		http.Error(w, "not signed in", http.StatusUnauthorized)
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	q := r.URL.Query()
	sub := &liveSub{run: id, logs: q.Get("logs") != "0", f: readPrefs(r).formatter()}
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		a, m, c, ok := logCursor(last)
		if !ok {
			http.Error(w, fmt.Sprintf("Last-Event-ID %q is not LOGID.N.SINCE", last), http.StatusBadRequest)
			return
		}
		sub.after, sub.n, sub.since = a, m, c
	} else if q.Has("after") || q.Has("n") || q.Has("since") {
		a, m, c, ok := logCursor(cmp.Or(q.Get("after"), "0") + "." + cmp.Or(q.Get("n"), "0") + "." + cmp.Or(q.Get("since"), "0"))
		if !ok {
			http.Error(w, "after, n and since must be numbers", http.StatusBadRequest)
			return
		}
		sub.after, sub.n, sub.since = a, m, c
	}
	if _, err := s.api.FlowRun(ctx, id); err != nil {
		http.Error(w, err.Error(), liveStatus(err))
		return
	}
	u.liveServe(w, r, s, []*liveSub{sub}, "live updates of flow run "+id)
}

// liveStatus is the status of a stream whose run cannot be read: 401 when
// signed out (the page reloads and goes to the sign-in form).
func liveStatus(err error) int {
	if errs.CodeOf(err) == errs.CodeUnauthorized {
		return http.StatusUnauthorized
	}
	return statusOf(err)
}

// liveMaxRuns bounds the runs of one GET /ui/events.
const liveMaxRuns = 100

// browserEvents is GET /ui/events: one stream of several runs' changes,
// so that a browser holds one connection for all its run pages (live.js's
// leader tab reads it and hands the events to the other tabs). Each run
// is a run parameter with, in the same order, an at parameter (its
// cursor LOGID.N.SINCE, as a run stream's event id) and a logs parameter
// (1: send its new log lines). Its events are a run stream's, each with
// data {"run": ID, "at": CURSOR, "d": DATA} (d is the run stream's data);
// a cursor event carries a moved cursor, and a gone event a run that
// cannot be read ({"run", "status", "error"}). Events have no id: the
// reader reconnects with each run's newest at.
func (u *UI) browserEvents(w http.ResponseWriter, r *http.Request) {
	s := u.session(r)
	if s == nil {
		http.Error(w, "not signed in", http.StatusUnauthorized)
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	runs, ats, logs := q["run"], q["at"], q["logs"]
	switch {
	case len(runs) == 0:
		http.Error(w, "name at least one run", http.StatusBadRequest)
		return
	case len(runs) > liveMaxRuns:
		http.Error(w, fmt.Sprintf("at most %d runs a stream", liveMaxRuns), http.StatusBadRequest)
		return
	case len(ats) != len(runs) || len(logs) != len(runs):
		http.Error(w, "each run needs its at and logs parameters", http.StatusBadRequest)
		return
	}
	f := readPrefs(r).formatter()
	var subs []*liveSub
	var gone []string
	seen := map[string]bool{}
	for i, id := range runs {
		if seen[id] {
			http.Error(w, fmt.Sprintf("run %q is named twice", id), http.StatusBadRequest)
			return
		}
		seen[id] = true
		a, m, c, ok := logCursor(ats[i])
		if !ok {
			http.Error(w, fmt.Sprintf("at %q is not LOGID.N.SINCE", ats[i]), http.StatusBadRequest)
			return
		}
		if _, err := s.api.FlowRun(ctx, id); err != nil {
			if errs.CodeOf(err) == errs.CodeUnauthorized {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			data, _ := json.Marshal(map[string]any{"run": id, "status": statusOf(err), "error": err.Error()})
			gone = append(gone, string(data))
			continue
		}
		subs = append(subs, &liveSub{run: id, multi: true, logs: logs[i] == "1", f: f, after: a, n: m, since: c})
	}
	u.liveServe(w, r, s, subs, fmt.Sprintf("live updates of %d flow runs", len(runs)), gone...)
}

// liveServe streams subs' changes until each run has ended, the client
// goes, or liveMaxAge passes. gone are the data of gone events to send
// first.
func (u *UI) liveServe(w http.ResponseWriter, r *http.Request, s *session, subs []*liveSub, what string, gone ...string) {
	ctx := r.Context()
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "this response cannot stream", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n: ", what, "\n\n")
	for _, g := range gone {
		fmt.Fprintf(w, "event: gone\ndata: %s\n\n", g)
	}
	flusher.Flush()

	wake := make(chan struct{}, 1)
	for _, sub := range subs {
		sub.w, sub.wake, sub.sentTasks, sub.sentGroups = w, wake, map[string]liveTaskSnap{}, map[string]string{}
		sub.resumed, sub.sentSince = sub.since > 0, sub.since
		u.live.join(u, sub, s.api)
	}
	defer func() {
		for _, sub := range subs {
			u.live.leave(sub)
		}
	}()
	keepalive := time.NewTicker(liveKeepalive)
	defer keepalive.Stop()
	maxAge := time.NewTimer(liveMaxAge)
	defer maxAge.Stop()
	for {
		open := 0
		for _, sub := range subs {
			if sub.ended {
				continue
			}
			if err := sub.step(ctx, s); err != nil {
				if ctx.Err() == nil {
					u.log.WarnContext(ctx, "ui live: reading the run failed", "run", sub.run, "err", err)
				}
				flusher.Flush()
				return // the browser reconnects, or falls back to polling
			}
			if sub.ended {
				u.live.leave(sub)
			} else {
				open++
			}
		}
		flusher.Flush()
		if open == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-maxAge.C:
			return // the browser reconnects after the retry interval
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			flusher.Flush()
		case <-wake:
		}
	}
}

// Shared reading: every stream of a run, in any tab of any browser, is
// served by one liveHub, which reads the run (and, while a stream wants
// them, its new log lines) through the API every livePoll and wakes the
// streams; each stream (a liveSub) keeps its own cursor and sends what
// changed since it last sent, so 100 tabs on a run cost about one reader.
// The hub reads with the session of its newest stream (every stream has
// read the run with its own session before it joins) and ends when its
// last stream goes or the run has finished and everything was read.

// liveHubs are the hubs of the runs being followed, by run ID.
type liveHubs struct {
	mu   sync.Mutex
	hubs map[string]*liveHub
}

// liveHub reads one run for all its streams.
type liveHub struct {
	id   string
	kick chan struct{} // read now (a stream joined)
	stop chan struct{} // closed when the last stream leaves

	mu       sync.Mutex
	api      *client.Client // the newest stream's session
	subs     map[*liveSub]bool
	gen      uint64 // counts joins: a read begun before a join is not that stream's
	snap     *liveSnap
	logsOn   bool          // a stream wants log lines
	logBase  int64         // lines holds the lines after logBase ...
	logAfter int64         // ... up to logAfter
	lines    []api.LogLine // the newest lines read, at most liveLogKeep
	err      error         // reading failed: the hub ended
	finished bool          // the run finished and every line was read: the hub ended
}

// liveLogKeep bounds the lines a hub keeps for streams a little behind;
// one further behind reads its way up to them itself.
const liveLogKeep = 4 * liveLogBatch

// liveSnap is what a hub read of a run, for its streams to send.
type liveSnap struct {
	gen      uint64
	run      liveRun
	cursor   int64 // liveSince of the task runs
	tasks    []liveTaskSnap
	groups   []liveGroupSnap
	taskKeys map[string]string // task run ID → key
}

// liveTaskSnap is a task event's data but its times, which each stream
// formats for its user, and when the task run was updated.
type liveTaskSnap struct {
	t       liveTask
	at      int64 // the state's time, Unix µs
	updated int64
}

// liveGroupSnap is a group event's data and the newest update among the
// mapped task's runs.
type liveGroupSnap struct {
	key     string
	data    string
	updated int64
}

// liveSub is one stream of one run.
type liveSub struct {
	run   string
	multi bool // a GET /ui/events stream: data wrapped with the run
	logs  bool
	f     formatter
	w     io.Writer
	wake  chan struct{}
	hub   *liveHub
	api   *client.Client // its session's
	gen   uint64         // the first snapshot generation it may send
	seen  *liveSnap      // the snapshot it last sent from

	after      int64 // the last log line sent, its number, ...
	n          int
	since      int64 // ... the resumed task cursor, ...
	sentSince  int64 // ... and the cursor sent
	resumed    bool  // the first snapshot sends only what changed since
	sentRun    *liveRun
	sentTasks  map[string]liveTaskSnap
	sentGroups map[string]string
	ended      bool
}

// join adds sub to its run's hub, starting one if needed, and has the hub
// read at once.
func (hs *liveHubs) join(u *UI, sub *liveSub, cl *client.Client) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	h := hs.hubs[sub.run]
	if h == nil {
		if hs.hubs == nil {
			hs.hubs = map[string]*liveHub{}
		}
		h = &liveHub{id: sub.run, kick: make(chan struct{}, 1), stop: make(chan struct{}), subs: map[*liveSub]bool{}}
		hs.hubs[sub.run] = h
		defer func() { go h.loop(u) }() // once it has its first stream
	}
	h.mu.Lock()
	h.subs[sub] = true
	h.api, sub.api = cl, cl
	h.gen++
	sub.gen, sub.hub = h.gen, h
	if sub.logs && !h.logsOn {
		h.logsOn, h.logBase, h.logAfter = true, sub.after, sub.after
	}
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// leave removes sub from its hub, stopping the hub if it was the last.
func (hs *liveHubs) leave(sub *liveSub) {
	h := sub.hub
	if h == nil {
		return
	}
	sub.hub = nil
	hs.mu.Lock()
	defer hs.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, sub)
	if h.api == sub.api {
		for other := range h.subs {
			h.api = other.api // read as a stream still there
			break
		}
	}
	if len(h.subs) == 0 && hs.hubs[h.id] == h {
		delete(hs.hubs, h.id)
		close(h.stop)
	}
}

// loop reads the run until the hub ends.
func (h *liveHub) loop(u *UI) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-h.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var layout *graphLayout
	mapped := map[string]bool{}
	graphRead := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-h.kick: // this read serves the stream that joined
		default:
		}
		h.mu.Lock()
		cl, gen, logs, after := h.api, h.gen, h.logsOn, h.logAfter
		h.mu.Unlock()
		began := time.Now()
		det, err := cl.FlowRun(ctx, h.id)
		if err == nil && !graphRead {
			// The graph says which tasks are mapped and what is upstream
			// of what (for the timeline's spans); without it, children
			// are known by their keys and spans start at the run's start.
			graphRead = true
			if l, gerr := flowGraph(ctx, &session{api: cl}, det.FlowRun.FlowVersionID); gerr == nil {
				layout, mapped = l, l.mapped()
			} else if ctx.Err() == nil {
				u.log.WarnContext(ctx, "ui live: reading the run's graph failed", "run", h.id, "err", gerr)
			}
		}
		var page *api.Logs
		if err == nil && logs {
			page, err = cl.Logs(ctx, h.id, client.LogQuery{After: after, Limit: liveLogBatch})
		}
		if ctx.Err() != nil {
			return // the last stream left
		}
		var snap *liveSnap
		if err == nil {
			snap = liveSnapOf(h.id, det, layout, mapped, gen)
		} else {
			err = fmt.Errorf("reading run %s: %w", h.id, err)
		}
		more := page != nil && len(page.Logs) == liveLogBatch
		u.live.mu.Lock()
		h.mu.Lock()
		if err != nil {
			h.err = err
		} else {
			h.snap = snap
			if page != nil {
				for _, l := range page.Logs {
					h.lines = append(h.lines, l)
					h.logAfter = l.ID
				}
				if over := len(h.lines) - liveLogKeep; over > 0 {
					h.logBase = h.lines[over-1].ID
					h.lines = append([]api.LogLine(nil), h.lines[over:]...)
				}
			}
			// The run's state was read before its logs, so when it had
			// finished, every line it will have was read (unless a
			// stream wanting lines joined meanwhile).
			h.finished = snap.run.Finished && !more && gen == h.gen
		}
		ended := h.err != nil || h.finished
		if ended && u.live.hubs[h.id] == h {
			delete(u.live.hubs, h.id) // a stream joining now starts a new hub
		}
		for sub := range h.subs {
			select {
			case sub.wake <- struct{}{}:
			default:
			}
		}
		h.mu.Unlock()
		u.live.mu.Unlock()
		if ended {
			return
		}
		// Read no more often than every livePoll, and a run whose detail
		// is long to read (thousands of task runs) less often: the hub
		// spends at most a quarter of its time reading. A stream joining
		// has it read at once.
		wait := max(livePoll, 3*time.Since(began))
		if more {
			wait = 0
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-h.kick:
		}
	}
}

// liveSnapOf is what the streams of a run send, from its detail.
func liveSnapOf(id string, det *api.FlowRunDetail, layout *graphLayout, mapped map[string]bool, gen uint64) *liveSnap {
	run := det.FlowRun
	snap := &liveSnap{gen: gen, cursor: liveSince(det.TaskRuns), taskKeys: make(map[string]string, len(det.TaskRuns))}
	snap.run = liveRun{State: run.State.Kind.String(), Class: stateClass(run.State.Kind), Icon: stateIcon(run.State.Kind),
		Message: run.State.Message, Duration: runDuration(run, det.History, time.Now()), Finished: run.State.Kind.Finished(),
		Retry: run.State.Kind.Finished() && !run.State.Kind.Successful()}
	if k := run.State.Kind; k == state.Running || k == state.Retrying || k == state.Cancelling {
		ms := time.Since(runStart(run, det.History)).Milliseconds()
		snap.run.Elapsed = &ms
	}
	rt := groupTasks(id, det.TaskRuns, mapped)
	spans := timelineSpans(layout, rt, runStart(run, det.History))
	groupUpdated := map[string]int64{}
	for _, t := range det.TaskRuns {
		snap.taskKeys[t.ID] = t.Key
		updated := t.UpdatedAt.UnixMicro()
		if base := taskBase(t.Key); rt.Groups[base] != nil {
			groupUpdated[base] = max(groupUpdated[base], updated)
			if base != t.Key {
				continue // a child: counted in its group's event
			}
		}
		sp := spans[t.Key]
		snap.tasks = append(snap.tasks, liveTaskSnap{t: liveTask{Key: t.Key, State: t.State.Kind.String(), Class: stateClass(t.State.Kind),
			Icon: stateIcon(t.State.Kind), Attempt: t.State.Attempt, Message: t.State.Message, Start: msOf(sp.Start), End: msOf(sp.End)},
			at: t.State.Time.UnixMicro(), updated: updated})
	}
	for _, row := range rt.Rows {
		if g := row.Group; g != nil {
			data, _ := json.Marshal(liveGroupOf(g, spans[g.Base]))
			snap.groups = append(snap.groups, liveGroupSnap{key: g.Base, data: string(data), updated: groupUpdated[g.Base]})
		}
	}
	return snap
}

// send writes an event of sub's run; no event is a cursor's move alone.
func (sub *liveSub) send(event string, data []byte) {
	at := fmt.Sprintf("%d.%d.%d", sub.after, sub.n, sub.sentSince)
	switch {
	case !sub.multi && event == "":
		fmt.Fprintf(sub.w, "id: %s\n\n", at)
	case !sub.multi:
		fmt.Fprintf(sub.w, "id: %s\nevent: %s\ndata: %s\n\n", at, event, data)
	case event == "":
		fmt.Fprintf(sub.w, "event: cursor\ndata: {\"run\":%q,\"at\":%q}\n\n", sub.run, at)
	default:
		fmt.Fprintf(sub.w, "event: %s\ndata: {\"run\":%q,\"at\":%q,\"d\":%s}\n\n", event, sub.run, at, data)
	}
}

func (sub *liveSub) sendJSON(event string, v any) {
	data, _ := json.Marshal(v)
	sub.send(event, data)
}

// step sends what changed in the hub's newest snapshot since sub last
// sent, and its new log lines; it ends sub when the run finished and
// everything was sent. s reads the lines of a stream too far behind the
// hub's.
func (sub *liveSub) step(ctx context.Context, s *session) error {
	h := sub.hub
	h.mu.Lock()
	snap, herr, finished := h.snap, h.err, h.finished
	base, logAfter := h.logBase, h.logAfter
	var lines []api.LogLine
	if sub.logs {
		for i := len(h.lines) - 1; i >= 0 && h.lines[i].ID > sub.after; i-- {
			lines = append(lines, h.lines[i])
		}
		slices.Reverse(lines)
	}
	h.mu.Unlock()
	if herr != nil {
		return herr
	}
	if snap == nil || snap.gen < sub.gen {
		return nil // not read since it joined
	}
	if snap != sub.seen {
		sub.seen = snap
		sub.sendChanges(snap)
	}
	if sub.logs {
		// Behind the hub's lines: read up to them.
		for sub.after < base {
			page, err := s.api.Logs(ctx, sub.run, client.LogQuery{After: sub.after, Limit: liveLogBatch})
			if err != nil {
				return fmt.Errorf("reading run %s's logs: %w", sub.run, err)
			}
			for _, l := range page.Logs {
				sub.sendLog(&l, snap)
			}
			if len(page.Logs) < liveLogBatch {
				break
			}
		}
		for _, l := range lines {
			if l.ID > sub.after {
				sub.sendLog(&l, snap)
			}
		}
	}
	// Every change up to cursor was sent: say so, in an event with an id
	// and no data (a browser takes its id and fires nothing).
	if snap.cursor > sub.sentSince {
		sub.sentSince = snap.cursor
		sub.send("", nil)
	}
	if finished && (!sub.logs || sub.after >= logAfter) {
		sub.sendJSON("end", snap.run)
		sub.ended = true
	}
	return nil
}

// sendChanges sends the task, group and run events of what changed in
// snap since sub last sent.
func (sub *liveSub) sendChanges(snap *liveSnap) {
	fresh := func(updated int64) bool { // changed since the resumed cursor
		return !sub.resumed || updated >= sub.since-liveSlack.Microseconds()
	}
	for _, ts := range snap.tasks {
		if sub.sentTasks[ts.t.Key] == ts {
			continue
		}
		sub.sentTasks[ts.t.Key] = ts
		if fresh(ts.updated) {
			lt := ts.t
			at := time.UnixMicro(ts.at)
			lt.Time, lt.ISO = sub.f.Time(at), sub.f.ISO(at)
			sub.sendJSON("task", lt)
		}
	}
	for _, g := range snap.groups {
		if sub.sentGroups[g.key] != g.data {
			sub.sentGroups[g.key] = g.data
			if fresh(g.updated) {
				sub.send("group", []byte(g.data))
			}
		}
	}
	sub.resumed = false
	// A run event on a change of state; a running run's duration ticks
	// on the page, so it is not a change by itself.
	if lr := snap.run; sub.sentRun == nil || sub.sentRun.State != lr.State || sub.sentRun.Message != lr.Message {
		sub.sentRun = &lr
		sub.sendJSON("run", lr)
	}
}

// sendLog sends a log line and moves sub's log cursor past it.
func (sub *liveSub) sendLog(l *api.LogLine, snap *liveSnap) {
	sub.after = l.ID
	sub.n++
	sub.sendJSON("log", liveLog{ID: l.ID, N: sub.n, Level: l.Level, Message: l.Message, Task: snap.taskKeys[l.TaskRunID],
		Attrs: l.Attrs, Time: sub.f.Time(l.Time), ISO: sub.f.ISO(l.Time)})
}
