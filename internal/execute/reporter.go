package execute

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/state"
)

// Reporter defaults.
const (
	DefaultFlushEvery  = 100 * time.Millisecond
	DefaultStateBatch  = 500    // queued task-run states that trigger a send at once
	DefaultLogBatch    = 1000   // queued log lines that trigger a send at once
	DefaultMaxLogLines = 100000 // log lines buffered before new ones are dropped
	maxStatesPerCall   = 1000   // task-run writes in one request
	// maxResultBytesPerCall bounds the results a request carries, as sent
	// (base64): deferred results are at most apiblob.MaxDeferred each, so
	// a request stays well under the server's smallest body limit (16 MiB).
	maxResultBytesPerCall = 8 << 20
	maxLogsPerCall        = 5000 // log lines in one request
	maxBackoff            = 5 * time.Second
)

// ErrSuperseded says the server no longer takes this runner's writes: its
// attempt of the flow run was superseded by a newer one (it was declared
// lost and the run re-queued), or the run finished without it.
var ErrSuperseded = errors.New("this runner was superseded: the server no longer accepts its writes for the flow run")

// ReporterConfig configures a Reporter. Zero fields take the defaults.
type ReporterConfig struct {
	Client    *client.Client
	FlowRunID string
	Attempt   int // the run's attempt this runner holds (for telling a stale write from a superseded runner)
	// TaskRuns are the flow run's task runs as the server has them when
	// the runner starts: their versions are the expect versions of the
	// first writes, and their IDs tag log lines.
	TaskRuns []api.TaskRun
	// FlushEvery is the longest a queued state or log line waits before it
	// is sent (while the server answers); 0 means DefaultFlushEvery.
	FlushEvery  time.Duration
	StateBatch  int // 0: DefaultStateBatch
	LogBatch    int // 0: DefaultLogBatch
	MaxLogLines int // 0: DefaultMaxLogLines
	// OnSuperseded is called once, from the sender, when the server
	// refuses a write because the runner was superseded.
	OnSuperseded func(error)
	// Warn receives the reporter's own warnings (the server is
	// unreachable, log lines were dropped); nil discards them.
	Warn func(msg string)
	// Delivered, if set, is told the deferred results (see DeferResult)
	// the server stored.
	Delivered func(results ...api.ResultPut)
}

// Reporter is the engine.Reporter of a server run. The engine's calls only
// queue: one background sender sends task-run states in order, in batches
// (client.WriteTaskRunStates), and log lines in batches (client.AppendLogs),
// at least every FlushEvery, at once when a batch is large, and at the end
// (Flush, Close).
//
// While the server cannot be reached (or answers 5xx), the sender retries
// with capped exponential backoff and jitter, and keeps queueing. The queue
// of task-run states is unbounded, by design: a lost state would leave the
// server with a wrong picture of the run, which is worse than memory; each
// queued state is small. Log lines are bounded (MaxLogLines): past that,
// new lines are dropped and counted, and a WARN line says how many when
// the sender catches up.
//
// Each task run's expect version starts at its version on the server and
// follows the answers, so a resumed run writes over its earlier attempts'
// task runs. A 409 Conflict that is not a write the server already applied
// (an answer lost in transit) means the runner was superseded: the
// reporter stops sending anything, and calls OnSuperseded.
//
// States are written exactly once: a batch whose answer was lost is
// recognised on the retry's 409 by reading the task runs back. Log lines
// are at least once: a log batch whose answer was lost is sent again.
type Reporter struct {
	cfg ReporterConfig

	mu          sync.Mutex
	results     []api.ResultPut // deferred results not yet attached to a state
	resultBytes int             // their wire size
	states      []stateItem
	logs        []logItem
	queuedKeys  map[string]int // key → queued states not yet sent
	droppedLogs int
	inflight    bool
	stopped     bool  // superseded or failed: nothing more is sent
	err         error // why it stopped
	idle        chan struct{}
	closing     bool

	wake      chan struct{}
	done      chan struct{}
	ctx       context.Context // the sender's; cancelled by Abandon and Close's deadline
	cancelCtx context.CancelFunc

	// Owned by the sender goroutine.
	versions map[string]int64
	ids      map[string]string
}

type stateItem struct {
	key     string
	task    string
	index   int
	state   state.State
	results []api.ResultPut // sent with (before) this state
	noState bool            // only carries results
}

type logItem struct {
	key string // task run key; "" for the runner's own lines
	rec slog.Record
	raw *api.LogLine // already converted (the reporter's own warnings)
}

