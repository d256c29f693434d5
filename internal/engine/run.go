package engine

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reevehq/reeve/internal/state"
)

// Reporter receives a run's progress. FlowRunState and TaskRunState are
// called from one goroutine, in the order the states happen; Log may be
// called concurrently from tasks. Implementations must not block for long:
// the engine waits for them.
type Reporter interface {
	FlowRunState(ctx context.Context, run RunRef, s state.State)
	TaskRunState(ctx context.Context, tr TaskRunRef, s state.State)
	Log(ctx context.Context, tr TaskRunRef, rec slog.Record)
}

// RunRef identifies a flow run.
type RunRef struct {
	Flow      string
	FlowRunID string
}

// TaskRunRef identifies a task run within a flow run.
type TaskRunRef struct {
	RunRef
	Task     string // the bound task's ID
	TaskName string // the registered task name
	Index    int    // mapped child index; -1 otherwise
	Mapped   bool   // the parent of a mapped task
}

// Key returns the task run key, unique in its flow run: the task ID, or
// "ID[index]" for a mapped child.
func (r TaskRunRef) Key() string { return taskKey(r.Task, r.Index) }

func taskKey(id string, index int) string {
	if index < 0 {
		return id
	}
	return id + "[" + strconv.Itoa(index) + "]"
}

// Change is a state change, as handlers see it.
type Change struct {
	RunRef
	TaskRun  *TaskRunRef // nil for a change of the flow run's state
	Old, New state.State
}

// Handler is called on state changes, from the engine's goroutine. A panic
// in a handler is recovered and logged.
type Handler func(ctx context.Context, c Change)

// Config configures one run. The zero value runs sequentially with no
// reporter, discarding task logs.
type Config struct {
	FlowRunID   string         // "": a new time-ordered ID
	Params      map[string]any // supplied parameter values; decoded by each parameter's type
	Workers     int            // ≤1: one task run at a time (sequential); more: at most that many at once
	ResultStore string         // overrides the flow's default store URL
	Reporter    Reporter
	LogHandler  slog.Handler // where task log records go (besides the task run); nil: nowhere
	LogLevel    slog.Level   // records below this level are dropped
	Secrets     SecretSource
	Now         func() time.Time // nil: time.Now
	// CancelGrace is how long a cancelled run waits for running tasks to
	// return before it marks them Cancelled and returns (under either
	// executor: tasks run on worker goroutines). 0: 10 s.
	CancelGrace time.Duration
	// Validated says the caller has just run g.Validate(ResultStore), so
	// Execute need not do it again.
	Validated bool
	// Logger receives the engine's own warnings (a handler that panicked,
	// a cache entry that could not be read). nil: slog.Default().
	Logger *slog.Logger

	// Prior holds the task run states that earlier attempts of this flow
	// run recorded, by task run key ("extract", "transform[3]"): a resumed
	// run (after a long retry, a lost runner, a restart) never re-runs a
	// task run whose prior state is finished and successful; it loads the
	// result from the location in that state when a downstream task needs
	// it. Task runs with other prior states run again. Task runs taken from
	// Prior are not reported again.
	Prior map[string]state.State
	// MaxRetryWait is the longest retry delay the run waits out itself
	// (0: every delay). A task run whose next retry is further away stays
	// Retrying with its StartAt, and once nothing else can run the run
	// ends Scheduled with StartAt the earliest such retry, for the caller
	// to re-queue the flow run for then.
	MaxRetryWait time.Duration
	// CheckpointAll persists every task run's result (to the task's result
	// store, else ResultStore, else the flow's) unless the task turned
	// checkpointing off explicitly, so that resumed runs can reuse them.
	//
	// A task with no result store configured anywhere is not persisted
	// (Validate does not demand a store because of CheckpointAll), and a
	// result that cannot be written or serialized is logged as a warning
	// and left unpersisted rather than failing the task: only an explicit
	// Checkpoint or CacheFor makes persisting part of the task's success.
	CheckpointAll bool
}

// Run is the outcome of a flow run: its state and every task run.
type Run struct {
	ID      string
	Flow    string
	State   state.State
	History []state.State
	Tasks   []TaskRun // one per graph node, in node order
}

