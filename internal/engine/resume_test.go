package engine

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reevehq/reeve/internal/result"
	"github.com/reevehq/reeve/internal/state"
)

// t0 is the clock of every test that needs one.
var t0 = time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

// etl is extract → transform (mapped, ×10) → load (sum), with every call
// counted: "extract", "transform:<element>", "load". load records its input.
type etl struct {
	b       *graph
	calls   counter
	loadGot atomic.Pointer[[]int]
}

func newETL() *etl {
	e := &etl{b: newGraph("etl")}
	extract := e.b.add("extract", def0("extract", func(context.Context) ([]int, error) {
		e.calls.add("extract")
		return []int{1, 2, 3}, nil
	}))
	transform := e.b.mapped("transform", def1("transform", func(_ context.Context, x int) (int, error) {
		e.calls.add("transform:" + strconv.Itoa(x))
		return x * 10, nil
	}), each(extract))
	e.b.add("load", def1("load", func(_ context.Context, xs []int) (int, error) {
		e.calls.add("load")
		e.loadGot.Store(&xs)
		sum := 0
		for _, x := range xs {
			sum += x
		}
		return sum, nil
	}), from(transform))
	return e
}

func counts(kind state.Kind, n int) *state.Counts {
	var c state.Counts
	c[kind] = n
	return &c
}

