// Command flows is the flow program of Reeve's end-to-end tests and
// benchmarks: small flows that exercise the runner, the agents and the
// server's recovery paths, run as real processes.
//
// Tasks that the tests count append a line to $E2E_DIR/calls; tasks that
// the tests hold wait for $E2E_DIR/release and write their process ID to
// $E2E_DIR/started-ATTEMPT first, so a test can kill that runner.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/reevehq/reeve"
)

func dir() string { return os.Getenv("E2E_DIR") }

// record appends line to $E2E_DIR/calls (one write: O_APPEND keeps
// concurrent lines whole).
func record(line string) error {
	if dir() == "" {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(dir(), "calls"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

var (
	// One is a task that does nothing.
	One = reeve.NewTask0("e2e.one", func(ctx context.Context) (string, error) { return "done", nil })
	// Inc adds one.
	Inc = reeve.NewTask1("e2e.inc", func(ctx context.Context, n int) (int, error) { return n + 1, nil })
	// Range lists 0..n-1.
	Range = reeve.NewTask1("e2e.range", func(ctx context.Context, n int) ([]int, error) {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	})
	// Sum adds a list up.
	Sum = reeve.NewTask1("e2e.sum", func(ctx context.Context, xs []int) (int, error) {
		s := 0
		for _, x := range xs {
			s += x
		}
		return s, nil
	})
	// Mark records its call and adds one.
	Mark = reeve.NewTask1("e2e.mark", func(ctx context.Context, n int) (int, error) {
		info, _ := reeve.Info(ctx)
		reeve.Logger(ctx).Info("mark", "task", info.Task, "n", n)
		return n + 1, record(info.Task + " " + info.FlowRunID)
	})
	// Gate records that it started (with its process ID), then waits for
	// $E2E_DIR/release or its context's end.
	Gate = reeve.NewTask1("e2e.gate", func(ctx context.Context, n int) (int, error) {
		info, _ := reeve.Info(ctx)
		started := filepath.Join(dir(), "started-"+strconv.Itoa(info.Attempt))
		if err := os.WriteFile(started, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return 0, err
		}
		fmt.Println("gate is waiting for", filepath.Join(dir(), "release"))
		for {
			if _, err := os.Stat(filepath.Join(dir(), "release")); err == nil {
				return n * 10, record(info.Task)
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	// Pick returns its input, recording the call; an odd input fails until
	// $E2E_DIR/fixed exists.
	Pick = reeve.NewTask1("e2e.pick", func(ctx context.Context, n int) (int, error) {
		info, _ := reeve.Info(ctx)
		if err := record(fmt.Sprintf("%s[%d] %s", info.Task, info.MapIndex, info.FlowRunID)); err != nil {
			return 0, err
		}
		if _, err := os.Stat(filepath.Join(dir(), "fixed")); n%2 == 1 && err != nil {
			return 0, reeve.Fail(fmt.Sprintf("%d is odd and not fixed yet", n))
		}
		return n, nil
	})
	// Flaky fails its first attempt of each flow run; it retries after a
	// delay long enough that the runner hands the wait back to the server
	// when REEVE_MAX_RETRY_WAIT is shorter.
	Flaky = reeve.NewTask1("e2e.flaky", func(ctx context.Context, n int) (int, error) {
		info, _ := reeve.Info(ctx)
		if err := record(fmt.Sprintf("%s attempt %d pid %d", info.Task, info.Attempt, os.Getpid())); err != nil {
			return 0, err
		}
		if info.Attempt == 1 {
			return 0, fmt.Errorf("flaky: first attempt fails")
		}
		return n + 100, nil
	}, reeve.Retries(1, 3*time.Second))
)

// Flows returns every flow of the program.
func Flows() []*reeve.Flow {
	one := reeve.NewFlow("one")
	One.Bind(one)

	chain := reeve.NewFlow("chain")
	ref := reeve.Const(chain, 0)
	for range 1000 {
		ref = Inc.Bind(chain, ref)
	}

	fanout := reeve.NewFlow("fanout")
	n := reeve.Param(fanout, "n", reeve.Default(1000))
	Sum.Bind(fanout, Inc.Map(fanout, reeve.Each(Range.Bind(fanout, n))))

	// resume: mark → gate → mark; a test kills the runner while gate waits.
	resume := reeve.NewFlow("resume")
	a := Mark.Bind(resume, reeve.Const(resume, 1), reeve.Name("before"))
	g := Gate.Bind(resume, a)
	Mark.Bind(resume, g, reeve.Name("after"))

	// longretry: mark → flaky (retries in 3s) → mark.
	long := reeve.NewFlow("longretry")
	b := Mark.Bind(long, reeve.Const(long, 1), reeve.Name("before"))
	Mark.Bind(long, Flaky.Bind(long, b), reeve.Name("after"))

	// hold: a single gate, for cancel tests.
	hold := reeve.NewFlow("hold")
	Gate.Bind(hold, reeve.Const(hold, 1))

	// restartable: range(5) → pick mapped (odd ones fail until fixed) → sum.
	restartable := reeve.NewFlow("restartable")
	Sum.Bind(restartable, Pick.Map(restartable, reeve.Each(Range.Bind(restartable, reeve.Const(restartable, 5)))))

	// outage: a gate, then 20 tasks that each log a line and record a call.
	outage := reeve.NewFlow("outage")
	og := Gate.Bind(outage, reeve.Const(outage, 1))
	for i := range 20 {
		Mark.Bind(outage, og, reeve.Name(fmt.Sprintf("after%02d", i)))
	}

	flows := []*reeve.Flow{one, chain, fanout, resume, long, hold, restartable, outage}
	for _, l := range []string{"a", "b", "c"} {
		f := reeve.NewFlow("labeled-"+l, reeve.Labels(l))
		Mark.Bind(f, reeve.Const(f, 0), reeve.Name("work"))
		flows = append(flows, f)
	}
	return flows
}

func main() { reeve.Main(Flows()...) }
