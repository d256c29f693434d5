package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/store"
)

// Log batches and pages.
const (
	maxLogBatch    = 10000
	maxLogMessage  = 64 << 10
	defaultLogPage = 1000
	maxLogPage     = 10000
	sseKeepalive   = 15 * time.Second
)

var logLevels = map[string]string{"DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARN", "WARNING": "WARN", "ERROR": "ERROR"}

func (s *Server) appendLogs(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	var req api.AppendLogs
	if err := decode(r, w, api.MaxLargeBodyBytes, &req); err != nil {
		return nil, err
	}
	if len(req.Logs) > maxLogBatch {
		return nil, invalid("%d log lines in one request: send at most %d", len(req.Logs), maxLogBatch)
	}
	id := r.PathValue("id")
	now := s.now()
	lines := make([]store.LogLine, len(req.Logs))
	for i, l := range req.Logs {
		level, ok := logLevels[strings.ToUpper(l.Level)]
		switch {
		case !ok:
			return nil, invalid("logs[%d]: level %q is not DEBUG, INFO, WARN or ERROR", i, l.Level)
		case len(l.Message) > maxLogMessage:
			return nil, invalid("logs[%d]: message is %d bytes long: keep it under %d", i, len(l.Message), maxLogMessage)
		case len(l.Attrs) > 0 && !bytes.HasPrefix(bytes.TrimSpace(l.Attrs), []byte("{")) && string(bytes.TrimSpace(l.Attrs)) != "null":
			return nil, invalid("logs[%d]: attrs must be a JSON object", i)
		}
		t := l.Time
		if t.IsZero() {
			t = now
		}
		lines[i] = store.LogLine{FlowRunID: id, TaskRunID: l.TaskRunID, Time: t, Level: level, Message: l.Message, Attrs: l.Attrs}
	}
	if len(lines) > 0 {
		if err := s.store.AppendLogs(r.Context(), lines); err != nil {
			return nil, err
		}
		s.hub.notifyLogs(id)
	}
	return nil, nil
}

func apiLog(l store.LogLine) api.LogLine {
	return api.LogLine{ID: l.ID, TaskRunID: l.TaskRunID, Time: l.Time, Level: l.Level, Message: l.Message, Attrs: l.Attrs}
}

func (s *Server) readLogs(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	q := newQuery(r)
	id := r.PathValue("id")
	task := q.str("task_run_id")
	after := q.int64("after")
	limit := q.int("limit", defaultLogPage)
	follow := q.bool("follow") || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	if q.err != nil {
		return nil, q.err
	}
	if limit == 0 || limit > maxLogPage {
		limit = min(max(limit, defaultLogPage), maxLogPage)
	}
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return nil, invalid("Last-Event-ID %q is not a log line ID", last)
		}
		after = max(after, n)
	}
	ctx := r.Context()
	if !follow {
		lines, err := s.store.ListLogs(ctx, id, task, after, limit)
		if err != nil {
			return nil, err
		}
		next := after
		if len(lines) > 0 {
			next = lines[len(lines)-1].ID
		}
		return api.Logs{Logs: mapSlice(lines, apiLog), NextAfter: next}, nil
	}

	// Follow: check the run exists before answering 200, then stream.
	if _, err := s.store.GetFlowRun(ctx, id); err != nil {
		return nil, err
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return nil, fmt.Errorf("follow logs: the response cannot stream")
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": following the logs of flow run ", id, "\n\n")
	flusher.Flush()

	poll := time.NewTicker(s.poll)
	defer poll.Stop()
	keepalive := time.NewTicker(sseKeepalive)
	defer keepalive.Stop()
	for {
		wake, done := s.hub.followLogs(id)
		lines, err := s.store.ListLogs(ctx, id, task, after, maxLogPage)
		if err != nil {
			done()
			writeEvent(w, "error", 0, api.ErrorDetail{Code: string(codeOf(err)), Message: err.Error()})
			flusher.Flush()
			return nil, err
		}
		for _, l := range lines {
			writeEvent(w, "log", l.ID, apiLog(l))
			after = l.ID
		}
		if len(lines) > 0 {
			flusher.Flush()
		}
		if len(lines) == maxLogPage {
			done()
			continue
		}
		// Finished with every line sent: say so and end the stream.
		run, err := s.store.GetFlowRun(ctx, id)
		if err == nil && run.State.Kind.Finished() {
			done()
			more, err := s.store.ListLogs(ctx, id, task, after, maxLogPage)
			if err == nil && len(more) > 0 {
				continue
			}
			writeEvent(w, "end", 0, apiFlowRun(run))
			flusher.Flush()
			return nil, nil
		}
		select {
		case <-ctx.Done():
			done()
			return nil, nil
		case <-wake:
		case <-poll.C:
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			flusher.Flush()
		}
		done()
	}
}

// writeEvent writes one server-sent event.
func writeEvent(w http.ResponseWriter, event string, id int64, v any) {
	data, _ := json.Marshal(v)
	if id > 0 {
		fmt.Fprintf(w, "id: %d\n", id)
	}
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
}
