package server

import (
	"sync"
)

// hub wakes requests that wait for changes made in this process: claims
// wait for new runs, log followers for new lines or a finished run. A
// waiter takes the current channel before it looks, then waits on it; a
// change closes it and starts a new one, so no change between looking and
// waiting is missed.
type hub struct {
	mu   sync.Mutex
	runs chan struct{}
	logs map[string]*logWaiters // by flow run ID
}

type logWaiters struct {
	ch      chan struct{}
	waiters int
}

func newHub() *hub {
	return &hub{runs: make(chan struct{}), logs: map[string]*logWaiters{}}
}

// runsChanged returns a channel closed at the next change of runs.
func (h *hub) runsChanged() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.runs
}

// notifyRuns wakes every waiting claim.
func (h *hub) notifyRuns() {
	h.mu.Lock()
	defer h.mu.Unlock()
	close(h.runs)
	h.runs = make(chan struct{})
}

// followLogs returns a channel closed at the next log append or state
// change of run, and a function to call when done waiting.
func (h *hub) followLogs(run string) (<-chan struct{}, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.logs[run]
	if w == nil {
		w = &logWaiters{ch: make(chan struct{})}
		h.logs[run] = w
	}
	w.waiters++
	ch := w.ch
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		w.waiters--
		if w.waiters == 0 && h.logs[run] == w {
			delete(h.logs, run)
		}
	}
}

// notifyLogs wakes the followers of run.
func (h *hub) notifyLogs(run string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w := h.logs[run]; w != nil {
		close(w.ch)
		delete(h.logs, run)
	}
}
