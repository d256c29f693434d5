package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/runner"
)

// Limits of the log shipper.
const (
	batchLines   = 1000     // lines per AppendLogs request
	bufferLines  = 20000    // lines held while the server does not take them; more are dropped (and counted)
	maxMessage   = 32 << 10 // bytes of one line's message; longer ones are cut
	tailLines    = 5        // stderr lines kept for the reason of a failed start
	maxTailChars = 500      // characters kept of each
)

// Levels of a program's output in the run's log. Stdout is INFO; stderr is
// WARN, not ERROR: Go's log package and most libraries write ordinary
// messages there, but so do panics and crashes, which should stand out.
const (
	levelStdout = "INFO"
	levelStderr = "WARN"
)

var (
	attrsStdout = json.RawMessage(`{"stream":"stdout"}`)
	attrsStderr = json.RawMessage(`{"stream":"stderr"}`)
	attrsAgent  = json.RawMessage(`{"source":"agent"}`)
)

// shipper ships a run's output to the run's log in batches: every flush
// interval, or sooner when a batch is full.
type shipper struct {
	c     *client.Client // with the run's token
	runID string
	log   *slog.Logger

	mu      sync.Mutex
	buf     []api.LogLine
	dropped int
	tail    []string // the last stderr lines
	panic   string   // the first "panic: ..." or "fatal error: ..." line
	closed  bool
	refused bool // the server refuses this run's lines for good: drop them

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

func newShipper(c *client.Client, runID string, every time.Duration, log *slog.Logger) *shipper {
	s := &shipper{c: c, runID: runID, log: log, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop(every)
	return s
}

// output takes one line of the program's output.
func (s *shipper) output(l runner.Line) {
	if s == nil {
		return
	}
	level, attrs := levelStdout, attrsStdout
	if l.Stream == runner.Stderr {
		level, attrs = levelStderr, attrsStderr
		s.mu.Lock()
		if t := strings.TrimSpace(l.Text); t != "" {
			if len(t) > maxTailChars {
				t = t[:maxTailChars] + "…"
			}
			if s.panic == "" && (strings.HasPrefix(t, "panic: ") || strings.HasPrefix(t, "fatal error: ")) {
				s.panic = t
			}
			s.tail = append(s.tail, t)
			if len(s.tail) > tailLines {
				s.tail = s.tail[1:]
			}
		}
		s.mu.Unlock()
	}
	s.add(api.LogLine{Time: l.Time, Level: level, Message: l.Text, Attrs: attrs})
}

// note adds a line of the agent's own to the run's log.
func (s *shipper) note(level, msg string) {
	if s == nil {
		return
	}
	s.add(api.LogLine{Time: time.Now(), Level: level, Message: msg, Attrs: attrsAgent})
}

func (s *shipper) add(l api.LogLine) {
	l.Message = strings.ToValidUTF8(l.Message, "\uFFFD")
	if len(l.Message) > maxMessage {
		l.Message = strings.ToValidUTF8(l.Message[:maxMessage], "") + "… (cut)"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused {
		return
	}
	if len(s.buf) >= bufferLines {
		s.dropped++
		return
	}
	s.buf = append(s.buf, l)
	if len(s.buf) >= batchLines {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// lastLines returns the stderr lines that explain a crash: a panic's
// first line, then the last few lines.
func (s *shipper) lastLines() []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if s.panic != "" {
		out = append(out, s.panic)
	}
	for _, t := range s.tail {
		if t != s.panic {
			out = append(out, t)
		}
	}
	return out
}

func (s *shipper) loop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.kick:
		case <-s.stop:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			s.flush(ctx)
			cancel()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s.flush(ctx)
		cancel()
	}
}

// close ships what is left and stops the shipper.
func (s *shipper) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if !closed {
		close(s.stop)
	}
	<-s.done
}

// flush sends the buffered lines. Lines the server refuses for good (the
// attempt was superseded, the run is gone) are dropped; others are kept
// for the next flush.
func (s *shipper) flush(ctx context.Context) {
	for {
		s.mu.Lock()
		if s.dropped > 0 {
			msg := fmt.Sprintf("%d lines of the flow program's output were dropped: the agent could not ship them to the server fast enough", s.dropped)
			s.dropped = 0
			s.buf = append(s.buf, api.LogLine{Time: time.Now(), Level: "WARN", Message: msg, Attrs: attrsAgent})
		}
		n := min(len(s.buf), batchLines)
		batch := s.buf[:n:n]
		s.mu.Unlock()
		if n == 0 {
			return
		}
		err := s.c.AppendLogs(ctx, s.runID, batch)
		if err != nil && retryable(err) {
			s.log.WarnContext(ctx, "cannot ship the flow program's output; will retry", "flow_run", s.runID, "err", err)
			return
		}
		refused := err != nil && !errors.Is(err, errs.ErrInvalid)
		if err != nil {
			what := "dropping these lines"
			if refused {
				what = "dropping its output from now on"
			}
			s.log.WarnContext(ctx, "the server refused the flow program's output; "+what, "flow_run", s.runID, "lines", n, "err", err)
		}
		s.mu.Lock()
		s.buf = s.buf[n:]
		if refused {
			s.refused, s.buf = true, nil
		}
		s.mu.Unlock()
	}
}

// retryable reports whether a call may succeed when tried again.
func retryable(err error) bool {
	var e *errs.Error
	if !errors.As(err, &e) {
		return true // a transport error, a timeout
	}
	return e.Code == errs.CodeUnavailable || e.Code == errs.CodeInternal
}
