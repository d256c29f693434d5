package engine

// Resuming a flow run from Config.Prior, parking long retries
// (Config.MaxRetryWait) and persisting every result (Config.CheckpointAll).
//
// A task run is taken over from Prior ("adopted") when its prior state is
// finished and successful: Success, Cached or Skipped for a task run that is
// not a mapped parent; Mapped or Skipped for a mapped parent, and then only
// if every child has a successful prior state too (otherwise the parent is
// expanded again and only the children without one run). An adopted task
// run starts in its prior state, which is never reported; it waits for its
// upstream task runs like any other, and when it is its turn its result is
// loaded from the location in its prior state if, and only if, a task run
// that still has to run takes it as an input. A result that is needed but
// was not persisted, or that cannot be loaded, fails that downstream task
// run with a message naming both.
//
// A prior Retrying state is adopted too (not reported again): the task run
// continues with the next attempt, no earlier than the prior StartAt. A prior
// Running state (an attempt cut short by a lost runner) counts as a used
// attempt: the task run is reported Pending again and runs attempt N+1.
// Other prior states (Pending, Failed, TimedOut, TriggerFailed, Cancelled)
// start over at attempt 1 with the full retry budget: restarting a finished
// failure is a deliberate new try.

import (
	"container/heap"
	"context"
	"fmt"
	"time"

	"github.com/reevehq/reeve/internal/result"
	"github.com/reevehq/reeve/internal/state"
)

// unavailable says why the result of a task run taken from Prior cannot be
// had: err is nil when it was never persisted.
type unavailable struct {
	key  string // the task run whose result is missing, e.g. "transform[3]"
	task string // its task ID, e.g. "transform"
	err  error
}

func (u *unavailable) message(consumer string) string {
	if u.err == nil {
		return fmt.Sprintf("task %q needs the result of task %q, which finished in an earlier attempt of this run but did not persist its result: "+
			"turn on checkpointing for %q (reeve.Checkpoint()) with a result store, so resumed runs can reuse it", consumer, u.key, u.task)
	}
	return fmt.Sprintf("task %q needs the result of task %q, which finished in an earlier attempt of this run, but it could not be loaded: %v; "+
		"make sure the result store is reachable and still holds the result, or run the flow again from the start", consumer, u.key, u.err)
}

// adoptNode takes the prior state of a task (not a mapped child) when it is
// reusable or Retrying, and reports whether it did. It reports nothing.
func (r *runner) adoptNode(tr *TaskRun) bool {
	node := r.g.Nodes[tr.Node]
	p, ok := r.cfg.Prior[node.ID]
	if !ok {
		return false
	}
	switch {
	case node.Mapped:
		if p.Kind != state.Skipped && (p.Kind != state.Mapped || !r.priorChildrenReusable(node, p)) {
			return false
		}
	case p.Kind == state.Success, p.Kind == state.Cached, p.Kind == state.Skipped, p.Kind == state.Retrying:
	default:
		return false
	}
	tr.State, tr.History = p, []state.State{p}
	return true
}

// adoptChild is adoptNode for a mapped child.
func (r *runner) adoptChild(c *TaskRun) bool {
	p, ok := r.cfg.Prior[c.Key(r.g.Nodes[c.Node])]
	if !ok || !(childReusable(p.Kind) || p.Kind == state.Retrying) {
		return false
	}
	c.State, c.History = p, []state.State{p}
	return true
}

func childReusable(k state.Kind) bool {
	return k == state.Success || k == state.Cached || k == state.Skipped
}

// priorChildren returns the number of children of a mapped task's prior
// Mapped state: its counts, else the prior children keys "ID[0]", "ID[1]", ...
func (r *runner) priorChildren(node *Node, p state.State) int {
	if p.Counts != nil {
		return p.Counts.Total()
	}
	n := 0
	for {
		if _, ok := r.cfg.Prior[taskKey(node.ID, n)]; !ok {
			return n
		}
		n++
	}
}

func (r *runner) priorChildrenReusable(node *Node, p state.State) bool {
	for j := range r.priorChildren(node, p) {
		c, ok := r.cfg.Prior[taskKey(node.ID, j)]
		if !ok || !childReusable(c.Kind) {
			return false
		}
	}
	return true
}

