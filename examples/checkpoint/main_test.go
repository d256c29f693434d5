package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/testenv"
)

func taskRun(t *testing.T, run *reeve.FlowRun, key string) reeve.TaskRun {
	t.Helper()
	tr, ok := run.TaskRun(key)
	if !ok {
		t.Fatalf("flow run has no task run %s", key)
	}
	return tr
}

func kinds(h []reeve.State) []reeve.Kind {
	out := make([]reeve.Kind, len(h))
	for i, s := range h {
		out[i] = s.Kind
	}
	return out
}

// TestRerunAfterFailureReusesTheDownload is the example's story: a run
// whose report fails stores the download; the next run reuses it.
func TestRerunAfterFailureReusesTheDownload(t *testing.T) {
	t.Parallel()
	f := Flow()
	for _, ex := range []reeve.Executor{reeve.Sequential, reeve.Parallel} {
		t.Run(string(ex), func(t *testing.T) {
			t.Parallel()
			results := t.TempDir()
			run, err := f.Run(t.Context(), reeve.RunOptions{Executor: ex, Results: results, Params: map[string]any{"fail": true}})
			if err != nil {
				t.Fatal(err)
			}
			if run.State().Kind != reeve.Failed {
				t.Errorf("first run: %s, want Failed", run.State())
			}
			dl := taskRun(t, run, "checkpoint.download")
			if dl.State.Kind != reeve.Success || !dl.State.Result.Persisted() {
				t.Fatalf("first run: download %s, result %+v; want Success and stored", dl.State, dl.State.Result)
			}
			stored := filepath.Join(results, filepath.FromSlash(dl.State.Result.Key))
			if _, err := os.Stat(stored); err != nil {
				t.Errorf("the download is not where its state says: %v", err)
			}
			if len(dl.Logs) != 1 || dl.Logs[0].Message != "downloading" {
				t.Errorf("first run: download logged %v, want the downloading line", dl.Logs)
			}
			if r := taskRun(t, run, "checkpoint.report"); r.State.Kind != reeve.Failed || !strings.Contains(r.State.Message, "simulated crash") {
				t.Errorf("first run: report %s, want Failed with the simulated crash", r.State)
			}

			run, err = f.Run(t.Context(), reeve.RunOptions{Executor: ex, Results: results})
			if err != nil {
				t.Fatal(err)
			}
			if run.State().Kind != reeve.Success {
				t.Errorf("second run: %s, want Success", run.State())
			}
			dl2 := taskRun(t, run, "checkpoint.download")
			// Never Running and no log line: the function was not called.
			if want := []reeve.Kind{reeve.Pending, reeve.Cached}; !slices.Equal(kinds(dl2.History), want) || len(dl2.Logs) != 0 {
				t.Errorf("second run: download went through %v and logged %v; want %v and no log", kinds(dl2.History), dl2.Logs, want)
			}
			if dl2.State.Result.Key != dl.State.Result.Key {
				t.Errorf("second run: reused %s, want the first run's %s", dl2.State.Result.Key, dl.State.Result.Key)
			}
			if p := taskRun(t, run, "checkpoint.parse"); p.State.Kind != reeve.Mapped || p.Children != 5 {
				t.Errorf("second run: parse %s with %d children, want Mapped with 5", p.State, p.Children)
			}
			r := taskRun(t, run, "checkpoint.report")
			want := Summary{Cities: 5, Warmest: "cairo", MaxC: 24.5}
			if got, _ := r.State.Result.Value.(Summary); r.State.Kind != reeve.Success || got != want {
				t.Errorf("second run: report %s with %+v, want Success with %+v", r.State, r.State.Result.Value, want)
			}
		})
	}
}

// Another source is another cache key: nothing is reused.
func TestAnotherSourceDownloadsAgain(t *testing.T) {
	t.Parallel()
	f, results := Flow(), t.TempDir()
	for i, source := range []string{"https://example.com/a.csv", "https://example.com/b.csv"} {
		run, err := f.Run(t.Context(), reeve.RunOptions{Results: results, Params: map[string]any{"source": source}})
		if err != nil {
			t.Fatal(err)
		}
		if dl := taskRun(t, run, "checkpoint.download"); dl.State.Kind != reeve.Success {
			t.Errorf("run %d (%s): download %s, want Success", i+1, source, dl.State)
		}
	}
}