var _ engine.Reporter = (*Reporter)(nil)

// NewReporter starts a reporter's sender. Close it.
func NewReporter(cfg ReporterConfig) *Reporter {
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = DefaultFlushEvery
	}
	if cfg.StateBatch <= 0 {
		cfg.StateBatch = DefaultStateBatch
	}
	if cfg.LogBatch <= 0 {
		cfg.LogBatch = DefaultLogBatch
	}
	if cfg.MaxLogLines <= 0 {
		cfg.MaxLogLines = DefaultMaxLogLines
	}
	if cfg.Warn == nil {
		cfg.Warn = func(string) {}
	}
	r := &Reporter{
		cfg:        cfg,
		queuedKeys: map[string]int{},
		idle:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		versions:   map[string]int64{},
		ids:        map[string]string{},
	}
	for _, tr := range cfg.TaskRuns {
		r.versions[tr.Key] = tr.Version
		r.ids[tr.Key] = tr.ID
	}
	r.ctx, r.cancelCtx = context.WithCancel(context.Background())
	go r.send()
	return r
}

// FlowRunState implements engine.Reporter. The runner writes the flow
// run's own states itself, with their versions; the reporter ignores them.
func (r *Reporter) FlowRunState(context.Context, engine.RunRef, state.State) {}

// TaskRunState implements engine.Reporter: it queues the state.
func (r *Reporter) TaskRunState(_ context.Context, tr engine.TaskRunRef, s state.State) {
	key := tr.Key()
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.states = append(r.states, stateItem{key: key, task: tr.Task, index: tr.Index, state: s, results: r.results})
	r.results, r.resultBytes = nil, 0
	r.queuedKeys[key]++
	n := len(r.states)
	r.mu.Unlock()
	if n >= r.cfg.StateBatch {
		r.poke()
	}
}

// DeferResult implements apiblob.Deferrer: the result is sent with the
// next task-run state queued (the one that names it comes after it), so
// that the server stores it before any state names it, in the same
// request.
func (r *Reporter) DeferResult(key string, value []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.results = append(r.results, api.ResultPut{Key: key, Value: value})
	r.resultBytes += wireSize(value)
	if r.resultBytes >= maxResultBytesPerCall {
		// Enough for a request of their own: queue them now, ahead of
		// whatever state comes next, so that no item outgrows a request.
		r.states = append(r.states, stateItem{noState: true, results: r.results})
		r.results, r.resultBytes = nil, 0
	}
}

// wireSize is what a result adds to a request: its value in base64 and a
// little JSON around it.
func wireSize(value []byte) int { return base64.StdEncoding.EncodedLen(len(value)) + 64 }

// Log implements engine.Reporter: it queues the record for the task run.
func (r *Reporter) Log(_ context.Context, tr engine.TaskRunRef, rec slog.Record) {
	r.queueLog(logItem{key: tr.Key(), rec: rec.Clone()})
}

// RunnerLog queues one of the runner's own log lines (no task run).
func (r *Reporter) RunnerLog(level slog.Level, msg string, attrs ...slog.Attr) {
	rec := slog.NewRecord(time.Now(), level, msg, 0)
	rec.AddAttrs(attrs...)
	r.queueLog(logItem{rec: rec})
}

func (r *Reporter) queueLog(it logItem) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	if len(r.logs) >= r.cfg.MaxLogLines {
		r.droppedLogs++
		r.mu.Unlock()
		return
	}
	r.logs = append(r.logs, it)
	n := len(r.logs)
	r.mu.Unlock()
	if n >= r.cfg.LogBatch {
		r.poke()
	}
}

func (r *Reporter) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Err returns why the reporter stopped sending (ErrSuperseded, or a
// refused write), or nil.
func (r *Reporter) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Abandon stops the reporter at once: queued and later states and lines are
// never sent. The runner calls it when it learns it was superseded.
func (r *Reporter) Abandon(err error) {
	r.stop(err)
	r.cancelCtx()
}

func (r *Reporter) stop(err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return false
	}
	r.stopped, r.err = true, err
	r.states, r.logs = nil, nil
	close(r.idle)
	r.idle = make(chan struct{})
	return true
}