// TaskRun is one task run; a mapped task's children are task runs too.
type TaskRun struct {
	Node        int
	Index       int // mapped child index; -1 otherwise
	State       state.State
	History     []state.State
	Value       any // the result, in memory; nil for a task run taken from Config.Prior whose result no task run needed
	Logs        []slog.Record
	DroppedLogs int        // records not kept beyond the per-task-run bound
	logsClosed  bool       // finished: late records of an abandoned task are dropped
	Children    []TaskRun  // a mapped task's children
	waiting     int        // upstream nodes not finished yet
	left        int        // children not finished yet
	expanded    bool       // children were created
	eachVals    [][]any    // mapped parent: per Each argument, the elements (nil for element-wise args)
	parentUps   []Upstream // mapped parent: upstream states that apply to every child
	elementwise bool       // mapped parent: some Each argument comes from an expanded mapped task
	argBuf      [2]any     // the arguments of a task that is not mapped, without another allocation
}

// Key returns the task run key within the run of graph g.
func (tr *TaskRun) Key(n *Node) string { return taskKey(n.ID, tr.Index) }

// Execute runs g. It returns an error, and runs nothing, when the graph or
// the parameters are invalid; otherwise the run's final state says how it
// went. Cancelling ctx stops scheduling new tasks and ends the run Cancelled.
func Execute(ctx context.Context, g *Graph, cfg Config) (*Run, error) {
	if !cfg.Validated {
		if err := g.Validate(cfg.ResultStore); err != nil {
			return nil, err
		}
	}
	params, err := g.ResolveParams(cfg.Params)
	if err != nil {
		return nil, err
	}
	r := newRunner(g, cfg, params)
	r.run(ctx)
	return r.out, nil
}

type phase uint8

const (
	phaseLookup phase = iota // read the cache
	phaseRun                 // call the task
	phaseLoad                // load the result of a task run taken from Config.Prior
)

// job is one attempt (or cache lookup) of a task run, handed to a worker.
type job struct {
	tr      *TaskRun
	node    *Node
	args    []any
	phase   phase
	attempt int
	startAt time.Time
	// filled by the worker:
	value     any
	err       error
	hit       bool
	timedOut  bool
	cacheKey  string
	result    *state.Result
	heapIndex int
}

type runner struct {
	g      *Graph
	cfg    Config
	params []any
	id     string
	out    *Run
	down   [][]int
	now    func() time.Time
	log    *slog.Logger
	redact redactor
	logMu  sync.Mutex

	ready      []*job
	readyHead  int
	delayed    jobHeap
	inflight   int
	workers    int
	work       chan *job
	done       chan *job
	remaining  int // nodes not finished
	cancelling bool
	ctx        context.Context

	// parked are retries further away than Config.MaxRetryWait: nothing
	// waits for them, and the run ends Scheduled for the earliest.
	parked []*job
	// unavail holds the task runs taken from Config.Prior whose result is
	// needed but could not be had; nil until there is one.
	unavail map[*TaskRun]*unavailable
}

func newRunner(g *Graph, cfg Config, params []any) *runner {
	r := &runner{g: g, cfg: cfg, params: params, id: cfg.FlowRunID, now: cfg.Now, log: cfg.Logger}
	if r.id == "" {
		r.id = NewID()
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.cfg.CancelGrace <= 0 {
		r.cfg.CancelGrace = 10 * time.Second
	}
	r.workers = max(cfg.Workers, 1)
	r.out = &Run{ID: r.id, Flow: g.Flow, Tasks: make([]TaskRun, len(g.Nodes))}
	r.down = g.downstream()
	for i := range r.out.Tasks {
		r.out.Tasks[i].Node = i
		r.out.Tasks[i].Index = -1
	}
	for _, ds := range r.down {
		for _, d := range ds {
			r.out.Tasks[d].waiting++
		}
	}
	r.remaining = len(g.Nodes)
	return r
}

func (r *runner) runRef() RunRef { return RunRef{Flow: r.g.Flow, FlowRunID: r.id} }

func (r *runner) ref(tr *TaskRun) TaskRunRef {
	n := r.g.Nodes[tr.Node]
	return TaskRunRef{RunRef: r.runRef(), Task: n.ID, TaskName: n.Def.Name, Index: tr.Index, Mapped: n.Mapped && tr.Index < 0}
}

func (r *runner) run(ctx context.Context) {
	r.ctx = ctx
	r.setFlowState(ctx, state.State{Kind: state.Running, Time: r.now()})
	now := r.now()
	for i := range r.out.Tasks {
		tr := &r.out.Tasks[i]
		if len(r.cfg.Prior) > 0 && r.adoptNode(tr) {
			continue
		}
		r.setState(ctx, tr, state.State{Kind: state.Pending, Time: now})
	}
	{ // a pool of one worker is the sequential executor
		r.work = make(chan *job, r.workers)
		r.done = make(chan *job, r.workers)
		for range r.workers {
			go func() {
				for j := range r.work {
					r.exec(ctx, j)
					r.done <- j
				}
			}()
		}
		defer close(r.work)
	}
	// The roots are found before any is prepared: preparing one can finish
	// it at once (a skip, a mapped task over an empty list, a task run taken
	// from Prior) and bring a downstream task's waiting count to zero, and
	// that task must then be prepared once, by nodeDone, not again here.
	var roots []int
	for i := range r.out.Tasks {
		if r.out.Tasks[i].waiting == 0 {
			roots = append(roots, i)
		}
	}
	for _, i := range roots {
		r.prepare(ctx, i)
	}
	r.loop(ctx)
	r.finish(ctx)
}

func (r *runner) loop(ctx context.Context) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var graceC <-chan time.Time
	for {
		if !r.cancelling && ctx.Err() != nil {
			r.cancel(ctx)
		}
		if r.cancelling && graceC == nil && r.inflight > 0 {
			graceC = time.After(r.cfg.CancelGrace)
		}
		r.dispatch(ctx)
		if r.inflight == 0 && r.readyHead == len(r.ready) && (len(r.delayed) == 0 || r.cancelling) {
			return
		}
		var timerC <-chan time.Time
		{
			if len(r.delayed) > 0 && !r.cancelling {
				wait := r.delayed[0].startAt.Sub(r.now())
				if wait <= 0 {
					r.releaseDue()
					continue
				}
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				timerC = timer.C
			}
		}
		var ctxDone <-chan struct{}
		if !r.cancelling {
			ctxDone = ctx.Done()
		}
		select {
		case j := <-r.done:
			r.inflight--
			r.complete(ctx, j)
		case <-ctxDone:
			r.cancel(ctx)
		case <-timerC:
			r.releaseDue()
		case <-graceC:
			r.abandon(ctx)
			return
		}
	}
}

