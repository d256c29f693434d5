package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

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
//	event: run   the run's state (kind, message, icon, class, duration)
//	event: task  a task run's state (key, kind, attempt, message, ...)
//	event: log   a new log line (id, line number, level, message, ...)
//	event: end   the run finished and everything was sent; the stream ends
//
// Every event's id is "LOGID.N": the ID of the last log line sent and
// its line number in the whole log. A browser that reconnects sends it
// back as Last-Event-ID and gets the lines after it and no line twice;
// the first connection says where the page's log ends with ?after=LOGID&n=N
// (logs=0 asks for no lines: the tasks tab shows none). On every
// connection the run's and its task runs' current states are sent once,
// since the page may have missed changes, then only their changes.

// Timings of the live stream. A stream ends after liveMaxAge and the
// browser reconnects with Last-Event-ID (seamless: it resumes where it
// was), so no stream holds a connection open for ever: a server that
// closes waits for its requests to end.
var (
	livePoll      = 250 * time.Millisecond
	liveKeepalive = 15 * time.Second
	liveMaxAge    = 20 * time.Second
)

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

// logCursor parses "LOGID.N".
func logCursor(s string) (after int64, n int, ok bool) {
	a, b, found := strings.Cut(s, ".")
	if !found {
		return 0, 0, false
	}
	after, err1 := strconv.ParseInt(a, 10, 64)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || after < 0 || n < 0 {
		return 0, 0, false
	}
	return after, n, true
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
	var after int64
	var n int
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		a, m, ok := logCursor(last)
		if !ok {
			http.Error(w, fmt.Sprintf("Last-Event-ID %q is not LOGID.N", last), http.StatusBadRequest)
			return
		}
		after, n = a, m
	} else if q.Has("after") || q.Has("n") {
		a, m, ok := logCursor(q.Get("after") + "." + q.Get("n"))
		if !ok {
			http.Error(w, "after and n must be numbers", http.StatusBadRequest)
			return
		}
		after, n = a, m
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

	f := readPrefs(r).formatter()
	var sentRun *liveRun
	sentTasks := map[string]liveTask{}
	taskKeys := map[string]string{} // task run ID → key
	poll := time.NewTicker(livePoll)
	defer poll.Stop()
	keepalive := time.NewTicker(liveKeepalive)
	defer keepalive.Stop()
	maxAge := time.NewTimer(liveMaxAge)
	defer maxAge.Stop()
	send := func(event string, v any) {
		data, _ := json.Marshal(v)
		fmt.Fprintf(w, "id: %d.%d\nevent: %s\ndata: %s\n\n", after, n, event, data)
	}
	for {
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
		for _, t := range sortTasks(det.TaskRuns) {
			taskKeys[t.ID] = t.Key
			lt := liveTask{Key: t.Key, State: t.State.Kind.String(), Class: stateClass(t.State.Kind), Icon: stateIcon(t.State.Kind),
				Attempt: t.State.Attempt, Message: t.State.Message, Time: f.Time(t.State.Time), ISO: f.ISO(t.State.Time)}
			if sentTasks[t.Key] != lt {
				sentTasks[t.Key] = lt
				send("task", lt)
			}
		}
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