// Flush waits until everything queued so far is sent, or ctx ends, or the
// reporter stops. It returns nil only when everything was sent.
func (r *Reporter) Flush(ctx context.Context) error {
	for {
		r.mu.Lock()
		if len(r.results) > 0 && !r.stopped {
			// Results no queued state carries (their task's state was never
			// reported): send them on their own.
			r.states = append(r.states, stateItem{noState: true, results: r.results})
			r.results, r.resultBytes = nil, 0
		}
		switch {
		case r.stopped:
			err := r.err
			r.mu.Unlock()
			return err
		case len(r.states) == 0 && len(r.logs) == 0 && !r.inflight:
			r.mu.Unlock()
			return nil
		}
		idle := r.idle
		ns, nl := len(r.states), len(r.logs)
		r.mu.Unlock()
		r.poke()
		select {
		case <-idle:
		case <-ctx.Done():
			return fmt.Errorf("flow run %s: %d task-run states and %d log lines could not be sent to the server at %s in time: %w",
				r.cfg.FlowRunID, ns, nl, r.cfg.Client.URL(), context.Cause(ctx))
		}
	}
}

// Close flushes what is queued (until ctx ends) and stops the sender. Once
// it returns, nothing more is sent.
func (r *Reporter) Close(ctx context.Context) error {
	err := r.Flush(ctx)
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	r.cancelCtx()
	<-r.done
	return err
}

// send is the sender goroutine.
func (r *Reporter) send() {
	defer close(r.done)
	tick := time.NewTicker(r.cfg.FlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		case <-r.wake:
		}
		r.pass()
	}
}

// pass sends everything queued: states first (so log lines find their task
// runs' IDs), then log lines.
func (r *Reporter) pass() {
	for r.ctx.Err() == nil {
		sentStates := r.sendStates()
		sentLogs := r.sendLogs()
		if !sentStates && !sentLogs {
			break
		}
	}
	r.mu.Lock()
	if !r.stopped && len(r.states) == 0 && len(r.logs) == 0 {
		close(r.idle)
		r.idle = make(chan struct{})
	}
	r.mu.Unlock()
}

// sendStates sends one batch of queued states; it reports whether it sent
// any. It retries until the batch is sent or the reporter stops.
func (r *Reporter) sendStates() bool {
	r.mu.Lock()
	if r.stopped || len(r.states) == 0 {
		r.mu.Unlock()
		return false
	}
	// A batch ends before the item that would take its results past
	// maxResultBytesPerCall (an item never carries more than that).
	n, size := 0, 0
	for n < min(len(r.states), maxStatesPerCall) {
		item := 0
		for _, res := range r.states[n].results {
			item += wireSize(res.Value)
		}
		if n > 0 && size+item > maxResultBytesPerCall {
			break
		}
		size += item
		n++
	}
	batch := r.states[:n]
	r.inflight = true
	r.mu.Unlock()

	trs, err := r.writeStates(batch)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight = false
	if err != nil {
		return false // stopped
	}
	for _, tr := range trs {
		r.versions[tr.Key] = tr.Version
		r.ids[tr.Key] = tr.ID
	}
	if r.stopped {
		return false
	}
	var delivered []api.ResultPut
	for _, it := range batch {
		delivered = append(delivered, it.results...)
		if it.noState {
			continue
		}
		if r.queuedKeys[it.key]--; r.queuedKeys[it.key] <= 0 {
			delete(r.queuedKeys, it.key)
		}
	}
	if len(delivered) > 0 && r.cfg.Delivered != nil {
		r.cfg.Delivered(delivered...)
	}
	r.states = r.states[len(batch):]
	if len(r.states) == 0 {
		r.states = nil // let the backing array go
	}
	return true
}

// writeStates sends a batch, with retries; a non-nil error means the
// reporter stopped.
func (r *Reporter) writeStates(batch []stateItem) ([]api.TaskRun, error) {
	var results []api.ResultPut
	for _, it := range batch {
		results = append(results, it.results...)
	}
	versions := func() []api.TaskRunWrite {
		writes := make([]api.TaskRunWrite, 0, len(batch))
		next := map[string]int64{}
		for _, it := range batch {
			if it.noState {
				continue
			}
			v, ok := next[it.key]
			if !ok {
				v = r.versions[it.key]
			}
			writes = append(writes, api.TaskRunWrite{Key: it.key, Task: it.task, MapIndex: it.index, ExpectVersion: v, State: it.state})
			next[it.key] = v + 1
		}
		return writes
	}
	writes := versions()
	reconciled := false
	for try := 0; ; try++ {
		trs, err := r.cfg.Client.WriteTaskRunBatch(r.ctx, r.cfg.FlowRunID, api.WriteTaskRunStates{Writes: writes, Results: results})
		if err == nil {
			return trs, nil
		}
		if r.ctx.Err() != nil {
			return nil, r.ctx.Err()
		}
		switch errs.CodeOf(err) {
		case errs.CodeConflict:
			if reconciled {
				return nil, r.fail(fmt.Errorf("%w: %w", ErrSuperseded, err))
			}
			reconciled = true
			if len(writes) == 0 { // results only: nothing to have been applied
				return nil, r.fail(fmt.Errorf("%w: %w", ErrSuperseded, err))
			}
			trs, applied, rerr := r.reconcile(batch, writes)
			if rerr != nil {
				return nil, rerr
			}
			if applied {
				return trs, nil
			}
			writes = versions()
			try = -1
			continue
		case errs.CodeUnauthorized:
			return nil, r.fail(fmt.Errorf("%w: %w", ErrSuperseded, err))
		case errs.CodeInvalid, errs.CodeForbidden, errs.CodeNotFound:
			return nil, r.fail(fmt.Errorf("the server refused task-run states of flow run %s: %w", r.cfg.FlowRunID, err))
		}
		if try == 2 {
			r.cfg.Warn(fmt.Sprintf("cannot send task-run states (retrying; %d queued): %v", r.queued(), err))
		}
		if !r.sleep(try) {
			return nil, r.ctx.Err()
		}
	}
}