func TestResume(t *testing.T) {
	t.Parallel()
	ok := func(res *state.Result) state.State {
		return state.State{Kind: state.Success, Time: t0, Attempt: 1, Result: res}
	}
	tests := []struct {
		name        string
		prior       func(store string) map[string]state.State
		wantCalls   map[string]int
		wantLoadGot []int // nil: load not called
		wantFlow    state.Kind
		notReported []string // task runs taken from Prior
	}{{
		name:        "no prior state",
		prior:       func(string) map[string]state.State { return nil },
		wantCalls:   map[string]int{"extract": 1, "transform:1": 1, "transform:2": 1, "transform:3": 1, "load": 1},
		wantLoadGot: []int{10, 20, 30},
		wantFlow:    state.Success,
	}, {
		name: "successful upstream is loaded, not run",
		prior: func(store string) map[string]state.State {
			return map[string]state.State{"extract": ok(put(t, store, "success/extract.json", []int{4, 5}))}
		},
		wantCalls:   map[string]int{"transform:4": 1, "transform:5": 1, "load": 1},
		wantLoadGot: []int{40, 50},
		wantFlow:    state.Success,
		notReported: []string{"extract"},
	}, {
		name: "cached upstream is loaded, not run",
		prior: func(store string) map[string]state.State {
			return map[string]state.State{"extract": {Kind: state.Cached, Time: t0, Result: put(t, store, "cached/extract.json", []int{7})}}
		},
		wantCalls:   map[string]int{"transform:7": 1, "load": 1},
		wantLoadGot: []int{70},
		wantFlow:    state.Success,
		notReported: []string{"extract"},
	}, {
		name: "failed upstream runs again",
		prior: func(string) map[string]state.State {
			return map[string]state.State{"extract": {Kind: state.Failed, Time: t0, Attempt: 1, Message: "boom"}}
		},
		wantCalls:   map[string]int{"extract": 1, "transform:1": 1, "transform:2": 1, "transform:3": 1, "load": 1},
		wantLoadGot: []int{10, 20, 30},
		wantFlow:    state.Success,
	}, {
		name: "skipped upstream is not run and skips downstream",
		prior: func(string) map[string]state.State {
			return map[string]state.State{"extract": {Kind: state.Skipped, Time: t0}}
		},
		wantCalls:   map[string]int{},
		wantFlow:    state.Success,
		notReported: []string{"extract"},
	}, {
		name: "mapped task is reused whole; its upstream's result is not needed",
		prior: func(store string) map[string]state.State {
			return map[string]state.State{
				"extract":      ok(&state.Result{}), // not persisted, and nothing needs it
				"transform":    {Kind: state.Mapped, Time: t0, Counts: counts(state.Success, 2)},
				"transform[0]": ok(put(t, store, "mapped/transform/0.json", 40)),
				"transform[1]": ok(put(t, store, "mapped/transform/1.json", 50)),
			}
		},
		wantCalls:   map[string]int{"load": 1},
		wantLoadGot: []int{40, 50},
		wantFlow:    state.Success,
		notReported: []string{"extract", "transform", "transform[0]", "transform[1]"},
	}, {
		name: "partly mapped task runs only the children that did not succeed",
		prior: func(store string) map[string]state.State {
			return map[string]state.State{
				"extract":      ok(put(t, store, "partly/extract.json", []int{4, 5, 6})),
				"transform":    {Kind: state.Running, Time: t0},
				"transform[0]": ok(put(t, store, "partly/transform/0.json", 40)),
				"transform[1]": {Kind: state.Failed, Time: t0, Attempt: 1, Message: "boom"},
				"transform[2]": ok(put(t, store, "partly/transform/2.json", 60)),
			}
		},
		wantCalls:   map[string]int{"transform:5": 1, "load": 1},
		wantLoadGot: []int{40, 50, 60},
		wantFlow:    state.Success,
		notReported: []string{"extract", "transform[0]", "transform[2]"},
	}, {
		name: "finished run runs nothing",
		prior: func(store string) map[string]state.State {
			return map[string]state.State{
				"extract":      ok(nil),
				"transform":    {Kind: state.Mapped, Time: t0, Counts: counts(state.Success, 1)},
				"transform[0]": ok(nil),
				"load":         ok(nil),
			}
		},
		wantCalls:   map[string]int{},
		wantFlow:    state.Success,
		notReported: []string{"extract", "transform", "transform[0]", "load"},
	}}
	for _, tc := range tests {
		for _, workers := range []int{1, 4} {
			t.Run(tc.name+"/workers="+strconv.Itoa(workers), func(t *testing.T) {
				t.Parallel()
				store := "file://" + t.TempDir()
				e := newETL()
				prior := tc.prior(store)
				rec := &recorder{}
				run, err := Execute(t.Context(), &e.b.g, Config{Workers: workers, Prior: prior, Reporter: rec, Now: fixedNow})
				if err != nil {
					t.Fatal(err)
				}
				if run.State.Kind != tc.wantFlow {
					t.Errorf("flow run is %s, want %s", run.State, tc.wantFlow)
				}
				if got := e.calls.snapshot(); !maps.Equal(got, tc.wantCalls) {
					t.Errorf("calls %v, want %v", got, tc.wantCalls)
				}
				got := e.loadGot.Load()
				switch {
				case tc.wantLoadGot == nil && got != nil:
					t.Errorf("load got %v, want it not called", *got)
				case tc.wantLoadGot != nil && (got == nil || !slices.Equal(*got, tc.wantLoadGot)):
					t.Errorf("load got %v, want %v", got, tc.wantLoadGot)
				}
				for _, key := range tc.notReported {
					if ks := rec.reported(key); len(ks) > 0 {
						t.Errorf("task run %s was reported %v; it was taken from Prior", key, ks)
					}
					if tr := taskRun(t, &e.b.g, run, key); tr.State != prior[key] {
						t.Errorf("task run %s is %s, want its prior state %s", key, tr.State, prior[key])
					}
				}
			})
		}
	}
}

// TestResumeSkippedUpstreamNeedsNoValue: a downstream task that runs on an
// upstream skip gets the zero value, as in the run that skipped it.
func TestResumeSkippedUpstreamNeedsNoValue(t *testing.T) {
	t.Parallel()
	b := newGraph("skip")
	var got atomic.Pointer[string]
	up := b.add("up", def0("up", func(context.Context) (string, error) { return "ran", nil }))
	down := b.add("down", def1("down", func(_ context.Context, s string) (string, error) { got.Store(&s); return s, nil }), from(up))
	b.opts(down, func(o *Options) { o.SetSkipOnUpstreamSkip(false) })
	run, err := Execute(t.Context(), &b.g, Config{Prior: map[string]state.State{"up": {Kind: state.Skipped, Time: t0}}})
	if err != nil {
		t.Fatal(err)
	}
	if s := taskRun(t, &b.g, run, "down").State; s.Kind != state.Success || got.Load() == nil || *got.Load() != "" {
		t.Errorf("down is %s with input %v, want Success with the zero value", s, got.Load())
	}
}