// dispatch starts ready jobs: inline for the sequential executor, on the
// worker pool for the parallel one.
func (r *runner) dispatch(ctx context.Context) {
	for r.readyHead < len(r.ready) && !r.cancelling {
		if r.inflight >= r.workers {
			return
		}
		j := r.ready[r.readyHead]
		r.ready[r.readyHead] = nil
		r.readyHead++
		if r.readyHead == len(r.ready) {
			r.ready, r.readyHead = r.ready[:0], 0
		}
		r.start(ctx, j)
		r.inflight++
		r.work <- j
	}
}

func (r *runner) enqueue(j *job) { r.ready = append(r.ready, j) }

func (r *runner) releaseDue() {
	now := r.now()
	for len(r.delayed) > 0 && !r.delayed[0].startAt.After(now) {
		r.enqueue(heap.Pop(&r.delayed).(*job))
	}
}

// start records that a job begins: a run attempt enters Running.
func (r *runner) start(ctx context.Context, j *job) {
	if j.phase == phaseRun {
		r.setState(ctx, j.tr, state.State{Kind: state.Running, Time: r.now(), Attempt: j.attempt})
	}
}

// cancel stops scheduling: queued and delayed task runs become Cancelled;
// running ones are told through their context and awaited.
func (r *runner) cancel(ctx context.Context) {
	r.cancelling = true
	msg := cancelMessage(ctx)
	for _, j := range r.ready[r.readyHead:] {
		if j.phase == phaseLoad {
			continue // taken from Prior: it keeps its finished state
		}
		r.endTaskRun(ctx, j.tr, state.State{Kind: state.Cancelled, Message: msg, Time: r.now()})
	}
	r.ready, r.readyHead = nil, 0
	for _, j := range r.delayed {
		r.endTaskRun(ctx, j.tr, state.State{Kind: state.Cancelled, Message: msg, Time: r.now()})
	}
	r.delayed = nil
	for _, j := range r.parked {
		r.endTaskRun(ctx, j.tr, state.State{Kind: state.Cancelled, Message: msg, Time: r.now()})
	}
	r.parked = nil
}

func cancelMessage(ctx context.Context) string {
	msg := "flow run cancelled"
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		msg += ": " + c.Error()
	}
	return msg
}

// abandon gives up on running tasks that ignored cancellation.
func (r *runner) abandon(ctx context.Context) {
	msg := fmt.Sprintf("%s; the task did not return within %s of the cancellation", cancelMessage(ctx), r.cfg.CancelGrace)
	r.walk(func(tr *TaskRun) {
		if tr.State.Kind == state.Running && (!r.g.Nodes[tr.Node].Mapped || tr.Index >= 0) {
			r.endTaskRun(ctx, tr, state.State{Kind: state.Cancelled, Message: msg, Time: r.now()})
		}
	})
}