// A malformed line fails its parse task run at once, without retries.
func TestParseRejectsMalformedLines(t *testing.T) {
	t.Parallel()
	f := reeve.NewFlow("parse")
	Parse.Map(f, reeve.Each(reeve.Const(f, []string{"oslo,3.5", "oslo", "oslo,warm"})))
	run, err := f.Run(t.Context(), reeve.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"checkpoint.parse[1]": `line "oslo": want city,temperature`,
		"checkpoint.parse[2]": `line "oslo,warm": temperature: strconv.ParseFloat: parsing "warm": invalid syntax`,
	} {
		if s := taskRun(t, run, key).State; s.Kind != reeve.Failed || s.Message != want || s.Attempt != 1 {
			t.Errorf("%s: %s (attempt %d), want Failed: %s", key, s, s.Attempt, want)
		}
	}
	if got, _ := taskRun(t, run, "checkpoint.parse[0]").State.Result.Value.(Reading); got != (Reading{City: "oslo", TempC: 3.5}) {
		t.Errorf("parse[0] = %+v", got)
	}
}

// cliResult is what one run of the example's program did.
type cliResult struct{ testenv.ProgramResult }

func buildProgram(t *testing.T) string { return testenv.BuildProgram(t, ".", "checkpoint") }

func runProgram(t *testing.T, bin string, args ...string) cliResult {
	t.Helper()
	return cliResult{testenv.RunProgram(t, bin, nil, args...)}
}

func (r cliResult) check(t *testing.T, code int, stdout, stderr []string) {
	t.Helper()
	r.Check(t, code, stdout, stderr)
}

// TestProgram runs the example's command line the way its doc comment does.
func TestProgram(t *testing.T) {
	t.Parallel()
	bin := buildProgram(t)
	results := t.TempDir()
	const header = `(?m)^TASK\s+STATE\s+ATTEMPTS\s+DURATION\s+MESSAGE$`
	const downloading = `INFO  checkpoint.download: downloading source=https://example.com/temperatures.csv`

	r := runProgram(t, bin, "run", "checkpoint", "--results", results, "--param", "fail=true")
	r.check(t, 1,
		[]string{header, `(?m)^checkpoint\.download\s+Success\s+1\s`, `(?m)^checkpoint\.report\s+Failed\s+1\s+\S+\s+simulated crash`,
			`(?m)^flow run [0-9a-f-]{36} of checkpoint: Failed in `},
		[]string{`(?m)` + regexp.QuoteMeta(downloading) + `$`})

	r = runProgram(t, bin, "run", "checkpoint", "--results", results)
	r.check(t, 0,
		[]string{header, `(?m)^checkpoint\.download\s+Cached\s+-\s+-\s+reused a cached result from file://`,
			`(?m)^checkpoint\.parse\s+Mapped\s+5 children\s`, `(?m)^checkpoint\.report\s+Success\s+1\s`,
			`(?m)^flow run [0-9a-f-]{36} of checkpoint: Success in \S+ \(7 task runs: 6 Success, 1 Cached\)$`},
		[]string{`(?m)Cached\s+checkpoint\.download: reused a cached result from `})
	if strings.Contains(r.Stderr, "downloading") {
		t.Errorf("the second run downloaded again:\n%s", r.Stderr)
	}

	r = runProgram(t, bin, "run", "checkpoint", "--results", results, "--param", "fail=maybe")
	r.check(t, 2, nil, []string{`parameter "fail": want boolean`})

	r = runProgram(t, bin, "healthcheck", "--results", results)
	r.check(t, 0, []string{fmt.Sprintf(`(?m)^ok   checkpoint: task checkpoint\.download persists its result to file://%s$`, regexp.QuoteMeta(results)),
		`(?m)^all 5 checks passed$`}, nil)
}
