package ui

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
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
// API's own event stream): it polls the run's detail and its new log
// lines every livePoll, and sends only what changed:
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
	Finished bool   `json:"finished"`
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
	logs := q.Get("logs") != "0"
	var after, since int64
	var n int
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		a, m, c, ok := logCursor(last)
		if !ok {
			http.Error(w, fmt.Sprintf("Last-Event-ID %q is not LOGID.N.SINCE", last), http.StatusBadRequest)
			return
		}
		after, n, since = a, m, c
	} else if q.Has("after") || q.Has("n") || q.Has("since") {
		a, m, c, ok := logCursor(cmp.Or(q.Get("after"), "0") + "." + cmp.Or(q.Get("n"), "0") + "." + cmp.Or(q.Get("since"), "0"))
		if !ok {
			http.Error(w, "after, n and since must be numbers", http.StatusBadRequest)
			return
		}
		after, n, since = a, m, c
	}
	det, err := s.api.FlowRun(ctx, id)
	if err != nil {
		status := statusOf(err)
		if errs.CodeOf(err) == errs.CodeUnauthorized {
			status = http.StatusUnauthorized
		}
		http.Error(w, err.Error(), status)
		return
	}
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
	fmt.Fprint(w, "retry: 2000\n: live updates of flow run ", id, "\n\n")
	flusher.Flush()

	// The graph says which tasks are mapped and what is upstream of what
	// (for the timeline's spans); without it, children are known by
	// their keys and spans start at the run's start.
	var layout *graphLayout
	mapped := map[string]bool{}
	if l, err := flowGraph(ctx, s, det.FlowRun.FlowVersionID); err == nil {
		layout, mapped = l, l.mapped()
	} else {
		u.log.WarnContext(ctx, "ui live: reading the run's graph failed", "run", id, "err", err)
	}

	f := readPrefs(r).formatter()
	var sentRun *liveRun
	sentTasks := map[string]liveTask{}
	sentGroups := map[string]string{} // key → the group event's data
	taskKeys := map[string]string{}   // task run ID → key
	resumed := since > 0              // the first poll sends only what changed since
	sentSince := since
	poll := time.NewTimer(livePoll)
	defer poll.Stop()
	keepalive := time.NewTicker(liveKeepalive)
	defer keepalive.Stop()
	maxAge := time.NewTimer(liveMaxAge)
	defer maxAge.Stop()
	sendData := func(event string, data []byte) {
		fmt.Fprintf(w, "id: %d.%d.%d\nevent: %s\ndata: %s\n\n", after, n, sentSince, event, data)
	}
	send := func(event string, v any) {
		data, _ := json.Marshal(v)
		sendData(event, data)
	}
	for {
		began := time.Now()
		if det == nil {
			if det, err = s.api.FlowRun(ctx, id); err != nil {
				if ctx.Err() == nil {
					u.log.WarnContext(ctx, "ui live: reading the run failed", "run", id, "err", err)
				}
				return // the browser reconnects, or falls back to reloading
			}
		}
		run := det.FlowRun
		finished := run.State.Kind.Finished()
		cursor := liveSince(det.TaskRuns)
		fresh := func(tr *api.TaskRun) bool { // changed since the resumed cursor
			return !resumed || tr.UpdatedAt.UnixMicro() >= since-liveSlack.Microseconds()
		}
		rt := groupTasks(id, det.TaskRuns, mapped)
		spans := timelineSpans(layout, rt, runStart(run, det.History))
		freshGroups := map[string]bool{}
		for _, t := range det.TaskRuns {
			taskKeys[t.ID] = t.Key
			if base := taskBase(t.Key); rt.Groups[base] != nil {
				freshGroups[base] = freshGroups[base] || fresh(&t)
				if base != t.Key {
					continue // a child: counted in its group's event
				}
			}
			sp := spans[t.Key]
			lt := liveTask{Key: t.Key, State: t.State.Kind.String(), Class: stateClass(t.State.Kind), Icon: stateIcon(t.State.Kind),
				Attempt: t.State.Attempt, Message: t.State.Message, Time: f.Time(t.State.Time), ISO: f.ISO(t.State.Time),
				Start: msOf(sp.Start), End: msOf(sp.End)}
			if sentTasks[t.Key] != lt {
				sentTasks[t.Key] = lt
				if fresh(&t) {
					send("task", lt)
				}
			}
		}
		for _, row := range rt.Rows {
			g := row.Group
			if g == nil {
				continue
			}
			data, _ := json.Marshal(liveGroupOf(g, spans[g.Base]))
			if sentGroups[g.Base] != string(data) {
				sentGroups[g.Base] = string(data)
				if freshGroups[g.Base] {
					sendData("group", data)
				}
			}
		}
		resumed = false
		lr := liveRun{State: run.State.Kind.String(), Class: stateClass(run.State.Kind), Icon: stateIcon(run.State.Kind),
			Message: run.State.Message, Duration: runDuration(run, det.History, time.Now()), Finished: finished}
		// A run event on a change of state; a running run's duration
		// ticks on the page, so it is not a change by itself.
		if sentRun == nil || sentRun.State != lr.State || sentRun.Message != lr.Message {
			sentRun = &lr
			send("run", lr)
		}
		det = nil
		more := false
		if logs {
			page, err := s.api.Logs(ctx, id, client.LogQuery{After: after, Limit: liveLogBatch})
			if err != nil {
				if ctx.Err() == nil {
					u.log.WarnContext(ctx, "ui live: reading the logs failed", "run", id, "err", err)
				}
				return
			}
			for _, l := range page.Logs {
				after = l.ID
				n++
				send("log", liveLog{ID: l.ID, N: n, Level: l.Level, Message: l.Message, Task: taskKeys[l.TaskRunID], Attrs: l.Attrs, Time: f.Time(l.Time), ISO: f.ISO(l.Time)})
			}
			more = len(page.Logs) == liveLogBatch
		}
		// Every change up to cursor was sent: say so, in an event with
		// an id and no data (a browser takes its id and fires nothing).
		if cursor > sentSince {
			sentSince = cursor
			fmt.Fprintf(w, "id: %d.%d.%d\n\n", after, n, sentSince)
		}
		// The run's state was read before its logs, so when it had
		// finished, every line it will have was read.
		if finished && !more {
			send("end", lr)
			flusher.Flush()
			return
		}
		flusher.Flush()
		if more {
			continue
		}
		// Poll no more often than every livePoll, and a run whose detail
		// is long to read (thousands of task runs) less often: the
		// stream spends at most a quarter of its time reading.
		poll.Reset(max(livePoll, 3*time.Since(began)))
		select {
		case <-ctx.Done():
			return
		case <-maxAge.C:
			return // the browser reconnects after the retry interval
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			flusher.Flush()
		case <-poll.C:
		}
	}
}
