package reeve_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve"
)

func TestTriggers(t *testing.T) {
	t.Parallel()
	outcome := reeve.NewTask1(tn(t, "outcome"), func(_ context.Context, fail bool) (bool, error) {
		if fail {
			return false, errBoom
		}
		return true, nil
	})
	after := reeve.NewTask0(tn(t, "after"), func(context.Context) (string, error) { return "ran", nil })
	oneOK := reeve.NewTrigger(tn(t, "exactly_one_success"), func(up []reeve.UpstreamState) bool {
		n := 0
		for _, u := range up {
			if u.State.Kind == reeve.Success {
				n++
			}
		}
		return n == 1
	})
	type upstream struct{ a, b bool } // true: fails
	for _, tc := range []struct {
		trigger reeve.Trigger
		up      upstream
		runs    bool
	}{
		{reeve.AllSuccessful, upstream{false, false}, true},
		{reeve.AllSuccessful, upstream{true, false}, false},
		{reeve.AllFinished, upstream{true, true}, true},
		{reeve.AnySuccessful, upstream{true, false}, true},
		{reeve.AnySuccessful, upstream{true, true}, false},
		{reeve.AnyFailed, upstream{false, true}, true},
		{reeve.AnyFailed, upstream{false, false}, false},
		{reeve.AllFailed, upstream{true, true}, true},
		{reeve.AllFailed, upstream{true, false}, false},
		{oneOK, upstream{true, false}, true},
		{oneOK, upstream{false, false}, false},
	} {
		f := reeve.NewFlow("triggers")
		a := outcome.Bind(f, reeve.Const(f, tc.up.a), reeve.Name("a"))
		b := outcome.Bind(f, reeve.Const(f, tc.up.b), reeve.Name("b"))
		after.Bind(f, reeve.Name("after"), reeve.After(a, b), reeve.When(tc.trigger))
		run := mustRun(t, f, reeve.RunOptions{Executor: reeve.Sequential})
		s := stateOf(t, run, "after")
		if tc.runs && s.Kind != reeve.Success || !tc.runs && s.Kind != reeve.TriggerFailed {
			t.Errorf("%s with upstream failing a=%v b=%v: got %s", tc.trigger.Name(), tc.up.a, tc.up.b, s)
		}
		if !tc.runs && !strings.Contains(s.Message, tc.trigger.Name()) {
			t.Errorf("TriggerFailed message does not name the trigger: %q", s.Message)
		}
	}
}

func TestSignalsAndSkipPropagation(t *testing.T) {
	t.Parallel()
	calls := map[string]int{}
	var mu sync.Mutex
	act := reeve.NewTask1(tn(t, "act"), func(ctx context.Context, what string) (string, error) {
		info, _ := reeve.Info(ctx)
		mu.Lock()
		calls[info.FlowRunID+info.Task]++
		n := calls[info.FlowRunID+info.Task]
		mu.Unlock()
		switch what {
		case "skip":
			return "", reeve.Skip("nothing to do today")
		case "fail":
			return "", reeve.Fail("bad input, retrying will not help")
		case "retry":
			if n < 3 {
				return "", reeve.RetryAfter(time.Millisecond, "not ready yet")
			}
		}
		return what, nil
	}, reeve.Retries(5, time.Millisecond))
	f := reeve.NewFlow("signals")
	skipped := act.Bind(f, reeve.Const(f, "skip"), reeve.Name("skipper"))
	act.Bind(f, skipped, reeve.Name("follows-skip"))
	act.Bind(f, reeve.Const(f, "runs anyway"), reeve.Name("opted-out"), reeve.After(skipped), reeve.SkipOnUpstreamSkip(false))
	act.Bind(f, reeve.Const(f, "fail"), reeve.Name("failer"))
	act.Bind(f, reeve.Const(f, "retry"), reeve.Name("retrier"))
	run := mustRun(t, f, reeve.RunOptions{Executor: reeve.Sequential})
	s := wantKind(t, run, "skipper", reeve.Skipped)
	if s.Message != "nothing to do today" {
		t.Errorf("skip message: %q", s.Message)
	}
	s = wantKind(t, run, "follows-skip", reeve.Skipped)
	if !strings.Contains(s.Message, `"skipper"`) {
		t.Errorf("propagated skip does not name its upstream: %q", s.Message)
	}
	wantKind(t, run, "opted-out", reeve.Success)
	s = wantKind(t, run, "failer", reeve.Failed)
	if s.Attempt != 1 {
		t.Errorf("Fail was retried: attempt %d", s.Attempt)
	}
	s = wantKind(t, run, "retrier", reeve.Success)
	if s.Attempt != 3 {
		t.Errorf("Retry: succeeded on attempt %d, want 3", s.Attempt)
	}
	if run.State().Kind != reeve.Failed || !strings.Contains(run.State().Message, "failer") {
		t.Errorf("flow state: %s", run.State())
	}
}

