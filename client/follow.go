package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/errs"
)

// Following logs.
const (
	// followIdle is how long a log stream may stay silent before the client
	// takes it for dead and reconnects; the server sends a keepalive
	// comment every 15s.
	followIdle = 45 * time.Second
	// followRetryMin and followRetryMax bound the wait before reconnecting.
	followRetryMin = 100 * time.Millisecond
	followRetryMax = 5 * time.Second
)

// FollowLogs calls fn with each log line of a flow run that q selects, as
// the lines come, until the run has finished and its last line was sent;
// then it returns the finished run. An error of fn stops it and is
// returned as it is.
//
// When the stream breaks (the connection drops, the server restarts), it
// reconnects, with backoff, and reads on after the last line it got, so fn
// sees each line once, in order. It stops reconnecting only when ctx ends;
// an error of the server that retrying cannot fix (the run does not exist,
// the token is not valid) ends it at once, as does a server that cannot be
// reached at the first attempt.
func (c *Client) FollowLogs(ctx context.Context, flowRunID string, q LogQuery, fn func(api.LogLine) error) (*api.FlowRun, error) {
	f := &follow{c: c, runID: flowRunID, query: q, fn: fn}
	retry := followRetryMin
	var cb callbackError
	for {
		run, err := f.stream(ctx)
		switch {
		case run != nil:
			return run, nil
		case errors.As(err, &cb):
			return nil, cb.err
		case ctx.Err() != nil:
			return nil, fmt.Errorf("follow the logs of flow run %s: %w", flowRunID, context.Cause(ctx))
		case err != nil && (!f.connected || !errors.Is(err, errs.ErrUnavailable)):
			return nil, fmt.Errorf("follow the logs of flow run %s: %w", flowRunID, err)
		}
		if f.progressed {
			retry = followRetryMin
		}
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("follow the logs of flow run %s: %w", flowRunID, context.Cause(ctx))
		case <-t.C:
		}
		retry = min(2*retry, followRetryMax)
	}
}

// follow is the state of one FollowLogs across reconnections.
type follow struct {
	c          *Client
	runID      string
	query      LogQuery // After: the ID of the last line given to fn
	fn         func(api.LogLine) error
	connected  bool // a stream was opened once
	progressed bool // the last stream gave a line
}

// callbackError is an error of the caller's function.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }
func (e callbackError) Unwrap() error { return e.err }

// errStreamBroke says a stream ended before its end event.
var errStreamBroke = errs.Errorf(errs.CodeUnavailable, "the log stream ended before the run did")

// stream opens one event stream and reads it to its end event (returning
// the finished run) or until it breaks (returning an error; an
// ErrUnavailable one may be retried).
func (f *follow) stream(ctx context.Context) (*api.FlowRun, error) {
	f.progressed = false
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := time.AfterFunc(followIdle, func() {
		cancel(errs.Errorf(errs.CodeUnavailable, "the log stream was silent for %v", followIdle))
	})
	defer idle.Stop()

	q := f.query.values()
	q.Set("follow", "true")
	header := http.Header{"Accept": {"text/event-stream"}}
	if f.query.After > 0 {
		header.Set("Last-Event-ID", strconv.FormatInt(f.query.After, 10))
	}
	resp, err := f.c.send(ctx, http.MethodGet, api.Prefix+"/flow_runs/"+escape(f.runID)+"/logs", q, nil, header)
	if err != nil {
		return nil, err
	}
	defer drain(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return nil, errs.Errorf(errs.CodeInternal, "%s answered a log stream with Content-Type %q, not text/event-stream: is it a Reeve server?", f.c.base, ct)
	}
	f.connected = true

	r := bufio.NewReader(resp.Body)
	var event, id string
	var data strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				return nil, cause // the caller's context ended, or the stream was silent too long
			}
			return nil, fmt.Errorf("%w: %w", errStreamBroke, err)
		}
		idle.Reset(followIdle)
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" { // the end of an event
			run, err := f.dispatch(event, id, data.String())
			if run != nil || err != nil {
				return run, err
			}
			event, id = "", ""
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") { // a comment: keepalive
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		case "id":
			id = value
		}
	}
}

// dispatch handles one event: a log line goes to fn, an end event returns
// the finished run, an error event the server's error.
func (f *follow) dispatch(event, id, data string) (*api.FlowRun, error) {
	switch event {
	case "log":
		var l api.LogLine
		if err := json.Unmarshal([]byte(data), &l); err != nil {
			return nil, errs.Errorf(errs.CodeInternal, "%s sent a log event this client cannot read: %v", f.c.base, err)
		}
		if l.ID == 0 {
			l.ID, _ = strconv.ParseInt(id, 10, 64)
		}
		if l.ID != 0 && l.ID <= f.query.After {
			return nil, nil // sent again after a reconnection
		}
		if err := f.fn(l); err != nil {
			return nil, callbackError{err}
		}
		f.query.After = max(f.query.After, l.ID)
		f.progressed = true
	case "end":
		var run api.FlowRun
		if err := json.Unmarshal([]byte(data), &run); err != nil {
			return nil, errs.Errorf(errs.CodeInternal, "%s sent an end event this client cannot read: %v", f.c.base, err)
		}
		return &run, nil
	case "error":
		var e api.ErrorDetail
		if err := json.Unmarshal([]byte(data), &e); err != nil || e.Message == "" {
			return nil, errs.Errorf(errs.CodeUnavailable, "%s sent an error event this client cannot read: %q", f.c.base, data)
		}
		code := errs.Code(e.Code)
		if !knownCode(code) {
			code = errs.CodeInternal
		}
		return nil, &errs.Error{Code: code, Message: e.Message}
	}
	return nil, nil // events of other kinds are for other clients
}
