package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/testenv"
)

// wantRows is what transform makes of the IDs 1..n.
func wantRows(n int) []Row {
	rows := make([]Row, n)
	for i := range rows {
		id := i + 1
		rows[i] = Row{ID: id, Name: fmt.Sprintf("rec-%03d", id), Score: id * id % 97}
	}
	return rows
}

func kinds(h []reeve.State) []reeve.Kind {
	out := make([]reeve.Kind, len(h))
	for i, s := range h {
		out[i] = s.Kind
	}
	return out
}

// valueOf returns the in-memory result of the task run with the given key.
func valueOf[T any](t *testing.T, run *reeve.FlowRun, key string) T {
	t.Helper()
	tr, ok := run.TaskRun(key)
	if !ok || tr.State.Result == nil {
		t.Fatalf("task run %s has no result (found: %v, state %s)", key, ok, tr.State)
	}
	v, ok := tr.State.Result.Value.(T)
	if !ok {
		t.Fatalf("task run %s returned %T", key, tr.State.Result.Value)
	}
	return v
}

func TestFlow(t *testing.T) {
	t.Parallel()
	f := Flow()
	for _, n := range []int{20, 0} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			t.Parallel()
			type outcome struct {
				Rows    []Row
				Summary Summary
			}
			got := map[reeve.Executor]outcome{}
			for _, ex := range []reeve.Executor{reeve.Sequential, reeve.Parallel} {
				run, err := f.Run(t.Context(), reeve.RunOptions{Executor: ex, Workers: 8, Params: map[string]any{"n": n}})
				if err != nil {
					t.Fatal(err)
				}
				if run.State().Kind != reeve.Success {
					t.Fatalf("%s: flow run %s", ex, run.State())
				}
				o := outcome{valueOf[[]Row](t, run, "etl.transform"), valueOf[Summary](t, run, "etl.load")}
				got[ex] = o
				if tr, _ := run.TaskRun("etl.transform"); tr.State.Kind != reeve.Mapped || tr.Children != n {
					t.Errorf("%s: transform is %s with %d children, want Mapped with %d", ex, tr.State, tr.Children, n)
				}
				// Every fifth record fails once, then its retry succeeds.
				for i := range n {
					tr, _ := run.TaskRun(fmt.Sprintf("etl.transform[%d]", i))
					want, attempts := []reeve.Kind{reeve.Pending, reeve.Running, reeve.Success}, 1
					if (i+1)%5 == 0 {
						want, attempts = []reeve.Kind{reeve.Pending, reeve.Running, reeve.Retrying, reeve.Running, reeve.Success}, 2
						if r := tr.History[2]; r.Attempt != 1 || !strings.Contains(r.Message, fmt.Sprintf("source unavailable for record %d (transient)", i+1)) {
							t.Errorf("%s: %s: retrying state %+v", ex, tr.Key, r)
						}
					}
					if !slices.Equal(kinds(tr.History), want) || tr.State.Attempt != attempts {
						t.Errorf("%s: %s: history %v ending at attempt %d, want %v ending at attempt %d",
							ex, tr.Key, kinds(tr.History), tr.State.Attempt, want, attempts)
					}
				}
			}
			want := outcome{wantRows(n), Summary{Rows: n}}
			for _, r := range want.Rows {
				want.Summary.Total += r.Score
			}
			if n == 20 && want.Summary.Total != 736 {
				t.Fatalf("the test's own expectation is off: total %d", want.Summary.Total)
			}
			for ex, o := range got {
				if !reflect.DeepEqual(o, want) {
					t.Errorf("%s: got %+v, want %+v", ex, o, want)
				}
			}
		})
	}
}

func TestNegativeCountFailsTheRun(t *testing.T) {
	t.Parallel()
	run, err := Flow().Run(t.Context(), reeve.RunOptions{Params: map[string]any{"n": -1}})
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := run.TaskRun("etl.extract")
	if tr.State.Kind != reeve.Failed || tr.State.Message != "n must not be negative, got -1" {
		t.Errorf("extract: %s", tr.State)
	}
	if load, _ := run.TaskRun("etl.load"); load.State.Kind.Successful() || run.State().Kind != reeve.Failed {
		t.Errorf("load %s, flow run %s", load.State, run.State())
	}
}

// cliResult is what one run of the example's program did.
type cliResult struct{ testenv.ProgramResult }

func buildProgram(t *testing.T) string { return testenv.BuildProgram(t, ".", "etl") }

func runProgram(t *testing.T, bin string, args ...string) cliResult {
	t.Helper()
	return cliResult{testenv.RunProgram(t, bin, nil, args...)}
}

func (r cliResult) check(t *testing.T, code int, stdout, stderr []string) {
	t.Helper()
	r.Check(t, code, stdout, stderr)
}