// walk visits every task run, children after their parent.
func (r *runner) walk(fn func(tr *TaskRun)) {
	for i := range r.out.Tasks {
		tr := &r.out.Tasks[i]
		fn(tr)
		for c := range tr.Children {
			fn(&tr.Children[c])
		}
	}
}

// finish ends every unfinished task run and sets the flow's final state.
func (r *runner) finish(ctx context.Context) {
	if r.cancelling {
		msg := cancelMessage(ctx)
		r.walk(func(tr *TaskRun) {
			if !tr.State.Kind.Finished() {
				r.setState(ctx, tr, state.State{Kind: state.Cancelled, Message: msg, Time: r.now()})
			}
		})
		r.setFlowState(ctx, state.State{Kind: state.Cancelled, Message: msg, Time: r.now()})
		return
	}
	if len(r.parked) > 0 {
		r.finishParked(ctx)
		return
	}
	refs := r.g.Reference
	if len(refs) == 0 {
		for i, ds := range r.down {
			if len(ds) == 0 {
				refs = append(refs, i)
			}
		}
	}
	var failed []Upstream
	for _, i := range refs {
		tr := &r.out.Tasks[i]
		if !tr.State.Kind.Successful() {
			failed = append(failed, Upstream{Task: r.g.Nodes[i].ID, State: tr.State})
		}
	}
	var counts state.Counts
	r.walk(func(tr *TaskRun) {
		if !r.g.Nodes[tr.Node].Mapped || tr.Index >= 0 {
			counts[tr.State.Kind]++
		}
	})
	if len(failed) > 0 {
		parts := make([]string, 0, min(len(failed), 3))
		for _, u := range failed[:min(len(failed), 3)] {
			parts = append(parts, fmt.Sprintf("%s is %s", u.Task, u.State.Kind))
		}
		if len(failed) > 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(failed)-3))
		}
		msg := fmt.Sprintf("%d of %d reference tasks did not succeed: %s", len(failed), len(refs), strings.Join(parts, ", "))
		r.setFlowState(ctx, state.State{Kind: state.Failed, Message: msg, Time: r.now(), Counts: &counts})
		return
	}
	msg := fmt.Sprintf("%d task runs: %s", counts.Total(), counts.String())
	r.setFlowState(ctx, state.State{Kind: state.Success, Message: msg, Time: r.now(), Counts: &counts})
}

func (r *runner) setFlowState(ctx context.Context, s state.State) {
	s.Message = r.redact.apply(s.Message)
	old := r.out.State
	r.out.State = s
	r.out.History = append(r.out.History, s)
	if r.cfg.Reporter != nil {
		r.cfg.Reporter.FlowRunState(ctx, r.runRef(), s)
	}
	for _, h := range r.g.Handlers {
		r.callHandler(ctx, h, Change{RunRef: r.runRef(), Old: old, New: s})
	}
}

func (r *runner) setState(ctx context.Context, tr *TaskRun, s state.State) {
	if s.Message != "" {
		s.Message = r.redact.apply(s.Message)
	}
	old := tr.State
	tr.State = s
	if tr.History == nil {
		tr.History = make([]state.State, 0, 3) // Pending, Running, and a final state
	}
	tr.History = append(tr.History, s)
	hs := r.g.Nodes[tr.Node].Def.Hooks.Handlers
	if r.cfg.Reporter == nil && len(hs) == 0 {
		return
	}
	ref := r.ref(tr)
	if r.cfg.Reporter != nil {
		r.cfg.Reporter.TaskRunState(ctx, ref, s)
	}
	for _, h := range hs {
		r.callHandler(ctx, h, Change{RunRef: ref.RunRef, TaskRun: &ref, Old: old, New: s})
	}
}

func (r *runner) callHandler(ctx context.Context, h Handler, c Change) {
	defer func() {
		if v := recover(); v != nil {
			who := "flow " + r.g.Flow
			if c.TaskRun != nil {
				who = "task run " + c.TaskRun.Key()
			}
			r.log.Warn("state handler panicked", "handler_of", who, "panic", fmt.Sprint(v))
		}
	}()
	h(ctx, c)
}

// NewID returns a new time-ordered unique ID in UUID version 7 form.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint16(b[4:6], uint16(ms))
	binary.BigEndian.PutUint32(b[0:4], uint32(ms>>16))
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// DefaultWorkers is the parallel executor's worker count when none is given.
func DefaultWorkers() int { return max(4, 4*runtime.NumCPU()) }

type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].startAt.Before(h[j].startAt) }
func (h jobHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex, h[j].heapIndex = i, j
}
func (h *jobHeap) Push(x any) { j := x.(*job); j.heapIndex = len(*h); *h = append(*h, j) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return j
}