// reuse moves on from an adopted task run whose upstream task runs have
// finished: it loads the result if a task run still to run needs it.
func (r *runner) reuse(ctx context.Context, tr *TaskRun) {
	node := r.g.Nodes[tr.Node]
	if tr.Index < 0 && node.Mapped {
		if tr.State.Kind == state.Mapped {
			r.reuseParent(ctx, tr)
			return
		}
		r.nodeDone(ctx, tr.Node) // Skipped: no value
		return
	}
	if tr.State.Kind != state.Skipped && r.valueNeeded(tr.Node) {
		if res := tr.State.Result; res.Persisted() {
			r.enqueue(&job{tr: tr, node: node, phase: phaseLoad, result: res})
			return
		}
		r.markUnavailable(tr, nil)
	}
	r.reusedDone(ctx, tr)
}

// reuseParent recreates the children of an adopted Mapped task from Prior
// and loads their results if needed.
func (r *runner) reuseParent(ctx context.Context, tr *TaskRun) {
	node := r.g.Nodes[tr.Node]
	n := r.priorChildren(node, tr.State)
	tr.Children = make([]TaskRun, n)
	tr.expanded, tr.left = true, n
	for j := range tr.Children {
		c := &tr.Children[j]
		c.Node, c.Index = tr.Node, j
		r.adoptChild(c) // adoptNode checked they all are reusable
	}
	if n == 0 {
		r.collectReused(tr)
		r.nodeDone(ctx, tr.Node)
		return
	}
	for j := range tr.Children {
		r.reuse(ctx, &tr.Children[j])
	}
}

// reusedDone moves the graph on after an adopted task run, like endTaskRun
// but without a state change.
func (r *runner) reusedDone(ctx context.Context, tr *TaskRun) {
	if tr.Index < 0 {
		r.nodeDone(ctx, tr.Node)
		return
	}
	parent := &r.out.Tasks[tr.Node]
	parent.left--
	if parent.left != 0 {
		return
	}
	if parent.State.Kind.Finished() { // adopted whole
		r.collectReused(parent)
		r.nodeDone(ctx, parent.Node)
		return
	}
	r.finishParent(ctx, parent)
}

// collectReused sets the value of an adopted Mapped task from its children.
func (r *runner) collectReused(tr *TaskRun) {
	values := make([]any, len(tr.Children))
	for j := range tr.Children {
		values[j] = tr.Children[j].Value
	}
	tr.Value = r.g.Nodes[tr.Node].Def.Collect(values)
	if r.unavail != nil {
		r.parentUnavailable(tr)
	}
}

// parentUnavailable marks a mapped task's value unavailable when one of its
// children's is.
func (r *runner) parentUnavailable(tr *TaskRun) {
	for j := range tr.Children {
		if u := r.unavail[&tr.Children[j]]; u != nil {
			r.unavail[tr] = u
			return
		}
	}
}

// valueNeeded reports whether a task run that is still to run takes node i's
// result as an input. Downstream task runs adopted from Prior do not.
func (r *runner) valueNeeded(i int) bool {
	for _, d := range r.down[i] {
		if r.out.Tasks[d].State.Kind.Finished() {
			continue // adopted: it waits for node i, so nothing else finished it
		}
		for _, a := range r.g.Nodes[d].Args {
			if a.Kind == ArgNode && a.Node == i {
				return true
			}
		}
	}
	return false
}

func (r *runner) markUnavailable(tr *TaskRun, err error) {
	if r.unavail == nil {
		r.unavail = make(map[*TaskRun]*unavailable)
	}
	node := r.g.Nodes[tr.Node]
	r.unavail[tr] = &unavailable{key: tr.Key(node), task: node.ID, err: err}
}