func TestReferenceTasksDecideTheFlowState(t *testing.T) {
	t.Parallel()
	work := reeve.NewTask0(tn(t, "work"), func(context.Context) (int, error) { return 0, errBoom })
	cleanup := reeve.NewTask0(tn(t, "cleanup"), func(context.Context) (int, error) { return 1, nil })
	build := func() (*reeve.Flow, reeve.Ref[int], reeve.Ref[int]) {
		f := reeve.NewFlow("refs")
		w := work.Bind(f)
		c := cleanup.Bind(f, reeve.After(w), reeve.When(reeve.AllFinished))
		return f, w, c
	}
	// By default the terminal task (cleanup) decides: it succeeded.
	f, w, _ := build()
	if got := mustRun(t, f, reeve.RunOptions{}).State(); got.Kind != reeve.Success {
		t.Errorf("terminal cleanup succeeded, flow: %s", got)
	}
	f, w, c := build()
	f.ReferenceTasks(w, c)
	got := mustRun(t, f, reeve.RunOptions{}).State()
	if got.Kind != reeve.Failed || !strings.Contains(got.Message, "1 of 2 reference tasks") {
		t.Errorf("with work as a reference task, flow: %s", got)
	}
}

func TestStatesCarryMessagesTimesAndResults(t *testing.T) {
	t.Parallel()
	task := reeve.NewTask0(tn(t, "task"), func(context.Context) (map[string]int, error) { return map[string]int{"a": 1}, nil })
	f := reeve.NewFlow("states")
	task.Bind(f, reeve.Name("task"))
	start := time.Now()
	run := mustRun(t, f, reeve.RunOptions{})
	tr, _ := run.TaskRun("task")
	var kinds []reeve.Kind
	for i, s := range tr.History {
		kinds = append(kinds, s.Kind)
		if s.Time.Before(start) || (i > 0 && s.Time.Before(tr.History[i-1].Time)) {
			t.Errorf("state %d time %v is out of order", i, s.Time)
		}
	}
	if !slices.Equal(kinds, []reeve.Kind{reeve.Pending, reeve.Running, reeve.Success}) {
		t.Errorf("history: %v", kinds)
	}
	if tr.State.Result == nil || tr.State.Result.Value.(map[string]int)["a"] != 1 {
		t.Errorf("Success state result: %+v", tr.State.Result)
	}
	// States serialize with kind names, for the server and the UI.
	b, err := json.Marshal(tr.State)
	if err != nil || !strings.Contains(string(b), `"kind":"Success"`) {
		t.Errorf("JSON state: %s %v", b, err)
	}
	var back reeve.State
	if err := json.Unmarshal(b, &back); err != nil || back.Kind != reeve.Success || !back.Time.Equal(tr.State.Time) {
		t.Errorf("state round trip: %+v %v", back, err)
	}
}

func TestStateHandlers(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var taskChanges, failures, flowChanges, flowFailures []string
	record := func(into *[]string) reeve.Handler {
		return func(_ context.Context, c reeve.StateChange) {
			mu.Lock()
			defer mu.Unlock()
			who := c.Flow
			if c.TaskRun != nil {
				who = short(c.TaskRun.Key())
			}
			*into = append(*into, who+":"+c.Old.Kind.String()+"→"+c.New.Kind.String())
		}
	}
	task := reeve.NewTask1(tn(t, "task"), func(_ context.Context, fail bool) (int, error) {
		if fail {
			return 0, errBoom
		}
		return 1, nil
	}, reeve.OnStateChange(record(&taskChanges)), reeve.OnFailure(record(&failures)),
		reeve.OnStateChange(func(context.Context, reeve.StateChange) { panic("a broken handler must not crash the run") }))
	f := reeve.NewFlow("handlers")
	task.Bind(f, reeve.Const(f, false))
	task.Bind(f, reeve.Const(f, true))
	f.OnStateChange(record(&flowChanges))
	f.OnFailure(record(&flowFailures))
	run := mustRun(t, f, reeve.RunOptions{Executor: reeve.Sequential})
	if run.State().Kind != reeve.Failed {
		t.Fatal(run.State())
	}
	want := []string{"task:Pending→Running", "task:Running→Success", "task-2:Pending→Running", "task-2:Running→Failed"}
	var got []string
	for _, c := range taskChanges {
		if !strings.Contains(c, "→Pending") {
			got = append(got, c)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("task handler saw %v, want %v", got, want)
	}
	if !slices.Equal(failures, []string{"task-2:Running→Failed"}) {
		t.Errorf("on-failure handler saw %v", failures)
	}
	if !slices.Equal(flowChanges, []string{"handlers:Pending→Running", "handlers:Running→Failed"}) {
		t.Errorf("flow handler saw %v", flowChanges)
	}
	if len(flowFailures) != 1 {
		t.Errorf("flow on-failure handler saw %v", flowFailures)
	}
}