// TestResumeUnavailableResult: a needed result that was not persisted, or
// cannot be loaded, fails the downstream task run, never runs it with a zero
// value, and says which tasks and what to do.
func TestResumeUnavailableResult(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name      string
		mapped    bool // transform is mapped over [1, 2]
		prior     map[string]state.State
		wantParts []string
	}{{
		name:  "not persisted",
		prior: map[string]state.State{"transform": {Kind: state.Success, Time: t0, Attempt: 1, Result: &state.Result{}}},
		wantParts: []string{`task "load" needs the result of task "transform"`, "did not persist its result",
			`turn on checkpointing for "transform" (reeve.Checkpoint())`},
	}, {
		name:      "no result at all",
		prior:     map[string]state.State{"transform": {Kind: state.Success, Time: t0, Attempt: 1}},
		wantParts: []string{`task "load" needs the result of task "transform"`, "did not persist its result"},
	}, {
		name: "object missing from a file store",
		prior: map[string]state.State{"transform": {Kind: state.Success, Time: t0, Attempt: 1,
			Result: &state.Result{Store: "file://" + dir, Key: "gone/transform.json", Serializer: "json"}}},
		wantParts: []string{`task "load" needs the result of task "transform"`, "could not be loaded", "gone/transform.json", result.ErrNotFound.Error()},
	}, {
		name: "store cannot be opened",
		prior: map[string]state.State{"transform": {Kind: state.Success, Time: t0, Attempt: 1,
			Result: &state.Result{Store: "nosuchscheme://bucket", Key: "transform.json", Serializer: "json"}}},
		wantParts: []string{`task "load" needs the result of task "transform"`, "could not be loaded", `no driver for scheme "nosuchscheme"`},
	}, {
		name:   "mapped child not persisted, parent reused",
		mapped: true,
		prior: map[string]state.State{
			"transform":    {Kind: state.Mapped, Time: t0, Counts: counts(state.Success, 2)},
			"transform[0]": {Kind: state.Success, Time: t0, Attempt: 1, Result: put(t, "file://"+dir, "m/transform/0.json", 10)},
			"transform[1]": {Kind: state.Success, Time: t0, Attempt: 1},
		},
		wantParts: []string{`task "load" needs the result of task "transform[1]"`, `turn on checkpointing for "transform"`},
	}, {
		name:   "mapped child not persisted, parent partly done",
		mapped: true,
		prior: map[string]state.State{
			"transform":    {Kind: state.Running, Time: t0},
			"transform[0]": {Kind: state.Failed, Time: t0, Attempt: 1},
			"transform[1]": {Kind: state.Success, Time: t0, Attempt: 1},
		},
		wantParts: []string{`task "load" needs the result of task "transform[1]"`, `turn on checkpointing for "transform"`},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls counter
			b := newGraph("unavailable")
			src := b.add("source", def0("source", func(context.Context) ([]int, error) { calls.add("source"); return []int{1, 2}, nil }))
			var transform int
			if tc.mapped {
				transform = b.mapped("transform", def1("transform", func(_ context.Context, x int) (int, error) { calls.add("transform"); return x, nil }), each(src))
			} else {
				transform = b.add("transform", def1("transform", func(_ context.Context, xs []int) (int, error) { calls.add("transform"); return len(xs), nil }), from(src))
			}
			b.add("load", def1("load", func(_ context.Context, x any) (int, error) { calls.add("load"); return 0, nil }), from(transform))
			rec := &recorder{}
			run, err := Execute(t.Context(), &b.g, Config{Prior: tc.prior, Reporter: rec, Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			load := taskRun(t, &b.g, run, "load")
			if load.State.Kind != state.Failed {
				t.Fatalf("load is %s, want Failed", load.State)
			}
			for _, p := range tc.wantParts {
				if !strings.Contains(load.State.Message, p) {
					t.Errorf("message %q does not contain %q", load.State.Message, p)
				}
			}
			if n := calls.snapshot()["load"]; n != 0 {
				t.Errorf("load was called %d times, want 0", n)
			}
			if ks := rec.reported("load"); !slices.Equal(ks, []state.Kind{state.Pending, state.Failed}) {
				t.Errorf("load was reported %v, want [Pending Failed]", ks)
			}
			if run.State.Kind != state.Failed {
				t.Errorf("flow run is %s, want Failed", run.State)
			}
		})
	}
}