// inputsUnavailable fails task run tr of node when one of its inputs is the
// result of an adopted task run that could not be had, and reports whether
// it did. j is the child index when tr is a mapped child: then only the
// inputs taken element-wise from an expanded mapped task are checked (the
// parent checked the others).
func (r *runner) inputsUnavailable(ctx context.Context, node *Node, tr *TaskRun, j int) bool {
	for _, a := range node.Args {
		if a.Kind != ArgNode {
			continue
		}
		up := &r.out.Tasks[a.Node]
		if a.Each && up.expanded {
			if j < 0 {
				continue
			}
			up = &up.Children[j]
		} else if j >= 0 {
			continue
		}
		if u := r.unavail[up]; u != nil {
			r.endTaskRun(ctx, tr, state.State{Kind: state.Failed, Time: r.now(), Message: u.message(tr.Key(node))})
			return true
		}
	}
	return false
}

// load reads an adopted task run's result from its store; on a worker.
func (r *runner) load(ctx context.Context, j *job) {
	res := j.result
	name := res.Serializer
	if name == "" {
		name = j.node.Opts.Serializer
	}
	ser, err := result.LookupSerializer(name)
	if err != nil {
		j.err = err
		return
	}
	st, err := result.Open(ctx, res.Store)
	if err != nil {
		j.err = err
		return
	}
	data, err := st.Get(ctx, res.Key)
	if err != nil {
		j.err = err
		return
	}
	j.err = protect("serializer "+ser.Name(), func() (err error) {
		j.value, err = j.node.Def.DecodeResult(ser.Unmarshal, data)
		return err
	})
}

// loaded takes the outcome of a load job, in the engine's goroutine.
func (r *runner) loaded(ctx context.Context, j *job) {
	if j.err != nil {
		r.markUnavailable(j.tr, j.err)
	} else {
		j.tr.Value = j.value
	}
	r.reusedDone(ctx, j.tr)
}

// resumeJob continues the attempts of a task run from its prior state: after
// a Retrying or Running attempt N comes attempt N+1, and a Retrying task run
// starts no earlier than its StartAt. It reports whether it queued the job.
func (r *runner) resumeJob(j *job) bool {
	p, ok := r.cfg.Prior[j.tr.Key(j.node)]
	if !ok || (p.Kind != state.Retrying && p.Kind != state.Running) {
		return false
	}
	if p.Attempt > 0 {
		j.attempt = p.Attempt + 1
	}
	if p.Kind != state.Retrying {
		return false
	}
	j.phase = phaseRun // the cache was looked up before the first attempt
	now := r.now()
	if !p.StartAt.After(now) {
		return false
	}
	j.startAt = p.StartAt
	if !r.park(j, now) {
		heap.Push(&r.delayed, j)
	}
	return true
}

// park sets a retry aside when it starts more than Config.MaxRetryWait
// after now, and reports whether it did.
func (r *runner) park(j *job, now time.Time) bool {
	if r.cfg.MaxRetryWait <= 0 || j.startAt.Sub(now) <= r.cfg.MaxRetryWait {
		return false
	}
	r.parked = append(r.parked, j)
	return true
}

// finishParked ends a run that has parked retries and nothing else to do:
// Scheduled, for the earliest retry.
func (r *runner) finishParked(ctx context.Context) {
	first := r.parked[0]
	for _, j := range r.parked[1:] {
		if j.startAt.Before(first.startAt) {
			first = j
		}
	}
	msg := fmt.Sprintf("task %q retries at %s: the run waits until then", first.tr.Key(first.node), first.startAt.UTC().Format(time.RFC3339))
	if n := len(r.parked); n > 1 {
		msg += fmt.Sprintf(" (%d task runs wait to retry)", n)
	}
	var counts state.Counts
	r.walk(func(tr *TaskRun) {
		if !r.g.Nodes[tr.Node].Mapped || tr.Index >= 0 {
			counts[tr.State.Kind]++
		}
	})
	r.setFlowState(ctx, state.State{Kind: state.Scheduled, Message: msg, Time: r.now(), StartAt: first.startAt, Counts: &counts})
}

// checkpointsAll reports whether Config.CheckpointAll persists node's
// results: the task did not set Checkpoint explicitly and has a store.
func (r *runner) checkpointsAll(node *Node) bool {
	return node.Opts.set&setCheckpoint == 0 &&
		(node.Opts.ResultStore != "" || r.cfg.ResultStore != "" || r.g.ResultStore != "")
}