// reconcile looks at the run after a 409: a newer attempt means the runner
// was superseded; task runs that already are as the batch would make them
// mean the server applied the batch but its answer was lost; anything else
// makes the batch's versions follow the server's, for one more try.
func (r *Reporter) reconcile(batch []stateItem, writes []api.TaskRunWrite) ([]api.TaskRun, bool, error) {
	var detail *api.FlowRunDetail
	for try := 0; ; try++ {
		var err error
		detail, err = r.cfg.Client.FlowRun(r.ctx, r.cfg.FlowRunID)
		if err == nil {
			break
		}
		if r.ctx.Err() != nil {
			return nil, false, r.ctx.Err()
		}
		switch errs.CodeOf(err) {
		case errs.CodeUnavailable, errs.CodeInternal:
			if !r.sleep(try) {
				return nil, false, r.ctx.Err()
			}
			continue
		}
		return nil, false, r.fail(fmt.Errorf("%w: %w", ErrSuperseded, err))
	}
	run := detail.FlowRun
	if run.Attempt != r.cfg.Attempt || run.State.Kind.Finished() || run.State.Kind == state.Scheduled {
		return nil, false, r.fail(fmt.Errorf("%w: flow run %s is at attempt %d (%s); this runner holds attempt %d", ErrSuperseded, run.ID, run.Attempt, run.State.Kind, r.cfg.Attempt))
	}
	byKey := map[string]api.TaskRun{}
	for _, tr := range detail.TaskRuns {
		byKey[tr.Key] = tr
	}
	last := map[string]int{}
	for i, w := range writes {
		last[w.Key] = i
	}
	applied := true
	for key, i := range last {
		tr, ok := byKey[key]
		w := writes[i]
		if !ok || tr.Version != w.ExpectVersion+1 || tr.State.Kind != w.State.Kind || !sameState(tr.State, w.State) {
			applied = false
		}
	}
	if applied {
		out := make([]api.TaskRun, 0, len(last))
		for key := range last {
			out = append(out, byKey[key])
		}
		return out, true, nil
	}
	for _, it := range batch {
		if it.noState {
			continue
		}
		if tr, ok := byKey[it.key]; ok {
			r.versions[it.key] = tr.Version
			r.ids[it.key] = tr.ID
		} else {
			r.versions[it.key] = 0
		}
	}
	return nil, false, nil
}

// sendLogs sends one batch of log lines; it reports whether it sent any.
// A task's line waits while a state of its task run is still queued (its
// task run's ID comes with the answer), so lines keep their order.
func (r *Reporter) sendLogs() bool {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return false
	}
	if r.droppedLogs > 0 {
		msg := fmt.Sprintf("%d log lines of this flow run were dropped: more than %d were waiting to be sent while the server could not be reached", r.droppedLogs, r.cfg.MaxLogLines)
		r.logs = append(r.logs, logItem{raw: &api.LogLine{Time: time.Now(), Level: "WARN", Message: msg}})
		r.droppedLogs = 0
		r.mu.Unlock()
		r.cfg.Warn(msg)
		r.mu.Lock()
	}
	n := 0
	for n < len(r.logs) && n < maxLogsPerCall {
		it := r.logs[n]
		if it.key != "" && r.ids[it.key] == "" && r.queuedKeys[it.key] > 0 {
			break
		}
		n++
	}
	if n == 0 {
		r.mu.Unlock()
		return false
	}
	batch := r.logs[:n]
	r.inflight = true
	r.mu.Unlock()

	lines := make([]api.LogLine, len(batch))
	for i, it := range batch {
		lines[i] = r.line(it)
	}
	err := r.appendLogs(lines)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight = false
	if err != nil || r.stopped {
		return false
	}
	r.logs = r.logs[n:]
	if len(r.logs) == 0 {
		r.logs = nil
	}
	return true
}

