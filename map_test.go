package reeve_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve"
)

func TestMapZipUnmappedAndReduce(t *testing.T) {
	t.Parallel()
	list := reeve.NewTask1(tn(t, "list"), func(_ context.Context, n int) ([]int, error) {
		out := make([]int, n)
		for i := range out {
			out[i] = i + 1
		}
		return out, nil
	})
	scale := reeve.NewTask2(tn(t, "scale"), func(_ context.Context, x, by int) (int, error) { return x * by, nil })
	label := reeve.NewTask3(tn(t, "label"), func(_ context.Context, x int, name string, sep string) (string, error) {
		return fmt.Sprint(name, sep, x), nil
	})
	sum := reeve.NewTask1(tn(t, "sum"), func(_ context.Context, xs []int) (int, error) {
		s := 0
		for _, x := range xs {
			s += x
		}
		return s, nil
	})
	join := reeve.NewTask1(tn(t, "join"), func(_ context.Context, xs []string) (string, error) { return strings.Join(xs, ","), nil })

	f := reeve.NewFlow("map")
	xs := list.Bind(f, reeve.Param(f, "n", reeve.Default(4)))
	scaled := scale.Map(f, reeve.Each(xs), reeve.Unmapped(reeve.Const(f, 10)), reeve.Name("scale"))
	names := reeve.Const(f, []string{"a", "b", "c", "d"})
	// label maps over the output of a mapped task, zipped with a constant list.
	labels := label.Map(f, reeve.Each(scaled), reeve.Each(names), reeve.Unmapped(reeve.Const(f, "=")), reeve.Name("label"))
	total := sum.Bind(f, scaled)
	joined := join.Bind(f, labels)

	executors(t, func(t *testing.T, o reeve.RunOptions) {
		run := mustRun(t, f, o)
		if run.State().Kind != reeve.Success {
			t.Fatal(run.State())
		}
		if got := result(t, run, total); got != 100 {
			t.Errorf("sum: got %d, want 100", got)
		}
		if got := result(t, run, joined); got != "a=10,b=20,c=30,d=40" {
			t.Errorf("join: got %q", got)
		}
		if got := result(t, run, scaled); !slices.Equal(got, []int{10, 20, 30, 40}) {
			t.Errorf("mapped result: %v", got)
		}
		parent := wantKind(t, run, "scale", reeve.Mapped)
		if parent.Counts == nil || parent.Counts[reeve.Success] != 4 {
			t.Errorf("mapped parent counts: %+v", parent.Counts)
		}
		for i := range 4 {
			s := wantKind(t, run, fmt.Sprintf("label[%d]", i), reeve.Success)
			if s.Result == nil || s.Result.Value != fmt.Sprint("abcd"[i:i+1], "=", (i+1)*10) {
				t.Errorf("label[%d] result: %+v", i, s.Result)
			}
		}

		o.Params = map[string]any{"n": 3}
		run = mustRun(t, f, o)
		wantKind(t, run, "label", reeve.Failed)
		if s := stateOf(t, run, "label"); !strings.Contains(s.Message, "different lengths") {
			t.Errorf("zip of 3 and 4 elements: %s", s)
		}
	})
}

func TestMapOverEmptyList(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	double := reeve.NewTask1(tn(t, "double"), func(_ context.Context, x int) (int, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return 2 * x, nil
	})
	count := reeve.NewTask1(tn(t, "count"), func(_ context.Context, xs []int) (int, error) { return len(xs), nil })
	f := reeve.NewFlow("empty")
	doubled := double.Map(f, reeve.Each(reeve.Const(f, []int{})), reeve.Name("double"))
	again := double.Map(f, reeve.Each(doubled), reeve.Name("again"))
	n := count.Bind(f, again)
	executors(t, func(t *testing.T, o reeve.RunOptions) {
		run := mustRun(t, f, o)
		if run.State().Kind != reeve.Success {
			t.Fatal(run.State())
		}
		wantKind(t, run, "double", reeve.Mapped)
		wantKind(t, run, "again", reeve.Mapped)
		if got := result(t, run, n); got != 0 {
			t.Errorf("count of empty: %d", got)
		}
		if got := result(t, run, again); got == nil || len(got) != 0 {
			t.Errorf("mapped over empty: got %#v, want an empty non-nil list", got)
		}
	})
	if calls != 0 {
		t.Errorf("mapped task ran %d times over empty lists", calls)
	}
}

