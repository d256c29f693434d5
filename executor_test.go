package reeve_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reevehq/reeve"
)

// TestIndependentBranchesRunConcurrently: two tasks that each wait for the
// other can only both finish if the parallel executor runs them at once.
func TestIndependentBranchesRunConcurrently(t *testing.T) {
	t.Parallel()
	var arrived sync.WaitGroup
	arrived.Add(2)
	meet := reeve.NewTask1(tn(t, "meet"), func(ctx context.Context, who string) (string, error) {
		arrived.Done()
		done := make(chan struct{})
		go func() { arrived.Wait(); close(done) }()
		select {
		case <-done:
			return who + " met", nil
		case <-ctx.Done():
			return "", fmt.Errorf("%s waited alone: %w", who, ctx.Err())
		}
	}, reeve.Timeout(5*time.Second))
	f := reeve.NewFlow("meet")
	meet.Bind(f, reeve.Const(f, "a"), reeve.Name("a"))
	meet.Bind(f, reeve.Const(f, "b"), reeve.Name("b"))
	run := mustRun(t, f, reeve.RunOptions{Executor: reeve.Parallel, Workers: 2})
	if run.State().Kind != reeve.Success {
		t.Fatalf("branches did not run concurrently: %s", run.State())
	}
}

func TestParallelExecutorIsBounded(t *testing.T) {
	t.Parallel()
	var now, peak atomic.Int32
	busy := reeve.NewTask1(tn(t, "busy"), func(_ context.Context, x int) (int, error) {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		now.Add(-1)
		return x, nil
	})
	f := reeve.NewFlow("bounded")
	list := make([]int, 40)
	busy.Map(f, reeve.Each(reeve.Const(f, list)))
	run := mustRun(t, f, reeve.RunOptions{Executor: reeve.Parallel, Workers: 3})
	if run.State().Kind != reeve.Success {
		t.Fatal(run.State())
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak concurrency %d with 3 workers", p)
	}
	for _, o := range []reeve.RunOptions{{Executor: reeve.Sequential}, {Executor: reeve.Parallel, Workers: 1}} {
		peak.Store(0)
		mustRun(t, f, o)
		if p := peak.Load(); p != 1 {
			t.Errorf("%s with %d workers ran %d tasks at once", o.Executor, o.Workers, p)
		}
	}
	_, err := f.Run(t.Context(), reeve.RunOptions{Workers: -1})
	wantErrContains(t, err, "workers must be at least 1")
}

// TestExecutorsAgree runs a flow with mapping, failures, skips and retries
// under both executors and compares every task run's final kind and result.
func TestExecutorsAgree(t *testing.T) {
	t.Parallel()
	gen := reeve.NewTask1(tn(t, "gen"), func(_ context.Context, n int) ([]int, error) {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	})
	step := reeve.NewTask1(tn(t, "step"), func(ctx context.Context, x int) (int, error) {
		info, _ := reeve.Info(ctx)
		switch {
		case x%7 == 3:
			return 0, fmt.Errorf("bad %d", x)
		case x%11 == 5:
			return 0, reeve.Skip("skip")
		case x%5 == 1 && info.Attempt == 1:
			return 0, fmt.Errorf("flaky %d", x)
		}
		return x * 3, nil
	}, reeve.Retries(1, 0))
	sum := reeve.NewTask1(tn(t, "sum"), func(_ context.Context, xs []int) (int, error) {
		s := 0
		for _, x := range xs {
			s += x
		}
		return s, nil
	}, reeve.When(reeve.AllFinished))
	f := reeve.NewFlow("agree")
	xs := gen.Bind(f, reeve.Const(f, 200))
	a := step.Map(f, reeve.Each(xs), reeve.Name("a"))
	b := step.Map(f, reeve.Each(a), reeve.Name("b"))
	sum.Bind(f, b, reeve.Name("sum"))
	sum.Bind(f, a, reeve.Name("sum-a"))
	outcome := func(o reeve.RunOptions) map[string]string {
		run := mustRun(t, f, o)
		m := map[string]string{"flow": run.State().Kind.String()}
		for _, tr := range run.TaskRuns() {
			v := ""
			if tr.State.Result != nil {
				v = fmt.Sprint(tr.State.Result.Value)
			}
			m[tr.Key] = fmt.Sprintf("%s %d %s", tr.State.Kind, tr.State.Attempt, v)
		}
		return m
	}
	seq := outcome(reeve.RunOptions{Executor: reeve.Sequential})
	if len(seq) < 400 {
		t.Fatalf("only %d task runs", len(seq))
	}
	for _, workers := range []int{2, 8, 64} {
		par := outcome(reeve.RunOptions{Executor: reeve.Parallel, Workers: workers})
		if !reflect.DeepEqual(seq, par) {
			for k, v := range seq {
				if par[k] != v {
					t.Errorf("workers=%d: %s is %q in parallel, %q sequentially", workers, k, par[k], v)
				}
			}
		}
	}
}

func TestUnknownExecutorIsRejected(t *testing.T) {
	t.Parallel()
	id := reeve.NewTask1(tn(t, "id"), ok[int])
	f := reeve.NewFlow("x")
	id.Bind(f, reeve.Const(f, 1))
	_, err := f.Run(t.Context(), reeve.RunOptions{Executor: "dask"})
	wantErrContains(t, err, `unknown executor "dask"`, "sequential", "parallel")
}