// TestResumeRetrying: a task run that was Retrying continues its attempt
// numbering, so its retry budget is what the earlier attempts left.
func TestResumeRetrying(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{1, 4} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			t.Parallel()
			var attempts []int // written by the task; the run is over when read
			var mu = make(chan struct{}, 1)
			b := newGraph("retrying")
			fetch := b.add("fetch", def0("fetch", func(ctx context.Context) (int, error) {
				info, _ := Info(ctx)
				mu <- struct{}{}
				attempts = append(attempts, info.Attempt)
				<-mu
				return 0, errors.New("still down")
			}))
			b.opts(fetch, func(o *Options) { o.SetRetries(3, 0) })
			prior := map[string]state.State{"fetch": {Kind: state.Retrying, Time: t0.Add(-time.Hour), StartAt: t0.Add(-time.Second), Attempt: 2,
				Message: "attempt 2 of 4 failed; retrying in 1h: still down"}}
			rec := &recorder{}
			run, err := Execute(t.Context(), &b.g, Config{Prior: prior, Reporter: rec, Now: fixedNow, Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(attempts, []int{3, 4}) {
				t.Errorf("attempts %v, want [3 4]: Retries(3) after 2 used attempts leaves 2", attempts)
			}
			s := taskRun(t, &b.g, run, "fetch").State
			if s.Kind != state.Failed || s.Attempt != 4 {
				t.Errorf("fetch is %s (attempt %d), want Failed at attempt 4", s, s.Attempt)
			}
			want := []state.Kind{state.Running, state.Retrying, state.Running, state.Failed}
			if ks := rec.reported("fetch"); !slices.Equal(ks, want) {
				t.Errorf("fetch was reported %v, want %v (the prior Retrying state is not reported again)", ks, want)
			}
		})
	}
}

// TestResumeRunningCountsAttempt: an attempt cut short (prior Running) is
// used; a prior Failed state starts over at attempt 1.
func TestResumeRunningCountsAttempt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		prior state.State
		want  int
	}{
		{state.State{Kind: state.Running, Time: t0, Attempt: 2}, 3},
		{state.State{Kind: state.Failed, Time: t0, Attempt: 2}, 1},
		{state.State{Kind: state.Pending, Time: t0}, 1},
	} {
		t.Run(tc.prior.Kind.String(), func(t *testing.T) {
			t.Parallel()
			b := newGraph("attempts")
			b.add("task", def0("task", func(ctx context.Context) (int, error) {
				info, _ := Info(ctx)
				return info.Attempt, nil
			}))
			run, err := Execute(t.Context(), &b.g, Config{Prior: map[string]state.State{"task": tc.prior}})
			if err != nil {
				t.Fatal(err)
			}
			tr := taskRun(t, &b.g, run, "task")
			if tr.State.Kind != state.Success || tr.Value != tc.want {
				t.Errorf("task is %s and ran attempt %v, want Success at attempt %d", tr.State, tr.Value, tc.want)
			}
		})
	}
}

