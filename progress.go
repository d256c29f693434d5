package reeve

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/state"
)

// progress shows a run's progress on the command line. On a terminal it
// keeps one status line (task runs done, running, failed, retrying) redrawn
// in place, with failures, retries and log records printed above it; else
// it prints plain lines.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	flow    string
	start   time.Time
	counts  state.Counts // leaf task runs (not mapped parents) by kind
	retries int
	total   int
	last    map[leafKey]state.Kind
	// childLines counts the lines printed per mapped task, on a terminal.
	childLines map[string]int
	drawn      bool
	stop       chan struct{}
	finished   chan struct{}
}

func newProgress(w io.Writer, tty bool, flow string) *progress {
	p := &progress{w: w, tty: tty, flow: flow, start: time.Now(), last: map[leafKey]state.Kind{}, childLines: map[string]int{}}
	if tty {
		p.stop, p.finished = make(chan struct{}), make(chan struct{})
		go p.tick()
	}
	return p
}

func (p *progress) tick() {
	defer close(p.finished)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.draw()
			p.mu.Unlock()
		}
	}
}

// close stops redrawing and clears the status line.
func (p *progress) close() {
	if p.tty {
		close(p.stop)
		<-p.finished
		p.mu.Lock()
		p.clear()
		p.mu.Unlock()
	}
}

func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[2K")
		p.drawn = false
	}
}

func (p *progress) draw() {
	c := &p.counts
	done := 0
	for k, n := range c {
		if state.Kind(k).Finished() {
			done += n
		}
	}
	failed := c[state.Failed] + c[state.TimedOut] + c[state.TriggerFailed]
	line := fmt.Sprintf("%s  %d/%d done · %d running · %d failed · %d retrying (%d retries) · %s",
		p.flow, done, p.total, c[state.Running], failed, c[state.Retrying], p.retries, time.Since(p.start).Round(100*time.Millisecond))
	fmt.Fprint(p.w, "\r\x1b[2K"+line)
	p.drawn = true
}

// println prints a line above the status line.
func (p *progress) println(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintln(p.w, line)
	if p.tty {
		p.draw()
	}
}

func (p *progress) FlowRunState(_ context.Context, run engine.RunRef, s state.State) {
	if s.Kind.Finished() {
		return // the summary says it
	}
	if !p.tty {
		p.println(fmt.Sprintf("%s flow run %s of %s: %s", stamp(s.Time), run.FlowRunID, run.Flow, s.Kind))
	}
}

func (p *progress) TaskRunState(_ context.Context, tr engine.TaskRunRef, s state.State) {
	leaf := !tr.Mapped
	p.mu.Lock()
	if leaf {
		k := leafKey{tr.Task, tr.Index}
		if prev, ok := p.last[k]; ok {
			p.counts[prev]--
		} else {
			p.total++
		}
		p.last[k] = s.Kind
		p.counts[s.Kind]++
		if s.Kind == state.Retrying {
			p.retries++
		}
	}
	p.mu.Unlock()
	// Lines worth reading: every failure and retry; the end of every task
	// that is not a mapped child (a mapped task's own line summarizes them).
	show := s.Kind == state.Retrying || s.Kind.Failure() ||
		(s.Kind.Finished() && tr.Index < 0) || (!p.tty && s.Kind == state.Running && tr.Index < 0)
	if !show {
		return
	}
	if p.tty && tr.Index >= 0 {
		// On a terminal, a big map's retries would scroll everything else
		// away: show the first few per mapped task; the status line counts all.
		p.mu.Lock()
		p.childLines[tr.Task]++
		n := p.childLines[tr.Task]
		p.mu.Unlock()
		if n > maxChildLines {
			if n == maxChildLines+1 {
				p.println(fmt.Sprintf("%s … more retries and failures of %s's children are counted in the status line", stamp(s.Time), tr.Task))
			}
			return
		}
	}
	msg := s.Message
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] + " …"
	}
	line := fmt.Sprintf("%s %-13s %s", stamp(s.Time), s.Kind, tr.Key())
	if msg != "" && s.Kind != state.Success {
		line += ": " + msg
	}
	p.println(line)
}

// maxChildLines bounds the retry and failure lines shown per mapped task on
// a terminal.
const maxChildLines = 20

type leafKey struct {
	task  string
	index int
}

func (p *progress) Log(context.Context, engine.TaskRunRef, slog.Record) {}

func stamp(t time.Time) string { return t.Format("15:04:05.000") }

// logHandler prints task log records as "time LEVEL task_run message k=v",
// through the progress printer so they do not tear the status line.
type logHandler struct {
	p     *progress
	level slog.Level
	attrs []slog.Attr
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	task := ""
	var rest []string
	each := func(a slog.Attr) bool {
		switch a.Key {
		case engine.LogKeyFlow, engine.LogKeyFlowRunID, engine.LogKeyTask:
		case engine.LogKeyTaskRunID:
			task = a.Value.String()
		default:
			rest = append(rest, a.Key+"="+quoteIfNeeded(a.Value.String()))
		}
		return true
	}
	for _, a := range h.attrs {
		each(a)
	}
	r.Attrs(each)
	fmt.Fprintf(&b, "%s %-5s %s: %s", stamp(r.Time), r.Level, task, r.Message)
	for _, s := range rest {
		b.WriteString(" " + s)
	}
	h.p.println(b.String())
	return nil
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clone(h.attrs), as...)
	return &c
}

func (h *logHandler) WithGroup(string) slog.Handler { return h }

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return fmt.Sprintf("%q", s)
	}
	return s
}
