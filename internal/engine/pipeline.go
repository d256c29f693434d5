package engine

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/reevehq/reeve/internal/result"
	"github.com/reevehq/reeve/internal/state"
)

// prepare is called once every upstream node of node i has finished: it
// applies skip propagation and the trigger, then queues the task run (or,
// for a mapped task, creates and queues its children).
func (r *runner) prepare(ctx context.Context, i int) {
	if r.cancelling {
		return // finish marks it Cancelled
	}
	node, tr := r.g.Nodes[i], &r.out.Tasks[i]
	if tr.State.Kind.Finished() { // taken from Config.Prior
		r.reuse(ctx, tr)
		return
	}
	if !node.Mapped && r.allUpstreamSucceeded(node) {
		if r.unavail != nil && r.inputsUnavailable(ctx, node, tr, -1) {
			return
		}
		r.schedule(tr, r.args(node, tr, -1))
		return
	}
	ups, elementwise := r.parentUpstream(node)
	if msg := skipMessage(node, ups); msg != "" {
		r.endTaskRun(ctx, tr, state.State{Kind: state.Skipped, Message: msg, Time: r.now()})
		return
	}
	// With element-wise inputs the trigger is checked per child; a trigger
	// that needs all upstream tasks to pass must pass on the others first.
	if !elementwise || node.Opts.Trigger.needsAll() {
		if msg := r.checkTrigger(node, ups); msg != "" {
			r.endTaskRun(ctx, tr, state.State{Kind: state.TriggerFailed, Message: msg, Time: r.now()})
			return
		}
	}
	if r.unavail != nil && r.inputsUnavailable(ctx, node, tr, -1) {
		return
	}
	if node.Mapped {
		r.expand(ctx, tr, ups, elementwise)
		return
	}
	r.schedule(tr, r.args(node, tr, -1))
}

// parentUpstream returns the upstream states that apply to the task run as a
// whole, and whether some mapped input comes element by element from an
// expanded mapped task (then the trigger is checked per child).
func (r *runner) parentUpstream(node *Node) (ups []Upstream, elementwise bool) {
	add := func(u int) {
		id := r.g.Nodes[u].ID
		for _, x := range ups {
			if x.Task == id {
				return
			}
		}
		ups = append(ups, Upstream{Task: id, State: r.out.Tasks[u].State})
	}
	for _, a := range node.Args {
		if a.Kind != ArgNode {
			continue
		}
		if a.Each && r.out.Tasks[a.Node].expanded {
			elementwise = true
			continue
		}
		add(a.Node)
	}
	for _, u := range node.After {
		add(u)
	}
	return ups, elementwise
}

// checkTrigger evaluates a node's trigger; a custom trigger that panics
// fails the check with the panic in the message.
func (r *runner) checkTrigger(node *Node, ups []Upstream) (msg string) {
	defer func() {
		if p := recover(); p != nil {
			msg = fmt.Sprintf("trigger %s panicked: %v\n\n%s", node.Opts.Trigger.Name, p, debug.Stack())
		}
	}()
	return node.Opts.Trigger.check(ups)
}

// allUpstreamSucceeded is the fast path of prepare for the default trigger:
// every upstream succeeded and none was skipped, so the task runs.
func (r *runner) allUpstreamSucceeded(node *Node) bool {
	if t := node.Opts.Trigger; t.Fn != nil || (t.Name != "" && t.Name != AllSuccessful) {
		return false
	}
	for _, a := range node.Args {
		if a.Kind == ArgNode {
			if k := r.out.Tasks[a.Node].State.Kind; !k.Successful() || k == state.Skipped {
				return false
			}
		}
	}
	for _, u := range node.After {
		if k := r.out.Tasks[u].State.Kind; !k.Successful() || k == state.Skipped {
			return false
		}
	}
	return true
}

func skipMessage(node *Node, ups []Upstream) string {
	if !node.Opts.skipOnSkip() {
		return ""
	}
	for _, u := range ups {
		if u.State.Kind == state.Skipped {
			return fmt.Sprintf("upstream %q was skipped", u.Task)
		}
	}
	return ""
}