// TestMappedChildrenHaveTheirOwnStates checks that each child retries on its
// own, that a downstream map follows child by child, and that a reduce sees
// the failure.
func TestMappedChildrenHaveTheirOwnStates(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	attempts := map[string]int{}
	work := reeve.NewTask1(tn(t, "work"), func(ctx context.Context, x int) (int, error) {
		info, _ := reeve.Info(ctx)
		mu.Lock()
		attempts[info.FlowRunID+info.TaskRunID]++
		n := attempts[info.FlowRunID+info.TaskRunID]
		mu.Unlock()
		switch {
		case x == 1 && n == 1:
			return 0, fmt.Errorf("flaky %d", x)
		case x == 2:
			return 0, fmt.Errorf("always fails %d", x)
		}
		return x, nil
	}, reeve.Retries(1, time.Millisecond))
	next := reeve.NewTask1(tn(t, "next"), func(_ context.Context, x int) (int, error) { return x + 100, nil })
	reduce := reeve.NewTask1(tn(t, "reduce"), func(_ context.Context, xs []int) ([]int, error) { return xs, nil })
	f := reeve.NewFlow("children")
	worked := work.Map(f, reeve.Each(reeve.Const(f, []int{0, 1, 2, 3})), reeve.Name("work"))
	nexted := next.Map(f, reeve.Each(worked), reeve.Name("next"))
	all := reduce.Bind(f, nexted, reeve.Name("strict"))
	lenient := reduce.Bind(f, nexted, reeve.Name("lenient"), reeve.When(reeve.AllFinished))
	executors(t, func(t *testing.T, o reeve.RunOptions) {
		run := mustRun(t, f, o)
		wantKind(t, run, "work[0]", reeve.Success)
		s1 := wantKind(t, run, "work[1]", reeve.Success)
		if s1.Attempt != 2 {
			t.Errorf("work[1] succeeded on attempt %d, want 2", s1.Attempt)
		}
		s2 := wantKind(t, run, "work[2]", reeve.Failed)
		if s2.Attempt != 2 || !strings.Contains(s2.Message, "always fails 2") {
			t.Errorf("work[2]: %+v", s2)
		}
		wantKind(t, run, "work", reeve.Failed)
		// Child by child: only next[2] is held back by its failed upstream.
		wantKind(t, run, "next[0]", reeve.Success)
		wantKind(t, run, "next[1]", reeve.Success)
		s := wantKind(t, run, "next[2]", reeve.TriggerFailed)
		if !strings.Contains(s.Message, "work[2]") {
			t.Errorf("next[2] message does not name its upstream: %s", s.Message)
		}
		wantKind(t, run, "next[3]", reeve.Success)
		wantKind(t, run, "strict", reeve.TriggerFailed)
		wantKind(t, run, "lenient", reeve.Success)
		if got := result(t, run, lenient); !slices.Equal(got, []int{100, 101, 0, 103}) {
			t.Errorf("all_finished reduce got %v, want the zero value for the failed child", got)
		}
		if _, err := reeve.ResultOf(run, all); err == nil {
			t.Error("a TriggerFailed task has a result")
		}
		if run.State().Kind != reeve.Failed {
			t.Errorf("flow: %s", run.State())
		}
		var retrying int
		tr, _ := run.TaskRun("work[1]")
		for _, h := range tr.History {
			if h.Kind == reeve.Retrying {
				retrying++
			}
		}
		if retrying != 1 {
			t.Errorf("work[1] history has %d Retrying states: %v", retrying, tr.History)
		}
	})
}