// TestMaxRetryWait: a retry further away than MaxRetryWait is parked; the
// independent branch completes and the run ends Scheduled for the retry.
// Resumed with the states it ended with, once the retry is due, only the
// parked task (and what waits on it) runs.
func TestMaxRetryWait(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{1, 4} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			t.Parallel()
			var calls counter
			var healthy atomic.Bool
			b := newGraph("park")
			fetch := b.add("fetch", def0("fetch", func(context.Context) (int, error) {
				calls.add("fetch")
				if !healthy.Load() {
					return 0, errors.New("down")
				}
				return 5, nil
			}))
			b.opts(fetch, func(o *Options) { o.SetRetries(2, time.Hour); o.SetCheckpoint(true) })
			b.add("report", def1("report", func(_ context.Context, n int) (int, error) { calls.add("report"); return n * 2, nil }), from(fetch))
			a := b.add("a", def0("a", func(context.Context) (int, error) { calls.add("a"); return 1, nil }))
			b.opts(a, func(o *Options) { o.SetCheckpoint(true) })
			b.add("a2", def1("a2", func(_ context.Context, n int) (int, error) { calls.add("a2"); return n + 1, nil }), from(a))
			b.g.ResultStore = "file://" + t.TempDir()

			rec := &recorder{}
			run, err := Execute(t.Context(), &b.g, Config{FlowRunID: "r1", Reporter: rec, Now: fixedNow, MaxRetryWait: time.Minute, Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			due := t0.Add(time.Hour)
			if run.State.Kind != state.Scheduled || !run.State.StartAt.Equal(due) {
				t.Fatalf("flow run is %s starting at %s, want Scheduled at %s", run.State, run.State.StartAt, due)
			}
			if want := `task "fetch" retries at 2026-11-26T03:00:00Z: the run waits until then`; run.State.Message != want {
				t.Errorf("message %q, want %q", run.State.Message, want)
			}
			if last := rec.flow[len(rec.flow)-1]; last.Kind != state.Scheduled {
				t.Errorf("last reported flow state %s, want Scheduled", last)
			}
			if got, want := calls.snapshot(), map[string]int{"fetch": 1, "a": 1, "a2": 1}; !maps.Equal(got, want) {
				t.Errorf("calls %v, want %v", got, want)
			}
			fs := taskRun(t, &b.g, run, "fetch").State
			if fs.Kind != state.Retrying || fs.Attempt != 1 || !fs.StartAt.Equal(due) {
				t.Errorf("fetch is %s (attempt %d, start %s), want Retrying after attempt 1 until %s", fs, fs.Attempt, fs.StartAt, due)
			}
			for key, want := range map[string]state.Kind{"report": state.Pending, "a": state.Success, "a2": state.Success} {
				if s := taskRun(t, &b.g, run, key).State; s.Kind != want {
					t.Errorf("%s is %s, want %s", key, s, want)
				}
			}

			// Resumed too early: parked again, nothing runs.
			prior := priorOf(&b.g, run)
			early := func() time.Time { return t0.Add(30 * time.Minute) }
			run2, err := Execute(t.Context(), &b.g, Config{FlowRunID: "r1", Prior: prior, Now: early, MaxRetryWait: time.Minute, Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			if run2.State.Kind != state.Scheduled || !run2.State.StartAt.Equal(due) {
				t.Errorf("early resume: flow run is %s starting at %s, want Scheduled at %s", run2.State, run2.State.StartAt, due)
			}
			if got := calls.snapshot()["fetch"]; got != 1 {
				t.Errorf("early resume: fetch called %d times in all, want 1", got)
			}

			// Resumed when due: fetch's attempt 2 runs; a and a2 do not.
			healthy.Store(true)
			late := func() time.Time { return due.Add(time.Second) }
			rec3 := &recorder{}
			run3, err := Execute(t.Context(), &b.g, Config{FlowRunID: "r1", Prior: prior, Reporter: rec3, Now: late, MaxRetryWait: time.Minute, Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			if run3.State.Kind != state.Success {
				t.Fatalf("resumed flow run is %s, want Success", run3.State)
			}
			if got, want := calls.snapshot(), map[string]int{"fetch": 2, "a": 1, "a2": 1, "report": 1}; !maps.Equal(got, want) {
				t.Errorf("calls %v, want %v", got, want)
			}
			if s := taskRun(t, &b.g, run3, "fetch").State; s.Attempt != 2 {
				t.Errorf("fetch is %s at attempt %d, want attempt 2", s, s.Attempt)
			}
			if v := taskRun(t, &b.g, run3, "report").Value; v != 10 {
				t.Errorf("report returned %v, want 10", v)
			}
			if ks := rec3.reported("a2"); len(ks) > 0 {
				t.Errorf("a2 was reported %v; it finished in the first attempt", ks)
			}
		})
	}
}

// TestMaxRetryWaitCancel: a run with a parked retry can still be cancelled
// while other task runs are running.
func TestMaxRetryWaitCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	b := newGraph("park-cancel")
	fetch := b.add("fetch", def0("fetch", func(context.Context) (int, error) { return 0, errors.New("down") }))
	b.opts(fetch, func(o *Options) { o.SetRetries(1, time.Hour) })
	started := make(chan struct{})
	b.add("slow", def0("slow", func(ctx context.Context) (int, error) {
		close(started)
		<-ctx.Done()
		return 0, ctx.Err()
	}))
	rec := &recorder{on: func(key string, s state.State) {
		if key == "fetch" && s.Kind == state.Retrying {
			go func() { <-started; cancel() }()
		}
	}}
	run, err := Execute(ctx, &b.g, Config{Reporter: rec, Now: fixedNow, MaxRetryWait: time.Minute, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if run.State.Kind != state.Cancelled {
		t.Errorf("flow run is %s, want Cancelled", run.State)
	}
	for _, key := range []string{"fetch", "slow"} {
		if s := taskRun(t, &b.g, run, key).State; s.Kind != state.Cancelled {
			t.Errorf("%s is %s, want Cancelled", key, s)
		}
	}
}

// TestCheckpointAll: every task run persists its result, mapped children
// included, unless the task set Checkpoint(false); without a store nothing
// is persisted and nothing fails. The states resume a later run.
func TestCheckpointAll(t *testing.T) {
	t.Parallel()
	t.Run("persists", func(t *testing.T) {
		t.Parallel()
		e := newETL()
		store := "file://" + t.TempDir()
		run, err := Execute(t.Context(), &e.b.g, Config{FlowRunID: "run-1", ResultStore: store, CheckpointAll: true, Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		if run.State.Kind != state.Success {
			t.Fatalf("flow run is %s", run.State)
		}
		if got := get[[]int](t, taskRun(t, &e.b.g, run, "extract").State.Result); !slices.Equal(got, []int{1, 2, 3}) {
			t.Errorf("extract's stored result %v", got)
		}
		for i, want := range []int{10, 20, 30} {
			res := taskRun(t, &e.b.g, run, "transform["+strconv.Itoa(i)+"]").State.Result
			if got := get[int](t, res); got != want {
				t.Errorf("transform[%d]'s stored result %d, want %d", i, got, want)
			}
		}
		res := taskRun(t, &e.b.g, run, "load").State.Result
		if res.Store == "" || res.Key != "etl/run-1/load.json" || get[int](t, res) != 60 {
			t.Errorf("load's result %+v", res)
		}

		// A resumed run where only load failed runs only load, on the
		// stored results.
		prior := priorOf(&e.b.g, run)
		prior["load"] = state.State{Kind: state.Failed, Time: t0, Attempt: 1, Message: "boom"}
		e2 := newETL()
		run2, err := Execute(t.Context(), &e2.b.g, Config{FlowRunID: "run-1", Prior: prior, ResultStore: store, CheckpointAll: true})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := e2.calls.snapshot(), map[string]int{"load": 1}; !maps.Equal(got, want) {
			t.Errorf("calls %v, want %v", got, want)
		}
		if got := e2.loadGot.Load(); got == nil || !slices.Equal(*got, []int{10, 20, 30}) {
			t.Errorf("load got %v, want [10 20 30]", got)
		}
		if run2.State.Kind != state.Success {
			t.Errorf("resumed flow run is %s", run2.State)
		}
	})
	t.Run("explicit Checkpoint(false)", func(t *testing.T) {
		t.Parallel()
		e := newETL()
		e.b.opts(2, func(o *Options) { o.SetCheckpoint(false) }) // load
		run, err := Execute(t.Context(), &e.b.g, Config{ResultStore: "file://" + t.TempDir(), CheckpointAll: true})
		if err != nil {
			t.Fatal(err)
		}
		if res := taskRun(t, &e.b.g, run, "load").State.Result; res.Persisted() {
			t.Errorf("load's result was persisted to %s; it set Checkpoint(false)", res.Location())
		}
		if res := taskRun(t, &e.b.g, run, "extract").State.Result; !res.Persisted() {
			t.Errorf("extract's result was not persisted")
		}
	})
	t.Run("no store", func(t *testing.T) {
		t.Parallel()
		e := newETL()
		run, err := Execute(t.Context(), &e.b.g, Config{CheckpointAll: true})
		if err != nil {
			t.Fatalf("CheckpointAll with no store: %v", err)
		}
		if run.State.Kind != state.Success {
			t.Errorf("flow run is %s", run.State)
		}
		if res := taskRun(t, &e.b.g, run, "extract").State.Result; res.Persisted() {
			t.Errorf("extract's result was persisted to %s with no store configured", res.Location())
		}
	})
	t.Run("unserializable result is not a failure", func(t *testing.T) {
		t.Parallel()
		b := newGraph("unserializable")
		b.add("ch", def0("ch", func(context.Context) (chan int, error) { return make(chan int), nil }))
		run, err := Execute(t.Context(), &b.g, Config{ResultStore: "file://" + t.TempDir(), CheckpointAll: true, Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		if s := taskRun(t, &b.g, run, "ch").State; s.Kind != state.Success || s.Result.Persisted() {
			t.Errorf("ch is %s (persisted %v), want Success, not persisted", s, s.Result.Persisted())
		}
	})
}

// TestResumeTriggers: triggers see the prior states of adopted upstream task
// runs as if they had just finished; a state-only edge needs no result.
func TestResumeTriggers(t *testing.T) {
	t.Parallel()
	var calls counter
	b := newGraph("triggers")
	up := b.add("up", def0("up", func(context.Context) (int, error) { calls.add("up"); return 1, nil }))
	failing := b.add("failing", def0("failing", func(context.Context) (int, error) { calls.add("failing"); return 0, errors.New("boom") }))
	cleanup := b.add("cleanup", def0("cleanup", func(context.Context) (int, error) { calls.add("cleanup"); return 0, nil }))
	b.g.Nodes[cleanup].After = []int{up, failing}
	b.opts(cleanup, func(o *Options) { o.SetTrigger(Trigger{Name: AllFinished}) })
	alert := b.add("alert", def0("alert", func(context.Context) (int, error) { calls.add("alert"); return 0, nil }))
	b.g.Nodes[alert].After = []int{up}
	b.opts(alert, func(o *Options) { o.SetTrigger(Trigger{Name: AnyFailed}) })
	b.g.Reference = []int{cleanup}

	prior := map[string]state.State{
		"up":      {Kind: state.Success, Time: t0, Attempt: 1}, // no persisted result: only its state is needed
		"failing": {Kind: state.Failed, Time: t0, Attempt: 1},
	}
	run, err := Execute(t.Context(), &b.g, Config{Prior: prior, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := calls.snapshot(), map[string]int{"failing": 1, "cleanup": 1}; !maps.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	for key, want := range map[string]state.Kind{"up": state.Success, "failing": state.Failed, "cleanup": state.Success, "alert": state.TriggerFailed} {
		if s := taskRun(t, &b.g, run, key).State; s.Kind != want {
			t.Errorf("%s is %s, want %s", key, s, want)
		}
	}
}