// expand creates the children of a mapped task, one per element of its
// mapped inputs (zipped), and queues them.
func (r *runner) expand(ctx context.Context, tr *TaskRun, ups []Upstream, elementwise bool) {
	node := r.g.Nodes[tr.Node]
	n := -1
	mismatch := false
	var lens []string
	eachVals := make([][]any, len(node.Args))
	for ai, a := range node.Args {
		if !a.Each {
			continue
		}
		var cnt int
		if a.Kind == ArgNode && r.out.Tasks[a.Node].expanded {
			cnt = len(r.out.Tasks[a.Node].Children)
		} else {
			elems, err := node.Def.Elems[ai](r.value(a))
			if err != nil {
				r.endTaskRun(ctx, tr, state.State{Kind: state.Failed, Time: r.now(),
					Message: fmt.Sprintf("cannot map over input %d (%s): %v", ai+1, r.argName(a), err)})
				return
			}
			eachVals[ai], cnt = elems, len(elems)
		}
		lens = append(lens, fmt.Sprintf("input %d (%s) has %d", ai+1, r.argName(a), cnt))
		if n < 0 {
			n = cnt
		} else if cnt != n {
			mismatch = true
		}
	}
	if mismatch {
		r.endTaskRun(ctx, tr, state.State{Kind: state.Failed, Time: r.now(),
			Message: "mapped inputs have different lengths: " + strings.Join(lens, ", ") + "; zipped lists must be equally long"})
		return
	}
	n = max(n, 0)
	tr.expanded, tr.eachVals, tr.parentUps, tr.elementwise = true, eachVals, ups, elementwise
	tr.Children = make([]TaskRun, n)
	tr.left = n
	r.setState(ctx, tr, state.State{Kind: state.Running, Message: fmt.Sprintf("mapped over %d elements", n), Time: r.now()})
	if n == 0 {
		r.finishParent(ctx, tr)
		return
	}
	now := r.now()
	for j := range tr.Children {
		c := &tr.Children[j]
		c.Node, c.Index = tr.Node, j
		if len(r.cfg.Prior) > 0 && r.adoptChild(c) {
			continue
		}
		r.setState(ctx, c, state.State{Kind: state.Pending, Time: now})
	}
	for j := range tr.Children {
		r.prepareChild(ctx, tr, j)
	}
}

// prepareChild checks skip propagation and the trigger of child j when they
// depend on the child's own upstream elements, then queues it.
func (r *runner) prepareChild(ctx context.Context, parent *TaskRun, j int) {
	node, c := r.g.Nodes[parent.Node], &parent.Children[j]
	if c.State.Kind.Finished() { // taken from Config.Prior
		r.reuse(ctx, c)
		return
	}
	if parent.elementwise {
		ups := make([]Upstream, len(parent.parentUps), len(parent.parentUps)+len(node.Args))
		copy(ups, parent.parentUps)
		for _, a := range node.Args {
			if a.Kind == ArgNode && a.Each && r.out.Tasks[a.Node].expanded {
				src := &r.out.Tasks[a.Node].Children[j]
				ups = append(ups, Upstream{Task: src.Key(r.g.Nodes[a.Node]), State: src.State})
			}
		}
		if msg := skipMessage(node, ups); msg != "" {
			r.endTaskRun(ctx, c, state.State{Kind: state.Skipped, Message: msg, Time: r.now()})
			return
		}
		if msg := r.checkTrigger(node, ups); msg != "" {
			r.endTaskRun(ctx, c, state.State{Kind: state.TriggerFailed, Message: msg, Time: r.now()})
			return
		}
		if r.unavail != nil && r.inputsUnavailable(ctx, node, c, j) {
			return
		}
	}
	r.schedule(c, r.args(node, parent, j))
}

func (r *runner) schedule(tr *TaskRun, args []any) {
	node := r.g.Nodes[tr.Node]
	j := &job{tr: tr, node: node, args: args, attempt: 1, phase: phaseRun}
	if node.Opts.CacheFor > 0 {
		j.phase = phaseLookup
	}
	if len(r.cfg.Prior) > 0 && r.resumeJob(j) {
		return
	}
	r.enqueue(j)
}

