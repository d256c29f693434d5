package reeve_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reevehq/reeve"
)

// tn makes a task name unique to the test (and to each -count repetition:
// task names are global to the program).
func tn(t *testing.T, s string) string {
	name := t.Name() + "/" + s
	taskNames.Lock()
	defer taskNames.Unlock()
	ts := taskNames.m[name]
	i := slices.Index(ts, t)
	if i < 0 {
		i = len(ts)
		taskNames.m[name] = append(ts, t)
	}
	if i > 0 {
		return fmt.Sprintf("%s#%d/%s", t.Name(), i+1, s)
	}
	return name
}

var taskNames = struct {
	sync.Mutex
	m map[string][]*testing.T
}{m: map[string][]*testing.T{}}

// short strips the test's prefix from a task run key.
func short(key string) string { return key[strings.LastIndex(key, "/")+1:] }

// mustRun runs f and fails the test if the run could not start.
func mustRun(t *testing.T, f *reeve.Flow, o reeve.RunOptions) *reeve.FlowRun {
	t.Helper()
	run, err := f.Run(t.Context(), o)
	if err != nil {
		t.Fatalf("run %s: %v", f.Name(), err)
	}
	return run
}

// stateOf returns the state of a task run by key.
func stateOf(t *testing.T, run *reeve.FlowRun, key string) reeve.State {
	t.Helper()
	tr, ok := run.TaskRun(key)
	if !ok {
		var keys []string
		for _, tr := range run.TaskRuns() {
			keys = append(keys, tr.Key)
		}
		t.Fatalf("no task run %q; have %s", key, strings.Join(keys, ", "))
	}
	return tr.State
}

func wantKind(t *testing.T, run *reeve.FlowRun, key string, want reeve.Kind) reeve.State {
	t.Helper()
	s := stateOf(t, run, key)
	if s.Kind != want {
		t.Errorf("task run %s: got %s, want %s", key, s, want)
	}
	return s
}

func wantErrContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func result[T any](t *testing.T, run *reeve.FlowRun, r reeve.Ref[T]) T {
	t.Helper()
	v, err := reeve.ResultOf(run, r)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// executors runs a subtest per executor.
func executors(t *testing.T, fn func(t *testing.T, o reeve.RunOptions)) {
	for _, ex := range []reeve.Executor{reeve.Sequential, reeve.Parallel} {
		t.Run(string(ex), func(t *testing.T) {
			t.Parallel()
			fn(t, reeve.RunOptions{Executor: ex, Workers: 4})
		})
	}
}

var errBoom = errors.New("boom")

func ok[A any](_ context.Context, a A) (A, error) { return a, nil }