// TestProgram runs the example's command line the way the README does.
func TestProgram(t *testing.T) {
	t.Parallel()
	bin := buildProgram(t)
	const header = `(?m)^TASK\s+STATE\s+ATTEMPTS\s+DURATION\s+MESSAGE$`

	t.Run("run", func(t *testing.T) {
		t.Parallel()
		r := runProgram(t, bin, "run", "etl")
		r.check(t, 0,
			[]string{header, `(?m)^etl\.extract\s+Success\s+1\s`, `(?m)^etl\.transform\s+Mapped\s+20 children\s+\S+\s+20 mapped task runs \(20 Success\)$`,
				`(?m)^etl\.load\s+Success\s+1\s`, `(?m)^flow run [0-9a-f-]{36} of etl: Success in \S+ \(22 task runs: 22 Success\)$`},
			[]string{`(?m)Retrying\s+etl\.transform\[4\]: attempt 1 of 3 failed; retrying in 20ms: source unavailable for record 5 \(transient\)$`,
				`(?m)INFO  etl\.load: loaded rows rows=20 total=736$`})
		if n := strings.Count(r.Stderr, "Retrying "); n != 4 {
			t.Errorf("%d Retrying lines, want 4:\n%s", n, r.Stderr)
		}
	})
	t.Run("run with parameters as JSON", func(t *testing.T) {
		t.Parallel()
		r := runProgram(t, bin, "run", "etl", "--param", "n=5", "-p", "prefix=x", "--executor", "sequential", "--json")
		r.check(t, 0, nil, nil)
		var out struct {
			State    reeve.State `json:"state"`
			TaskRuns []struct {
				Key  string `json:"key"`
				Logs []struct {
					Attrs map[string]any `json:"attrs"`
				} `json:"logs"`
			} `json:"task_runs"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, r.Stdout)
		}
		if out.State.Kind != reeve.Success || len(out.TaskRuns) != 8 {
			t.Fatalf("flow run %s with %d task runs, want Success with 8", out.State, len(out.TaskRuns))
		}
		load := out.TaskRuns[7]
		if load.Key != "etl.load" || len(load.Logs) != 1 || load.Logs[0].Attrs["rows"] != 5.0 || load.Logs[0].Attrs["total"] != 55.0 {
			t.Errorf("load: %+v", load)
		}
	})
	t.Run("unknown parameter", func(t *testing.T) {
		t.Parallel()
		r := runProgram(t, bin, "run", "etl", "--param", "size=3")
		r.check(t, 2, nil, []string{`unknown parameter "size" \(its parameters are n, prefix\)`})
		if r.Stdout != "" {
			t.Errorf("stdout: %s", r.Stdout)
		}
	})
	t.Run("failed run", func(t *testing.T) {
		t.Parallel()
		r := runProgram(t, bin, "run", "etl", "--param", "n=-1")
		r.check(t, 1, []string{header, `(?m)^etl\.extract\s+Failed\s+1\s+\S+\s+n must not be negative, got -1$`, `(?m)^flow run \S+ of etl: Failed in `}, nil)
	})
	t.Run("list", func(t *testing.T) {
		t.Parallel()
		hash, err := Flow().SpecHash()
		if err != nil {
			t.Fatal(err)
		}
		r := runProgram(t, bin, "list")
		r.check(t, 0, []string{`(?m)^FLOW\s+TASKS\s+PARAMETERS\s+SPEC HASH$`, `(?m)^etl\s+3\s+n=20, prefix=rec\s+` + hash + `$`}, nil)
	})
	t.Run("healthcheck", func(t *testing.T) {
		t.Parallel()
		r := runProgram(t, bin, "healthcheck")
		r.check(t, 0, []string{`(?m)^ok   etl: task etl\.transform resolves to etl\.transform$`, `(?m)^all 4 checks passed$`}, nil)
	})
	t.Run("save then healthcheck the specs", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		r := runProgram(t, bin, "save", "--out", dir)
		r.check(t, 0, []string{`^` + regexp.QuoteMeta(filepath.Join(dir, "etl.json")) + `\tsha256:[0-9a-f]{64}\n$`}, nil)
		r = runProgram(t, bin, "healthcheck", "--spec", dir)
		r.check(t, 0, []string{`(?m)^ok   etl: spec loads `, `(?m)^all 4 checks passed$`}, nil)
	})
	t.Run("healthcheck without specs", func(t *testing.T) {
		t.Parallel()
		r := runProgram(t, bin, "healthcheck", "--spec", t.TempDir())
		r.check(t, 1, []string{`(?m)^FAIL .*no spec files`, `(?m)^1 of 1 checks failed$`}, nil)
	})
}