// args returns the arguments of a task run; j is the child index for a
// mapped task's child, -1 otherwise.
func (r *runner) args(node *Node, tr *TaskRun, j int) []any {
	if len(node.Args) == 0 {
		return nil
	}
	var args []any
	if len(node.Args) <= len(tr.argBuf) && j < 0 {
		args = tr.argBuf[:len(node.Args)]
	} else {
		args = make([]any, len(node.Args))
	}
	for ai, a := range node.Args {
		if a.Each && j >= 0 {
			if vals := tr.eachVals[ai]; vals != nil {
				args[ai] = vals[j]
			} else {
				args[ai] = r.out.Tasks[a.Node].Children[j].Value
			}
			continue
		}
		args[ai] = r.value(a)
	}
	return args
}

func (r *runner) value(a Arg) any {
	switch a.Kind {
	case ArgNode:
		return r.out.Tasks[a.Node].Value
	case ArgParam:
		return r.params[a.Param]
	}
	return a.Value
}

func (r *runner) argName(a Arg) string {
	switch a.Kind {
	case ArgNode:
		return fmt.Sprintf("from task %q", r.g.Nodes[a.Node].ID)
	case ArgParam:
		return fmt.Sprintf("parameter %q", r.g.Params[a.Param].Name)
	}
	return "a constant"
}

// complete handles the outcome of a job, in the engine's goroutine.
func (r *runner) complete(ctx context.Context, j *job) {
	tr, node := j.tr, j.node
	if j.phase == phaseLoad {
		r.loaded(ctx, j)
		return
	}
	if tr.State.Kind.Finished() {
		return // abandoned after a cancellation and already marked
	}
	if j.phase == phaseLookup {
		switch {
		case j.err != nil:
			r.endTaskRun(ctx, tr, state.State{Kind: state.Failed, Message: j.err.Error(), Time: r.now()})
		case j.hit:
			tr.Value = j.value
			r.endTaskRun(ctx, tr, state.State{Kind: state.Cached, Time: r.now(), Result: j.result,
				Message: "reused a cached result from " + j.result.Location()})
		default:
			j.phase = phaseRun
			r.enqueue(j)
		}
		return
	}
	if j.err == nil {
		tr.Value = j.value
		res := j.result
		if res == nil {
			res = &state.Result{}
		}
		res.Value = j.value
		r.endTaskRun(ctx, tr, state.State{Kind: state.Success, Time: r.now(), Attempt: j.attempt, Result: res})
		return
	}
	kind, msg, retry := state.Failed, j.err.Error(), true
	var delay time.Duration
	forced := false
	switch sig := asSignal(j.err); {
	case r.ctx.Err() != nil:
		kind, msg, retry = state.Cancelled, cancelMessage(r.ctx)+": "+msg, false
	case j.timedOut:
		kind = state.TimedOut
	case sig != nil:
		switch sig.Kind {
		case state.Skipped:
			kind, retry = state.Skipped, false
		case state.Retrying:
			forced, delay = true, sig.Delay
		default:
			retry = false
		}
	}
	if retry && (forced || j.attempt <= node.Opts.Retries) {
		if delay <= 0 {
			delay = node.Opts.retryDelay(j.attempt)
		}
		now := r.now()
		j.startAt = now.Add(delay)
		note := fmt.Sprintf("attempt %d failed", j.attempt)
		if !forced {
			note = fmt.Sprintf("attempt %d of %d failed", j.attempt, node.Opts.Retries+1)
		}
		if kind == state.TimedOut {
			note += " (timed out)"
		}
		r.setState(ctx, tr, state.State{Kind: state.Retrying, Time: now, StartAt: j.startAt, Attempt: j.attempt,
			Message: fmt.Sprintf("%s; retrying in %s: %s", note, delay, msg)})
		j.attempt++
		j.value, j.err, j.timedOut, j.result = nil, nil, false, nil
		if delay <= 0 {
			r.enqueue(j)
		} else if !r.park(j, now) {
			heap.Push(&r.delayed, j)
		}
		return
	}
	r.endTaskRun(ctx, tr, state.State{Kind: kind, Message: msg, Time: r.now(), Attempt: j.attempt})
}

// endTaskRun puts a task run in a finished state and moves the graph on.
func (r *runner) endTaskRun(ctx context.Context, tr *TaskRun, s state.State) {
	r.setState(ctx, tr, s)
	r.logMu.Lock()
	tr.logsClosed = true
	r.logMu.Unlock()
	if tr.Index >= 0 {
		parent := &r.out.Tasks[tr.Node]
		parent.left--
		if parent.left == 0 && !parent.State.Kind.Finished() {
			r.finishParent(ctx, parent)
		}
		return
	}
	r.nodeDone(ctx, tr.Node)
}

