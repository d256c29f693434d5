package reeve_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reevehq/reeve"
)

func TestRetriesWithExponentialBackoff(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	flaky := reeve.NewTask0(tn(t, "flaky"), func(context.Context) (int, error) {
		if calls.Add(1) < 4 {
			return 0, errBoom
		}
		return 7, nil
	}, reeve.Retries(3, 2*time.Millisecond), reeve.Backoff(2, 5*time.Millisecond))
	f := reeve.NewFlow("retries")
	flaky.Bind(f, reeve.Name("flaky"))
	run := mustRun(t, f, reeve.RunOptions{})
	tr, _ := run.TaskRun("flaky")
	if tr.State.Kind != reeve.Success || tr.State.Attempt != 4 {
		t.Fatalf("got %s on attempt %d", tr.State, tr.State.Attempt)
	}
	var delays []time.Duration
	for _, s := range tr.History {
		if s.Kind == reeve.Retrying {
			delays = append(delays, s.StartAt.Sub(s.Time))
			if !strings.Contains(s.Message, "boom") {
				t.Errorf("Retrying message lacks the error: %q", s.Message)
			}
		}
	}
	want := []time.Duration{2 * time.Millisecond, 4 * time.Millisecond, 5 * time.Millisecond} // doubled, capped at 5ms
	if len(delays) != len(want) {
		t.Fatalf("retry delays %v, want %v", delays, want)
	}
	for i := range want {
		if delays[i] != want[i] {
			t.Errorf("retry %d waits %v, want %v", i+1, delays[i], want[i])
		}
	}
	// Retries used up: Failed with the last error.
	calls.Store(-100)
	run = mustRun(t, f, reeve.RunOptions{})
	if s := stateOf(t, run, "flaky"); s.Kind != reeve.Failed || s.Attempt != 4 || s.Message != "boom" {
		t.Errorf("after retries ran out: %s (attempt %d)", s, s.Attempt)
	}
}

func TestTimeoutCancelsTheTaskAndIsRetried(t *testing.T) {
	t.Parallel()
	var sawCancel atomic.Bool
	slow := reeve.NewTask0(tn(t, "slow"), func(ctx context.Context) (string, error) {
		// The first attempt of each run times out. (Not a shared call
		// counter: the executors' subtests run in parallel.)
		if info, _ := reeve.Info(ctx); info.Attempt == 1 {
			<-ctx.Done() // a well-behaved task notices the timeout
			sawCancel.Store(true)
			return "", ctx.Err()
		}
		return "fast enough", nil
	}, reeve.Timeout(20*time.Millisecond), reeve.Retries(1, 0))
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stuck := reeve.NewTask0(tn(t, "stuck"), func(ctx context.Context) (string, error) {
		<-release // ignores its context: the run must end without waiting for it
		return "too late", nil
	}, reeve.Timeout(20*time.Millisecond))
	f := reeve.NewFlow("timeouts")
	slow.Bind(f, reeve.Name("slow"))
	stuck.Bind(f, reeve.Name("stuck"))
	executors(t, func(t *testing.T, o reeve.RunOptions) {
		run := mustRun(t, f, o)
		tr, _ := run.TaskRun("slow")
		if tr.State.Kind != reeve.Success || tr.State.Attempt != 2 {
			t.Errorf("slow: %s attempt %d", tr.State, tr.State.Attempt)
		}
		if len(tr.History) < 3 || tr.History[2].Kind != reeve.Retrying || !strings.Contains(tr.History[2].Message, "timed out after 20ms") {
			t.Errorf("slow history: %v", tr.History)
		}
		if !sawCancel.Load() {
			t.Error("the task's context was not cancelled at the timeout")
		}
		s := wantKind(t, run, "stuck", reeve.TimedOut)
		if !strings.Contains(s.Message, "timed out after 20ms") {
			t.Errorf("stuck: %s", s)
		}
	})
}

func TestCancellingTheRunStopsScheduling(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	var ranAfter atomic.Bool
	wait := reeve.NewTask0(tn(t, "wait"), func(ctx context.Context) (int, error) {
		close(started)
		<-ctx.Done()
		return 0, ctx.Err()
	})
	next := reeve.NewTask1(tn(t, "next"), func(context.Context, int) (int, error) { ranAfter.Store(true); return 1, nil })
	f := reeve.NewFlow("cancel")
	w := wait.Bind(f, reeve.Name("wait"))
	next.Bind(f, w, reeve.Name("next"))
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started
		cancel()
	}()
	run, err := f.Run(ctx, reeve.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if run.State().Kind != reeve.Cancelled {
		t.Errorf("flow: %s", run.State())
	}
	wantKind(t, run, "wait", reeve.Cancelled)
	wantKind(t, run, "next", reeve.Cancelled)
	if ranAfter.Load() {
		t.Error("a task was scheduled after the cancellation")
	}
}

func TestCancelWithCauseIsInTheMessage(t *testing.T) {
	t.Parallel()
	id := reeve.NewTask1(tn(t, "id"), ok[int])
	f := reeve.NewFlow("cause")
	id.Bind(f, reeve.Const(f, 1), reeve.Name("id"))
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(errors.New("user pressed cancel"))
	run, err := f.Run(ctx, reeve.RunOptions{Executor: reeve.Sequential})
	if err != nil {
		t.Fatal(err)
	}
	s := wantKind(t, run, "id", reeve.Cancelled)
	if !strings.Contains(s.Message, "user pressed cancel") || !strings.Contains(run.State().Message, "user pressed cancel") {
		t.Errorf("cancel cause missing: task %q, flow %q", s.Message, run.State().Message)
	}
}

func TestPanicBecomesFailedWithStack(t *testing.T) {
	t.Parallel()
	bad := reeve.NewTask0(tn(t, "bad"), func(context.Context) (int, error) {
		var m map[string]int
		m["x"] = 1 // panics
		return 0, nil
	})
	f := reeve.NewFlow("panic")
	bad.Bind(f, reeve.Name("bad"))
	executors(t, func(t *testing.T, o reeve.RunOptions) {
		run := mustRun(t, f, o)
		s := wantKind(t, run, "bad", reeve.Failed)
		for _, want := range []string{"panic: assignment to entry in nil map", "resilience_test.go", "goroutine"} {
			if !strings.Contains(s.Message, want) {
				t.Errorf("panic message lacks %q:\n%s", want, s.Message)
			}
		}
	})
}
