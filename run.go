package reeve

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/result"
)

// Executor names how task runs are executed.
type Executor string

// The executors.
const (
	// Parallel runs independent task runs concurrently on a bounded pool of
	// goroutines (RunOptions.Workers, default 4 per CPU).
	Parallel Executor = "parallel"
	// Sequential runs one task run at a time, in a deterministic order.
	Sequential Executor = "sequential"
)

// RunOptions configure one local run of a flow. The zero value runs in
// parallel with the flow's own result store, secrets from the environment
// and task logs kept only with their task runs.
type RunOptions struct {
	// Params are parameter values by name: values of the parameter's Go
	// type, or anything that converts to it through JSON.
	Params   map[string]any
	Executor Executor // "" means Parallel
	Workers  int      // Parallel: pool size; 0 means 4 per CPU
	// Results overrides the flow's result store URL.
	Results string
	// Secrets resolves reeve.Secret calls; nil means LocalSecrets("").
	Secrets SecretSource
	// LogHandler receives task log records (besides the task run that
	// keeps them); nil sends them nowhere else.
	LogHandler slog.Handler
	LogLevel   slog.Level
	// FlowRunID names the run; "" makes a new time-ordered ID.
	FlowRunID string
	// CancelGrace is how long a cancelled run waits for running tasks to
	// return before marking them Cancelled; 0 means 10 s.
	CancelGrace time.Duration

	reporter engine.Reporter
	now      func() time.Time
}

// SecretSource resolves secret values by name.
type SecretSource = engine.SecretSource

// Run validates the flow and its parameters, then runs it to the end. The
// error is non-nil only when nothing ran (an invalid flow or parameters);
// how the run went is in the returned run's State. Cancelling ctx stops
// scheduling new tasks and ends the run Cancelled.
func (f *Flow) Run(ctx context.Context, o RunOptions) (*FlowRun, error) {
	if err := f.Validate(o.Results); err != nil {
		return nil, err
	}
	if err := f.openStores(ctx, o.Results); err != nil {
		return nil, err
	}
	workers := 1
	switch o.Executor {
	case "", Parallel:
		workers = o.Workers
		if workers < 0 {
			return nil, fmt.Errorf("workers must be at least 1, got %d", workers)
		}
		if workers == 0 {
			workers = engine.DefaultWorkers()
		}
	case Sequential:
	default:
		return nil, fmt.Errorf("unknown executor %q: use %q or %q", o.Executor, Sequential, Parallel)
	}
	secrets := o.Secrets
	if secrets == nil {
		secrets = LocalSecrets("")
	}
	run, err := engine.Execute(ctx, &f.g, engine.Config{
		FlowRunID:   o.FlowRunID,
		Params:      o.Params,
		Workers:     workers,
		ResultStore: o.Results,
		Reporter:    o.reporter,
		LogHandler:  o.LogHandler,
		LogLevel:    o.LogLevel,
		Secrets:     secrets,
		Now:         o.now,
		Validated:   true,
		CancelGrace: o.CancelGrace,
	})
	if err != nil {
		return nil, err
	}
	return &FlowRun{run: run, g: &f.g}, nil
}

// FlowRun is a finished run of a flow.
type FlowRun struct {
	run *engine.Run
	g   *engine.Graph
}

// ID returns the flow run's ID.
func (r *FlowRun) ID() string { return r.run.ID }

// Flow returns the flow's name.
func (r *FlowRun) Flow() string { return r.run.Flow }

// State returns the flow run's final state.
func (r *FlowRun) State() State { return r.run.State }

// History returns every state the flow run went through, in order.
func (r *FlowRun) History() []State { return r.run.History }

// TaskRun is one task run of a flow run. A mapped task has a parent task run
// (its Key is the task's ID) and one child per element ("ID[0]", "ID[1]", ...).
type TaskRun struct {
	Key      string // "extract", or "transform[3]" for a mapped child
	Task     string // the bound task's ID in the flow
	TaskName string // the registered task name
	MapIndex int    // the child's index; -1 when not a mapped child
	Children int    // a mapped task's number of children
	State    State
	History  []State
	Logs     []slog.Record
}

func (r *FlowRun) view(tr *engine.TaskRun) TaskRun {
	n := r.g.Nodes[tr.Node]
	return TaskRun{
		Key: tr.Key(n), Task: n.ID, TaskName: n.Def.Name, MapIndex: tr.Index,
		Children: len(tr.Children), State: tr.State, History: tr.History, Logs: tr.Logs,
	}
}

// TaskRuns returns every task run, in binding order, children after their
// mapped parent.
func (r *FlowRun) TaskRuns() []TaskRun {
	var out []TaskRun
	for i := range r.run.Tasks {
		tr := &r.run.Tasks[i]
		out = append(out, r.view(tr))
		for c := range tr.Children {
			out = append(out, r.view(&tr.Children[c]))
		}
	}
	return out
}

// TaskRun returns the task run with the given key ("load", "transform[3]").
func (r *FlowRun) TaskRun(key string) (TaskRun, bool) {
	for i := range r.run.Tasks {
		tr := &r.run.Tasks[i]
		if tr.Key(r.g.Nodes[tr.Node]) == key {
			return r.view(tr), true
		}
		for c := range tr.Children {
			if tr.Children[c].Key(r.g.Nodes[tr.Node]) == key {
				return r.view(&tr.Children[c]), true
			}
		}
	}
	return TaskRun{}, false
}

// Of returns the task run behind a task handle of the flow.
func (r *FlowRun) Of(u Upstream) (TaskRun, bool) {
	c := u.core()
	if c.f == nil || &c.f.g != r.g || c.arg.Kind != engine.ArgNode {
		return TaskRun{}, false
	}
	return r.view(&r.run.Tasks[c.arg.Node]), true
}

// ResultOf returns the result of the task behind ref in run r, or an error
// saying why there is none.
func ResultOf[T any](r *FlowRun, ref Ref[T]) (T, error) {
	var zero T
	tr, ok := r.Of(ref)
	if !ok {
		return zero, fmt.Errorf("the handle does not belong to flow %q", r.Flow())
	}
	if !tr.State.Kind.Successful() || tr.State.Kind == Skipped {
		return zero, fmt.Errorf("task %q has no result: it is %s", tr.Key, tr.State)
	}
	v := r.run.Tasks[ref.arg.Node].Value
	t, ok := v.(T)
	if !ok && v != nil {
		return zero, fmt.Errorf("task %q returned %T, not %T", tr.Key, v, zero)
	}
	return t, nil
}

// openStores opens every result store the run will write to, so a store
// whose driver is not linked, or that cannot be reached, stops the run
// before anything runs.
func (f *Flow) openStores(ctx context.Context, override string) error {
	seen := map[string]bool{}
	for _, n := range f.g.Nodes {
		if !n.Opts.Checkpoint && n.Opts.CacheFor <= 0 {
			continue
		}
		url := n.Opts.ResultStore
		for _, u := range []string{override, f.g.ResultStore} {
			if url == "" {
				url = u
			}
		}
		if seen[url] {
			continue
		}
		seen[url] = true
		if _, err := result.Open(ctx, url); err != nil {
			return fmt.Errorf("flow %q: task %q: %w", f.g.Flow, n.ID, err)
		}
	}
	return nil
}