// finishParent sets a mapped task's final state from its children.
func (r *runner) finishParent(ctx context.Context, tr *TaskRun) {
	node := r.g.Nodes[tr.Node]
	var counts state.Counts
	values := make([]any, len(tr.Children))
	for j := range tr.Children {
		c := &tr.Children[j]
		counts[c.State.Kind]++
		values[j] = c.Value
	}
	n := len(tr.Children)
	failed := counts[state.Failed] + counts[state.TimedOut] + counts[state.TriggerFailed]
	s := state.State{Time: r.now(), Counts: &counts}
	switch {
	case failed > 0:
		s.Kind, s.Message = state.Failed, fmt.Sprintf("%d of %d mapped task runs failed (%s)", failed, n, counts.String())
	case counts[state.Cancelled] > 0:
		s.Kind, s.Message = state.Cancelled, fmt.Sprintf("%d of %d mapped task runs were cancelled", counts[state.Cancelled], n)
	default:
		s.Kind, s.Message = state.Mapped, fmt.Sprintf("%d mapped task runs (%s)", n, counts.String())
	}
	tr.Value = node.Def.Collect(values)
	if r.unavail != nil {
		r.parentUnavailable(tr)
	}
	s.Result = &state.Result{Value: tr.Value}
	tr.eachVals, tr.parentUps = nil, nil
	r.endTaskRun(ctx, tr, s)
}

// nodeDone moves downstream nodes whose upstream nodes have all finished.
func (r *runner) nodeDone(ctx context.Context, i int) {
	r.remaining--
	for _, d := range r.down[i] {
		t := &r.out.Tasks[d]
		t.waiting--
		if t.waiting == 0 {
			r.prepare(ctx, d)
		}
	}
}

// exec does a job's work; on a worker for the parallel executor. It only
// writes the job.
func (r *runner) exec(ctx context.Context, j *job) {
	switch j.phase {
	case phaseLookup:
		r.lookup(ctx, j)
		return
	case phaseLoad:
		r.load(ctx, j)
		return
	}
	j.value, j.err, j.timedOut = r.call(ctx, j)
	if j.err != nil {
		return
	}
	if j.node.Opts.persists() {
		j.result, j.err = r.persist(ctx, j)
	} else if r.cfg.CheckpointAll && r.checkpointsAll(j.node) {
		res, err := r.persist(ctx, j)
		if err != nil {
			r.log.Warn("cannot persist a result for CheckpointAll; a resumed run cannot reuse it", LogKeyTask, j.tr.Key(j.node), "error", err)
			return
		}
		j.result = res
	}
}

// PanicError is the error of a task that panicked: the value and the stack.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v\n\n%s", e.Value, e.Stack) }

func safeCall(ctx context.Context, def *TaskDef, args []any) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return def.Call(ctx, args)
}

var errTimeout = errors.New("task timed out")

// protect runs fn, turning a panic in user code (a cache key function, a
// serializer) into an error.
func protect(what string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s panicked: %v\n\n%s", what, p, debug.Stack())
		}
	}()
	return fn()
}

func (r *runner) call(ctx context.Context, j *job) (any, error, bool) {
	var tctx context.Context = &taskCtx{Context: ctx, r: r, tr: j.tr, attempt: j.attempt}
	timeout := j.node.Opts.Timeout
	if timeout <= 0 {
		v, err := safeCall(tctx, j.node.Def, j.args)
		return v, err, false
	}
	tctx, cancel := context.WithTimeoutCause(tctx, timeout, errTimeout)
	defer cancel()
	type res struct {
		v   any
		err error
	}
	ch := make(chan res, 1)
	go func() {
		v, err := safeCall(tctx, j.node.Def, j.args)
		ch <- res{v, err}
	}()
	timedOut := func() error { return fmt.Errorf("timed out after %s", timeout) }
	select {
	case x := <-ch:
		if x.err != nil && ctx.Err() == nil && errors.Is(context.Cause(tctx), errTimeout) {
			return nil, timedOut(), true
		}
		return x.v, x.err, false
	case <-tctx.Done():
		if ctx.Err() == nil {
			return nil, timedOut(), true // the task's goroutine is abandoned
		}
		select { // the flow run was cancelled: give the task its grace
		case x := <-ch:
			return x.v, x.err, false
		case <-time.After(r.cfg.CancelGrace):
			return nil, ctx.Err(), false
		}
	}
}

