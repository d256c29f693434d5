package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Log attribute keys, defined once for every part of Reeve.
const (
	LogKeyFlow      = "flow"
	LogKeyFlowRunID = "flow_run_id"
	LogKeyTask      = "task"
	LogKeyTaskRunID = "task_run_id"
)

// SecretSource resolves secret values by name.
type SecretSource interface {
	// Secret returns the value of the named secret, or an error that names
	// it and says how to provide it.
	Secret(ctx context.Context, name string) (string, error)
}

type ctxKey struct{}

// taskCtx is the context a task runs with: its parent plus the task run,
// in one allocation.
type taskCtx struct {
	context.Context
	r       *runner
	tr      *TaskRun
	attempt int
	log     atomic.Pointer[slog.Logger]
}

// Value returns the taskCtx itself for ctxKey, so lookups need no extra layer.
func (c *taskCtx) Value(key any) any {
	if key == (ctxKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// TaskInfo describes the task run a context belongs to.
type TaskInfo struct {
	Flow      string
	FlowRunID string
	Task      string // the bound task's ID
	TaskName  string // the registered task name
	TaskRunID string // task run key: Task, or Task[index] for a mapped child
	MapIndex  int    // -1 when not a mapped child
	Attempt   int
}

// Info returns the task run of ctx, or false outside a task.
func Info(ctx context.Context) (TaskInfo, bool) {
	tc, _ := ctx.Value(ctxKey{}).(*taskCtx)
	if tc == nil {
		return TaskInfo{}, false
	}
	n := tc.r.g.Nodes[tc.tr.Node]
	return TaskInfo{
		Flow: tc.r.g.Flow, FlowRunID: tc.r.id,
		Task: n.ID, TaskName: n.Def.Name, TaskRunID: tc.tr.Key(n),
		MapIndex: tc.tr.Index, Attempt: tc.attempt,
	}, true
}

// Logger returns the logger of the task run of ctx: its records carry the
// flow, flow run, task and task run attributes, are kept with the task run
// and go to the run's log handler, with secret values redacted. Outside a
// task it returns slog.Default().
func Logger(ctx context.Context) *slog.Logger {
	tc, _ := ctx.Value(ctxKey{}).(*taskCtx)
	if tc == nil {
		return slog.Default()
	}
	if l := tc.log.Load(); l != nil {
		return l
	}
	n := tc.r.g.Nodes[tc.tr.Node]
	l := slog.New(&taskHandler{r: tc.r, tr: tc.tr, attrs: []slog.Attr{
		slog.String(LogKeyFlow, tc.r.g.Flow),
		slog.String(LogKeyFlowRunID, tc.r.id),
		slog.String(LogKeyTask, n.ID),
		slog.String(LogKeyTaskRunID, tc.tr.Key(n)),
	}})
	tc.log.Store(l)
	return l
}

// Secret resolves a secret the flow declared, for the task run of ctx. The
// value is redacted from every later state message and log record of the run.
func Secret(ctx context.Context, name string) (string, error) {
	tc, _ := ctx.Value(ctxKey{}).(*taskCtx)
	if tc == nil {
		return "", fmt.Errorf("secret %q: reeve.Secret must be called with the context a task receives", name)
	}
	r := tc.r
	if !slices.Contains(r.g.Secrets, name) {
		return "", fmt.Errorf("secret %q is not declared by flow %q; add reeve.Secrets(%q) to its reeve.NewFlow options", name, r.g.Flow, name)
	}
	if r.cfg.Secrets == nil {
		return "", fmt.Errorf("secret %q: no secret source is configured for this run", name)
	}
	v, err := r.cfg.Secrets.Secret(ctx, name)
	if err != nil {
		return "", err
	}
	r.redact.add(v)
	return v, nil
}

// redactor replaces known secret values in text.
type redactor struct {
	mu     sync.Mutex
	values atomic.Pointer[[]string]
}

// Redacted is what a secret value is replaced with.
const Redacted = "[REDACTED]"

func (rd *redactor) add(v string) {
	if len(v) < 3 { // too short to redact without mangling ordinary text
		return
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	var cur []string
	if p := rd.values.Load(); p != nil {
		cur = *p
	}
	if slices.Contains(cur, v) {
		return
	}
	next := append(slices.Clone(cur), v)
	// Longest first, so a secret containing another is replaced whole.
	slices.SortFunc(next, func(a, b string) int { return len(b) - len(a) })
	rd.values.Store(&next)
}

func (rd *redactor) apply(s string) string {
	p := rd.values.Load()
	if p == nil {
		return s
	}
	for _, v := range *p {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	return s
}

// taskHandler keeps a task's log records with its task run and forwards
// them, redacted, to the run's handler and reporter.
type taskHandler struct {
	r     *runner
	tr    *TaskRun
	attrs []slog.Attr
	group string
}

func (h *taskHandler) Enabled(ctx context.Context, l slog.Level) bool { return l >= h.r.cfg.LogLevel }

func (h *taskHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.redact.apply(rec.Message), rec.PC)
	attrs := make([]slog.Attr, 0, len(h.attrs)+rec.NumAttrs())
	attrs = append(attrs, h.attrs...)
	rec.Attrs(func(a slog.Attr) bool {
		if h.group != "" {
			a = slog.Group(h.group, a)
		}
		attrs = append(attrs, h.r.redactAttr(a))
		return true
	})
	out.AddAttrs(attrs...)
	h.r.keepLog(h.tr, out)
	if h.r.cfg.Reporter != nil {
		h.r.cfg.Reporter.Log(ctx, h.r.ref(h.tr), out)
	}
	if base := h.r.cfg.LogHandler; base != nil && base.Enabled(ctx, rec.Level) {
		return base.Handle(ctx, out)
	}
	return nil
}

func (h *taskHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = slices.Clone(h.attrs)
	for _, a := range as {
		if h.group != "" {
			a = slog.Group(h.group, a)
		}
		c.attrs = append(c.attrs, h.r.redactAttr(a))
	}
	return &c
}

func (h *taskHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

func (r *runner) redactAttr(a slog.Attr) slog.Attr {
	a.Value = a.Value.Resolve()
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(r.redact.apply(a.Value.String()))
	case slog.KindGroup:
		g := a.Value.Group()
		out := make([]slog.Attr, len(g))
		for i, x := range g {
			out[i] = r.redactAttr(x)
		}
		a.Value = slog.GroupValue(out...)
	case slog.KindAny:
		if r.redact.values.Load() == nil {
			return a // no secret resolved yet: nothing to hide
		}
		var text string
		switch v := a.Value.Any().(type) {
		case error:
			text = v.Error()
		case fmt.Stringer:
			text = v.String()
		case []byte:
			text = string(v)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				b = []byte(fmt.Sprintf("%+v", v))
			}
			text = string(b)
		}
		if red := r.redact.apply(text); red != text {
			a.Value = slog.StringValue(red)
		} else if _, isErr := a.Value.Any().(error); isErr {
			a.Value = slog.StringValue(text)
		}
	}
	return a
}

// maxLogsPerTaskRun bounds the records kept in memory with one task run.
const maxLogsPerTaskRun = 10000

func (r *runner) keepLog(tr *TaskRun, rec slog.Record) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if tr.logsClosed {
		return
	}
	if len(tr.Logs) >= maxLogsPerTaskRun {
		tr.DroppedLogs++
		return
	}
	tr.Logs = append(tr.Logs, rec)
}