func (r *Reporter) appendLogs(lines []api.LogLine) error {
	for try := 0; ; try++ {
		err := r.cfg.Client.AppendLogs(r.ctx, r.cfg.FlowRunID, lines)
		if err == nil {
			return nil
		}
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
		switch errs.CodeOf(err) {
		case errs.CodeConflict, errs.CodeUnauthorized:
			return r.fail(fmt.Errorf("%w: %w", ErrSuperseded, err))
		case errs.CodeInvalid, errs.CodeForbidden, errs.CodeNotFound:
			// A batch the server will never take: say so, and go on
			// without it rather than hold up every later line.
			r.cfg.Warn(fmt.Sprintf("the server refused %d log lines; they are dropped: %v", len(lines), err))
			return nil
		}
		if try == 2 {
			r.cfg.Warn(fmt.Sprintf("cannot send log lines (retrying; %d queued): %v", r.queued(), err))
		}
		if !r.sleep(try) {
			return r.ctx.Err()
		}
	}
}

// line converts a queued record to a wire log line.
func (r *Reporter) line(it logItem) api.LogLine {
	if it.raw != nil {
		return *it.raw
	}
	l := api.LogLine{Time: it.rec.Time, Level: levelName(it.rec.Level), Message: it.rec.Message}
	if it.key != "" {
		l.TaskRunID = r.ids[it.key] // the sender's own map
	}
	attrs := map[string]any{}
	it.rec.Attrs(func(a slog.Attr) bool {
		addAttr(attrs, a)
		return true
	})
	if it.key != "" && l.TaskRunID == "" {
		attrs["task_run"] = it.key
	}
	if len(attrs) > 0 {
		b, err := json.Marshal(attrs)
		if err != nil {
			for k, v := range attrs {
				attrs[k] = fmt.Sprint(v)
			}
			b, _ = json.Marshal(attrs)
		}
		l.Attrs = b
	}
	return l
}

func addAttr(m map[string]any, a slog.Attr) {
	v := a.Value.Resolve()
	if a.Key == "" && v.Kind() != slog.KindGroup {
		return
	}
	switch v.Kind() {
	case slog.KindGroup:
		g := m
		if a.Key != "" {
			g = map[string]any{}
			m[a.Key] = g
		}
		for _, x := range v.Group() {
			addAttr(g, x)
		}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			m[a.Key] = x.Error()
		case json.Marshaler:
			m[a.Key] = x
		case fmt.Stringer:
			m[a.Key] = x.String()
		default:
			if _, err := json.Marshal(x); err != nil {
				m[a.Key] = fmt.Sprintf("%+v", x)
			} else {
				m[a.Key] = x
			}
		}
	case slog.KindTime:
		m[a.Key] = v.Time()
	case slog.KindDuration:
		m[a.Key] = v.Duration().String()
	default:
		m[a.Key] = v.Any()
	}
}

// sameState reports whether a state read back from the server is the one
// written: the stores keep times to the microsecond.
func sameState(stored, written state.State) bool {
	d := stored.Time.Sub(written.Time)
	return stored.Kind == written.Kind && stored.Message == written.Message && d > -time.Millisecond && d < time.Millisecond
}

func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARN"
	}
	return "ERROR"
}

// fail stops the reporter with err and tells the runner if it was
// superseded.
func (r *Reporter) fail(err error) error {
	if r.stop(err) && errors.Is(err, ErrSuperseded) && r.cfg.OnSuperseded != nil {
		r.cfg.OnSuperseded(err)
	}
	return err
}

func (r *Reporter) queued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.states) + len(r.logs)
}

// sleep waits before retry number try (0-based): exponential from 50 ms,
// capped at maxBackoff, with ±50% jitter. It returns false if the reporter
// stopped meanwhile.
func (r *Reporter) sleep(try int) bool {
	return backoff(r.ctx, try)
}

func backoff(ctx context.Context, try int) bool {
	d := 50 * time.Millisecond << min(try, 10)
	d = min(d, maxBackoff)
	d = d/2 + time.Duration(rand.Int64N(int64(d)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