// storeFor opens the result store of a node: its own, else the run's, else
// the flow's.
func (r *runner) storeFor(ctx context.Context, node *Node) (*result.Store, error) {
	url := node.Opts.ResultStore
	if url == "" {
		url = r.cfg.ResultStore
	}
	if url == "" {
		url = r.g.ResultStore
	}
	return result.Open(ctx, url)
}

func (r *runner) lookup(ctx context.Context, j *job) {
	fail := func(err error) { j.err = &Signal{Kind: state.Failed, Message: err.Error()} }
	ser, err := result.LookupSerializer(j.node.Opts.Serializer)
	if err != nil {
		fail(err)
		return
	}
	var key string
	err = protect("the cache key function", func() (err error) { key, err = r.cacheKey(j); return err })
	if err != nil {
		fail(fmt.Errorf("cannot compute the cache key of task %q: %w", j.node.ID, err))
		return
	}
	key += "." + ser.Name()
	j.cacheKey = key
	st, err := r.storeFor(ctx, j.node)
	if err != nil {
		fail(err)
		return
	}
	mt, ok, err := st.ModTime(ctx, key)
	if err != nil {
		r.log.Warn("cannot read the cache; running the task", LogKeyTask, j.node.ID, "error", err)
		return
	}
	if !ok || r.now().Sub(mt) >= j.node.Opts.CacheFor {
		return
	}
	data, err := st.Get(ctx, key)
	if err == nil {
		err = protect("serializer "+ser.Name(), func() (err error) {
			j.value, err = j.node.Def.DecodeResult(ser.Unmarshal, data)
			return err
		})
	}
	if err != nil {
		r.log.Warn("cannot read a cached result; running the task", LogKeyTask, j.node.ID, "key", key, "error", err)
		return
	}
	j.hit = true
	j.result = &state.Result{Store: st.URL(), Key: key, Serializer: ser.Name(), Value: j.value}
}

func (r *runner) cacheKey(j *job) (string, error) {
	name := j.node.Def.Name
	var raw string
	if f := j.node.Def.Hooks.CacheKey; f != nil {
		k, err := f(name, j.args)
		if err != nil {
			return "", err
		}
		raw = k
	} else {
		b, err := json.Marshal(j.args)
		if err != nil {
			return "", fmt.Errorf("inputs are not JSON-serializable (%w); give the task a reeve.CacheKey function", err)
		}
		raw = string(b)
	}
	sum := sha256.Sum256([]byte(name + "\x00" + raw))
	return "cache/" + pathSafe(name) + "/" + hex.EncodeToString(sum[:]), nil
}

func (r *runner) persist(ctx context.Context, j *job) (*state.Result, error) {
	fail := func(err error) error {
		return fmt.Errorf("task %q: result could not be persisted: %w", j.node.ID, err)
	}
	st, err := r.storeFor(ctx, j.node)
	if err != nil {
		return nil, fail(err)
	}
	ser, err := result.LookupSerializer(j.node.Opts.Serializer)
	if err != nil {
		return nil, fail(err)
	}
	var data []byte
	if err := protect("serializer "+ser.Name(), func() (err error) { data, err = ser.Marshal(j.value); return err }); err != nil {
		return nil, fail(err)
	}
	key := j.cacheKey
	if key == "" {
		key = pathSafe(r.g.Flow) + "/" + pathSafe(r.id) + "/" + pathSafe(j.node.ID)
		if j.tr.Index >= 0 {
			key += fmt.Sprintf("/%d", j.tr.Index)
		}
		key += "." + ser.Name()
	}
	if err := st.Put(ctx, key, data); err != nil {
		return nil, fail(err)
	}
	return &state.Result{Store: st.URL(), Key: key, Serializer: ser.Name()}, nil
}

// pathSafe keeps letters, digits, '.', '_' and '-'; anything else becomes '_'.
func pathSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || strings.Trim(string(b), ".") == "" {
		return "_"
	}
	return string(b)
}
