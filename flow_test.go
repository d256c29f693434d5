package reeve_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/reevehq/reeve"
)

func TestDataEdgesConstantsAndParameters(t *testing.T) {
	t.Parallel()
	add := reeve.NewTask2(tn(t, "add"), func(_ context.Context, a, b int) (int, error) { return a + b, nil })
	greet := reeve.NewTask2(tn(t, "greet"), func(_ context.Context, who string, n int) (string, error) {
		return strings.Repeat("hi "+who+" ", n), nil
	})
	f := reeve.NewFlow("edges")
	x := reeve.Param(f, "x", reeve.Default(2))
	who := reeve.Param[string](f, "who") // required
	sum := add.Bind(f, x, reeve.Const(f, 40))
	out := greet.Bind(f, who, add.Bind(f, sum, reeve.Const(f, -41)))
	executors(t, func(t *testing.T, o reeve.RunOptions) {
		o.Params = map[string]any{"who": "ann"}
		run := mustRun(t, f, o)
		if got := result(t, run, sum); got != 42 {
			t.Errorf("sum: got %d, want 42 (x defaults to 2)", got)
		}
		if got := result(t, run, out); got != "hi ann " {
			t.Errorf("greet: got %q", got)
		}
		o.Params = map[string]any{"who": "bo", "x": 3}
		if got := result(t, mustRun(t, f, o), sum); got != 43 {
			t.Errorf("sum with x=3: got %d, want 43", got)
		}
	})
}

func TestParametersAreCheckedBeforeAnythingRuns(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	count := reeve.NewTask1(tn(t, "count"), func(_ context.Context, n int) (int, error) { calls.Add(1); return n, nil })
	f := reeve.NewFlow("params")
	count.Bind(f, reeve.Param[int](f, "n"))
	count.Bind(f, reeve.Param(f, "limit", reeve.Default(5)))
	for _, tc := range []struct {
		name   string
		params map[string]any
		want   []string
	}{
		{"missing required", nil, []string{`missing required parameter "n"`}},
		{"unknown", map[string]any{"n": 1, "nn": 2}, []string{`unknown parameter "nn"`, "n, limit"}},
		{"wrong type", map[string]any{"n": "ten"}, []string{`parameter "n"`, "int"}},
		{"all at once", map[string]any{"limit": 1.5, "zz": true}, []string{`"n"`, `"limit"`, `"zz"`}},
	} {
		_, err := f.Run(t.Context(), reeve.RunOptions{Params: tc.params})
		wantErrContains(t, err, tc.want...)
	}
	if calls.Load() != 0 {
		t.Errorf("a task ran %d times although the parameters were invalid", calls.Load())
	}
}

func TestStateOnlyEdgesOrderTasks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var order []string
	step := reeve.NewTask1(tn(t, "step"), func(_ context.Context, s string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, s)
		return s, nil
	})
	f := reeve.NewFlow("order")
	c := step.Bind(f, reeve.Const(f, "c"), reeve.Name("c"))
	b := step.Bind(f, reeve.Const(f, "b"), reeve.Name("b"), reeve.After(c))
	a := step.Bind(f, reeve.Const(f, "a"), reeve.Name("a"))
	a.After(b) // added after binding
	run := mustRun(t, f, reeve.RunOptions{Executor: reeve.Parallel, Workers: 8})
	if run.State().Kind != reeve.Success {
		t.Fatal(run.State())
	}
	if !slices.Equal(order, []string{"c", "b", "a"}) {
		t.Errorf("order: got %v, want [c b a]", order)
	}
}

func TestCycleIsRejectedAndNamed(t *testing.T) {
	t.Parallel()
	id := reeve.NewTask1(tn(t, "id"), ok[int])
	f := reeve.NewFlow("loop")
	a := id.Bind(f, reeve.Const(f, 1), reeve.Name("a"))
	b := id.Bind(f, a, reeve.Name("b"))
	c := id.Bind(f, b, reeve.Name("c"))
	a.After(c)
	_, err := f.Run(t.Context(), reeve.RunOptions{})
	wantErrContains(t, err, "cycle: a → b → c → a")
	if err := f.Save(&strings.Builder{}); err == nil {
		t.Error("Save accepted a flow with a cycle")
	}
}

func TestBuildMistakesAreReported(t *testing.T) {
	t.Parallel()
	id := reeve.NewTask1(tn(t, "id"), ok[int])
	other := reeve.NewFlow("other")
	foreign := reeve.Const(other, 1)
	f := reeve.NewFlow("mistakes")
	id.Bind(f, foreign)
	id.Bind(f, reeve.Ref[int]{}, reeve.Name("empty"))
	id.Bind(f, reeve.Const(f, 1), reeve.Name("empty"))
	reeve.Param[int](f, "p")
	reeve.Param[int](f, "p")
	_, err := f.Run(t.Context(), reeve.RunOptions{})
	wantErrContains(t, err, `another flow ("other")`, "empty reeve.Ref", `two tasks are named "empty"`, `parameter "p" is declared twice`)
}

func TestTaskIDsAreUniquePerBinding(t *testing.T) {
	t.Parallel()
	id := reeve.NewTask1(tn(t, "id"), ok[int])
	f := reeve.NewFlow("ids")
	id.Bind(f, id.Bind(f, id.Bind(f, reeve.Const(f, 1))))
	run := mustRun(t, f, reeve.RunOptions{})
	var keys []string
	for _, tr := range run.TaskRuns() {
		keys = append(keys, short(tr.Key))
	}
	if !slices.Equal(keys, []string{"id", "id-2", "id-3"}) {
		t.Errorf("keys: %v", keys)
	}
}

func TestDuplicateTaskNamePanicsWithBothPlaces(t *testing.T) {
	t.Parallel()
	reeve.NewTask0(tn(t, "x"), func(context.Context) (int, error) { return 0, nil })
	defer func() {
		v := recover()
		if v == nil || !strings.Contains(v.(string), "registered twice") || !strings.Contains(v.(string), "flow_test.go") {
			t.Errorf("got %v", v)
		}
	}()
	reeve.NewTask0(tn(t, "x"), func(context.Context) (int, error) { return 0, nil })
}

// TestWiringTheWrongTypeDoesNotCompile builds a program that passes a
// Ref[string] to an int input and expects the compiler to refuse it.
func TestWiringTheWrongTypeDoesNotCompile(t *testing.T) {
	t.Parallel()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		t.Skip("no go tool to compile with:", err)
	}
	cmd := exec.CommandContext(t.Context(), goTool, "build", "-o", os.DevNull, "./testdata/typeerror")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("a flow wiring Ref[string] into an int input compiled")
	}
	if !strings.Contains(string(out), "cannot use") || !strings.Contains(string(out), "Ref[string]") {
		t.Errorf("compiler output does not explain the type error:\n%s", out)
	}
}
