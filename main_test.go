package reeve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests drive the command line that reeve.Main gives a flow program
// through runMain, with buffers for stdout and stderr.

// cliTaskSeq keeps task names unique across repeated runs of a test
// (-count=N): task names are global to the program.
var cliTaskSeq atomic.Int64

// cliTaskName makes a task name unique to the test and the call.
func cliTaskName(t *testing.T, name string) string {
	return t.Name() + "#" + strconv.FormatInt(cliTaskSeq.Add(1), 10) + "/" + name
}

// cliResult is what one command line did.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command line of a program offering flows, not on a terminal.
func runCLI(t *testing.T, flows []*Flow, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runMain(t.Context(), flows, args, &stdout, &stderr, false)
	return cliResult{code, stdout.String(), stderr.String()}
}

// match fails the test unless text matches every pattern.
func match(t *testing.T, what, text string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(text) {
			t.Errorf("%s does not match %s:\n%s", what, p, text)
		}
	}
}

// cliBuffer is a buffer that a task may read while the progress printer
// writes it.
type cliBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *cliBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *cliBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// cliFlows returns "ok", a flow with an int parameter x (default 2) that
// doubles it and logs, and "bad", whose one task fails twice (one retry).
func cliFlows(t *testing.T) (ok, bad *Flow) {
	double := NewTask1(cliTaskName(t, "double"), func(ctx context.Context, x int) (int, error) {
		Logger(ctx).Info("doubling", "x", x)
		return 2 * x, nil
	})
	boom := NewTask0(cliTaskName(t, "boom"), func(context.Context) (int, error) {
		return 0, errors.New("boom")
	}, Retries(1, 0))
	ok = NewFlow("ok")
	double.Bind(ok, Param(ok, "x", Default(2)), Name("double"))
	bad = NewFlow("bad")
	boom.Bind(bad, Name("boom"))
	return ok, bad
}

const summaryHeader = `(?m)^TASK\s+STATE\s+ATTEMPTS\s+DURATION\s+MESSAGE$`

func TestRunCommand(t *testing.T) {
	t.Parallel()
	ok, bad := cliFlows(t)
	both := []*Flow{ok, bad}
	tests := []struct {
		name   string
		flows  []*Flow
		args   []string
		code   int
		stdout []string // patterns
		stderr []string // patterns
	}{
		{
			name: "success", flows: both, args: []string{"run", "ok", "--param", "x=21"}, code: 0,
			stdout: []string{summaryHeader, `(?m)^double\s+Success\s+1\s`, `(?m)^flow run [0-9a-f-]{36} of ok: Success in \S+ \(1 task runs: 1 Success\)$`},
			stderr: []string{`(?m)^\S+ INFO  double: doubling x=21$`},
		},
		{
			name: "sequential executor", flows: both, args: []string{"run", "ok", "--executor", "sequential", "--workers", "3"}, code: 0,
			stdout: []string{`(?m)^flow run \S+ of ok: Success in `},
			stderr: []string{`(?m)doubling x=2$`},
		},
		{
			name: "failure", flows: both, args: []string{"run", "bad"}, code: 1,
			stdout: []string{summaryHeader, `(?m)^boom\s+Failed\s+2\s+\S+\s+boom$`, `(?m)^flow run \S+ of bad: Failed in \S+ \(1 of 1 reference tasks did not succeed`},
		},
		{
			name: "flow name omitted with one flow", flows: []*Flow{ok}, args: []string{"run"}, code: 0,
			stdout: []string{`(?m)^flow run \S+ of ok: Success in `},
		},
		{
			name: "flow name omitted with two flows", flows: both, args: []string{"run"}, code: 2,
			stderr: []string{`name the flow to run: bad, ok`},
		},
		{
			name: "unknown flow", flows: both, args: []string{"run", "nope"}, code: 2,
			stderr: []string{`no flow named "nope" in this program; it has: bad, ok`},
		},
		{
			name: "parameter without =", flows: both, args: []string{"run", "ok", "--param", "x"}, code: 2,
			stderr: []string{`--param "x": want name=value`},
		},
		{
			name: "parameter without a name", flows: both, args: []string{"run", "ok", "-p", "=3"}, code: 2,
			stderr: []string{`--param "=3": want name=value`},
		},
		{
			name: "unknown parameter", flows: both, args: []string{"run", "ok", "--param", "y=1"}, code: 2,
			stderr: []string{`unknown parameter "y" \(its parameters are x\)`},
		},
		{
			name: "parameter of the wrong type", flows: both, args: []string{"run", "ok", "--param", "x=abc"}, code: 2,
			stderr: []string{`parameter "x": want integer \(Go type int\), got "abc"`},
		},
		{
			name: "unknown executor", flows: both, args: []string{"run", "ok", "--executor", "fast"}, code: 2,
			stderr: []string{`unknown executor "fast"`},
		},
		{
			name: "unknown flag", flows: both, args: []string{"run", "ok", "--nope"}, code: 2,
			stderr: []string{`unknown flag: --nope`},
		},
		{
			name: "bad log level", flows: both, args: []string{"run", "ok", "--log-level", "loud"}, code: 2,
			stderr: []string{`--log-level "loud"`},
		},
		{
			name: "two flow names", flows: both, args: []string{"run", "ok", "bad"}, code: 2,
			stderr: []string{`accepts at most 1 arg`},
		},
		{
			name: "unknown command", flows: both, args: []string{"frobnicate"}, code: 2,
			stderr: []string{`unknown command "frobnicate"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := runCLI(t, tc.flows, tc.args...)
			if got.code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", got.code, tc.code, got.stdout, got.stderr)
			}
			match(t, "stdout", got.stdout, tc.stdout...)
			match(t, "stderr", got.stderr, tc.stderr...)
			if tc.code == exitUsage {
				if got.stdout != "" || strings.Contains(got.stderr, "Running") {
					t.Errorf("something ran although the command line was wrong:\nstdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
				}
				if !strings.HasPrefix(got.stderr, "error: ") {
					t.Errorf("stderr does not start with \"error: \": %q", got.stderr)
				}
			}
		})
	}
}

// runJSON is the part of `run --json` output the tests read.
type runJSON struct {
	FlowRunID string `json:"flow_run_id"`
	Flow      string `json:"flow"`
	State     State  `json:"state"`
	TaskRuns  []struct {
		Key      string  `json:"key"`
		Task     string  `json:"task"`
		TaskName string  `json:"task_name"`
		MapIndex *int    `json:"map_index"`
		State    State   `json:"state"`
		History  []State `json:"history"`
		Logs     []struct {
			Level   string         `json:"level"`
			Message string         `json:"message"`
			Attrs   map[string]any `json:"attrs"`
		} `json:"logs"`
	} `json:"task_runs"`
}

func kinds(h []State) []Kind {
	out := make([]Kind, len(h))
	for i, s := range h {
		out[i] = s.Kind
	}
	return out
}

func decodeRunJSON(t *testing.T, got cliResult) runJSON {
	t.Helper()
	var out runJSON
	if err := json.Unmarshal([]byte(got.stdout), &out); err != nil {
		t.Fatalf("stdout is not the run as JSON: %v\n%s", err, got.stdout)
	}
	if strings.Contains(got.stdout, "TASK") {
		t.Errorf("--json printed the summary table too:\n%s", got.stdout)
	}
	return out
}

func TestRunJSON(t *testing.T) {
	t.Parallel()
	ok, bad := cliFlows(t)
	doubleName := ok.g.Nodes[0].Def.Name
	square := NewTask1(cliTaskName(t, "square"), func(_ context.Context, x int) (int, error) { return x * x, nil })
	mapped := NewFlow("mapped")
	square.Map(mapped, Each(Const(mapped, []int{1, 2, 3})), Name("square"))
	flows := []*Flow{ok, bad, mapped}

	t.Run("success", func(t *testing.T) {
		t.Parallel()
		got := runCLI(t, flows, "run", "ok", "--json", "--param", "x=21")
		if got.code != 0 {
			t.Fatalf("exit code %d\n%s", got.code, got.stderr)
		}
		out := decodeRunJSON(t, got)
		if out.Flow != "ok" || out.State.Kind != Success || len(out.FlowRunID) != 36 || len(out.TaskRuns) != 1 {
			t.Fatalf("run: %+v", out)
		}
		tr := out.TaskRuns[0]
		if tr.Key != "double" || tr.Task != "double" || tr.TaskName != doubleName || tr.MapIndex != nil {
			t.Errorf("task run: key %q task %q name %q index %v", tr.Key, tr.Task, tr.TaskName, tr.MapIndex)
		}
		if want := []Kind{Pending, Running, Success}; tr.State.Kind != Success || !slices.Equal(kinds(tr.History), want) {
			t.Errorf("state %s, history %v, want %v", tr.State, kinds(tr.History), want)
		}
		if len(tr.Logs) != 1 || tr.Logs[0].Message != "doubling" || tr.Logs[0].Level != "INFO" || tr.Logs[0].Attrs["x"] != 21.0 || tr.Logs[0].Attrs["task_run_id"] != "double" {
			t.Errorf("logs: %+v", tr.Logs)
		}
	})
	t.Run("failure", func(t *testing.T) {
		t.Parallel()
		got := runCLI(t, flows, "run", "bad", "--json")
		if got.code != 1 {
			t.Fatalf("exit code %d, want 1\n%s", got.code, got.stderr)
		}
		out := decodeRunJSON(t, got)
		if out.State.Kind != Failed || len(out.TaskRuns) != 1 {
			t.Fatalf("run: %+v", out)
		}
		tr := out.TaskRuns[0]
		if want := []Kind{Pending, Running, Retrying, Running, Failed}; !slices.Equal(kinds(tr.History), want) {
			t.Errorf("history %v, want %v", kinds(tr.History), want)
		}
		if tr.State.Message != "boom" || tr.State.Attempt != 2 {
			t.Errorf("final state %+v", tr.State)
		}
	})
	t.Run("mapped", func(t *testing.T) {
		t.Parallel()
		got := runCLI(t, flows, "run", "mapped", "--json")
		if got.code != 0 {
			t.Fatalf("exit code %d\n%s", got.code, got.stderr)
		}
		out := decodeRunJSON(t, got)
		var keys []string
		for i, tr := range out.TaskRuns {
			keys = append(keys, tr.Key)
			if i > 0 && (tr.MapIndex == nil || *tr.MapIndex != i-1 || tr.State.Kind != Success) {
				t.Errorf("child %s: index %v, state %s", tr.Key, tr.MapIndex, tr.State)
			}
		}
		if want := []string{"square", "square[0]", "square[1]", "square[2]"}; !slices.Equal(keys, want) {
			t.Errorf("task runs %v, want %v", keys, want)
		}
		if s := out.TaskRuns[0].State; s.Kind != Mapped || s.Counts == nil || s.Counts[Success] != 3 {
			t.Errorf("mapped parent: %+v", s)
		}
	})
}

// Not on a terminal, progress is plain lines on stderr: flow and task
// states, failures and retries with their messages, and task logs.
func TestRunProgressWithoutTerminal(t *testing.T) {
	t.Parallel()
	ok, bad := cliFlows(t)
	got := runCLI(t, []*Flow{ok, bad}, "run", "bad")
	if got.code != 1 {
		t.Fatalf("exit code %d, want 1", got.code)
	}
	const ts = `\d\d:\d\d:\d\d\.\d{3} `
	match(t, "stderr", got.stderr,
		`(?m)^`+ts+`flow run [0-9a-f-]{36} of bad: Running$`,
		`(?m)^`+ts+`Running\s+boom$`,
		`(?m)^`+ts+`Retrying\s+boom: attempt 1 of 2 failed; retrying in 0s: boom$`,
		`(?m)^`+ts+`Failed\s+boom: boom$`)
	if strings.Contains(got.stderr, "\x1b") || strings.Contains(got.stderr, "\r") {
		t.Errorf("terminal control sequences in plain output: %q", got.stderr)
	}
	if strings.Contains(got.stdout, "Retrying") {
		t.Errorf("progress went to stdout:\n%s", got.stdout)
	}
}

// On a terminal, one status line is redrawn in place (cleared with
// "\r\x1b[2K") with counts of task runs done, running, failed and retrying,
// and cleared at the end.
func TestRunProgressOnTerminal(t *testing.T) {
	t.Parallel()
	stderr := &cliBuffer{}
	// The task returns once the status line, drawn by the progress ticker
	// (nothing else is printed while it runs), shows it running.
	wait := NewTask0(cliTaskName(t, "wait"), func(ctx context.Context) (int, error) {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(stderr.String(), "tty  0/1 done · 1 running · 0 failed · 0 retrying") {
			if time.Now().After(deadline) {
				return 0, errors.New("the status line was not drawn within 10s")
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		return 1, nil
	})
	f := NewFlow("tty")
	wait.Bind(f, Name("wait"))
	var stdout bytes.Buffer
	code := runMain(t.Context(), []*Flow{f}, []string{"run", "tty"}, &stdout, stderr, true)
	out := stderr.String()
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%q", code, stdout.String(), out)
	}
	for _, want := range []string{
		"\r\x1b[2Ktty  0/1 done · 1 running · 0 failed · 0 retrying (0 retries) · ",
		"\r\x1b[2Ktty  1/1 done · 0 running · 0 failed · 0 retrying (0 retries) · ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr has no %q:\n%q", want, out)
		}
	}
	match(t, "stderr", out, `\r\x1b\[2K\d\d:\d\d:\d\d\.\d{3} Success\s+wait\n`)
	if !strings.HasSuffix(out, "\r\x1b[2K") {
		t.Errorf("the status line is not cleared at the end: %q", out)
	}
	if strings.Contains(out, "flow run") {
		t.Errorf("plain flow-state lines on a terminal: %q", out)
	}
	match(t, "stdout", stdout.String(), summaryHeader, `(?m)^flow run \S+ of tty: Success in `)
}

func TestListCommand(t *testing.T) {
	t.Parallel()
	ok, bad := cliFlows(t)
	greet := NewTask1(cliTaskName(t, "greet"), func(_ context.Context, s string) (string, error) { return "hello " + s, nil })
	req := NewFlow("req")
	greet.Bind(req, Param[string](req, "name"))
	got := runCLI(t, []*Flow{ok, bad, req}, "list")
	if got.code != 0 {
		t.Fatalf("exit code %d\n%s", got.code, got.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(got.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 flows:\n%s", got.stdout)
	}
	match(t, "header", lines[0], `^FLOW\s+TASKS\s+PARAMETERS\s+SPEC HASH$`)
	for i, c := range []struct {
		f      *Flow
		params string
	}{{bad, "-"}, {ok, "x=2"}, {req, `name \(required\)`}} {
		hash, err := c.f.SpecHash()
		if err != nil {
			t.Fatal(err)
		}
		match(t, "flow line", lines[i+1], `^`+c.f.Name()+`\s+1\s+`+c.params+`\s+`+regexp.QuoteMeta(hash)+`$`)
	}
}

func TestSaveCommand(t *testing.T) {
	t.Parallel()
	ok, bad := cliFlows(t)
	flows := []*Flow{ok, bad}

	t.Run("every flow", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "specs") // created by save
		got := runCLI(t, flows, "save", "--out", dir)
		if got.code != 0 {
			t.Fatalf("exit code %d\n%s", got.code, got.stderr)
		}
		var want strings.Builder
		for _, f := range []*Flow{bad, ok} { // sorted by name
			path := filepath.Join(dir, f.Name()+".json")
			hash, err := f.SpecHash()
			if err != nil {
				t.Fatal(err)
			}
			want.WriteString(path + "\t" + hash + "\n")
			file, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			loaded, err := LoadFlow(file)
			file.Close()
			if err != nil {
				t.Fatalf("%s does not load: %v", path, err)
			}
			if h, _ := loaded.SpecHash(); h != hash || loaded.Name() != f.Name() {
				t.Errorf("%s loads as flow %q with hash %s, want %q with %s", path, loaded.Name(), h, f.Name(), hash)
			}
		}
		if got.stdout != want.String() {
			t.Errorf("stdout:\n%s\nwant:\n%s", got.stdout, want.String())
		}
	})
	t.Run("named flows", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if got := runCLI(t, flows, "save", "ok", "--out", dir); got.code != 0 {
			t.Fatalf("exit code %d\n%s", got.code, got.stderr)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 || entries[0].Name() != "ok.json" {
			t.Errorf("wrote %v, want only ok.json", entries)
		}
	})
	t.Run("unknown flow", func(t *testing.T) {
		t.Parallel()
		got := runCLI(t, flows, "save", "nope", "--out", t.TempDir())
		if got.code != 2 || !strings.Contains(got.stderr, `no flow named "nope"`) {
			t.Errorf("exit code %d, stderr %q", got.code, got.stderr)
		}
	})
}

// saveSpec writes f's spec to dir/<file>.json, after edit changes its
// decoded JSON (when not nil).
func saveSpec(t *testing.T, dir, file string, f *Flow, edit func(doc map[string]any)) {
	t.Helper()
	var b bytes.Buffer
	if err := f.Save(&b); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	if edit != nil {
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		edit(doc)
		var err error
		if data, err = json.Marshal(doc); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, file+".json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkLines checks the shape of healthcheck output: one "ok  " or "FAIL"
// line per check, then a total that agrees with them.
func checkLines(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	oks, fails := 0, 0
	for _, l := range lines[:len(lines)-1] {
		switch {
		case strings.HasPrefix(l, "ok   "):
			oks++
		case strings.HasPrefix(l, "FAIL "):
			fails++
		default:
			t.Errorf("not a check line: %q", l)
		}
	}
	want := "all " + strconv.Itoa(oks) + " checks passed"
	if fails > 0 {
		want = strconv.Itoa(fails) + " of " + strconv.Itoa(oks+fails) + " checks failed"
	}
	if last := lines[len(lines)-1]; last != want {
		t.Errorf("last line %q, want %q", last, want)
	}
}

// unsetEnv returns the name of an environment variable that is not set.
func unsetEnv(t *testing.T, name string) string {
	t.Helper()
	if _, set := os.LookupEnv(name); set {
		t.Skipf("the test needs %s to be unset", name)
	}
	return name
}

func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	// flow makes a one-task flow named "hc" with the given options.
	flow := func(t *testing.T, task []TaskOption, opts ...FlowOption) *Flow {
		step := NewTask1(cliTaskName(t, "step"), func(_ context.Context, x int) (int, error) { return x, nil }, task...)
		f := NewFlow("hc", opts...)
		step.Bind(f, Param(f, "x", Default(1)), Name("step"))
		return f
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) (flows []*Flow, args []string)
		code  int
		want  []string // patterns on stdout
		not   []string // substrings that must not appear
	}{
		{
			name: "built-in flows pass",
			setup: func(t *testing.T) ([]*Flow, []string) {
				ok, bad := cliFlows(t)
				return []*Flow{ok, bad, flow(t, nil)}, nil
			},
			want: []string{`(?m)^ok   hc: task step resolves to \S+/step$`, `(?m)^ok   hc: spec loads \(sha256:[0-9a-f]{64}\)$`,
				`(?m)^ok   ok: task double resolves to `, `(?m)^ok   bad: spec loads `, `(?m)^all 6 checks passed$`},
		},
		{
			name:  "checkpointed task without a store",
			setup: func(t *testing.T) ([]*Flow, []string) { return []*Flow{flow(t, []TaskOption{Checkpoint()})}, nil },
			code:  1,
			want:  []string{`(?m)^FAIL hc: task step persists its result but no result store is configured; set reeve\.Results\(url\) on the flow, reeve\.ResultStore\(url\) on the task, or pass --results URL$`},
		},
		{
			name: "checkpointed task with --results",
			setup: func(t *testing.T) ([]*Flow, []string) {
				return []*Flow{flow(t, []TaskOption{Checkpoint()})}, []string{"--results", t.TempDir()}
			},
			want: []string{`(?m)^ok   hc: task step persists its result to file:///`},
		},
		{
			name: "checkpointed task with a file store not there yet",
			setup: func(t *testing.T) ([]*Flow, []string) {
				dir := filepath.Join(t.TempDir(), "volume", "results")
				t.Cleanup(func() {
					if _, err := os.Stat(dir); err == nil {
						t.Errorf("the health check made the store's directory %s", dir)
					}
				})
				return []*Flow{flow(t, []TaskOption{Checkpoint(), ResultStore("file://" + dir)})}, nil
			},
			want: []string{`(?m)^ok   hc: task step persists its result to file:///.*/volume/results, a directory not here yet: it is made at run time, so a container needs it mounted \(reeve agent docker --volume HOST:/.*/volume/results\) to keep the results$`},
		},
		{
			name: "checkpointed task with a file store that is a file",
			setup: func(t *testing.T) ([]*Flow, []string) {
				file := filepath.Join(t.TempDir(), "results")
				if err := os.WriteFile(file, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return []*Flow{flow(t, []TaskOption{Checkpoint(), ResultStore("file://" + file)})}, nil
			},
			code: 1,
			want: []string{`(?m)^FAIL hc: task step: result store file:///.*/results: /.*/results is not a directory; name a directory$`},
		},
		{
			name: "cached task with the flow's store",
			setup: func(t *testing.T) ([]*Flow, []string) {
				return []*Flow{flow(t, []TaskOption{CacheFor(time.Hour)}, Results("mem://"+t.Name()))}, nil
			},
			want: []string{`(?m)^ok   hc: task step persists its result to mem://`},
		},
		{
			name: "checkpointed task with the server's store",
			setup: func(t *testing.T) ([]*Flow, []string) {
				return []*Flow{flow(t, []TaskOption{Checkpoint()})}, []string{"--results", "reeve://server"}
			},
			want: []string{`(?m)^ok   hc: task step persists its result to the server's result store \(reeve://server\)$`},
		},
		{
			name: "the flow's own store before the server's",
			setup: func(t *testing.T) ([]*Flow, []string) {
				return []*Flow{flow(t, []TaskOption{Checkpoint()}, Results("mem://"+t.Name()))}, []string{"--results", "reeve://server"}
			},
			want: []string{`(?m)^ok   hc: task step persists its result to mem://`},
			not:  []string{"server's result store"},
		},
		{
			name: "the server's store without a connection elsewhere",
			setup: func(t *testing.T) ([]*Flow, []string) {
				return []*Flow{flow(t, []TaskOption{Checkpoint()}, Results("reeve://server"))}, nil
			},
			want: []string{`(?m)^ok   hc: task step persists its result to the server's result store`},
		},
		{
			name: "secrets from the server",
			setup: func(t *testing.T) ([]*Flow, []string) {
				unsetEnv(t, "REEVE_SECRET_HC_SERVER_ONLY")
				return []*Flow{flow(t, nil, Secrets("HC_SERVER_ONLY"))}, []string{"--secrets-from-server"}
			},
			want: []string{`(?m)^ok   hc: secret HC_SERVER_ONLY is declared: runs get it from the server$`},
		},
		{
			name: "unset environment variable",
			setup: func(t *testing.T) ([]*Flow, []string) {
				return []*Flow{flow(t, nil, Env(unsetEnv(t, "REEVE_TEST_HEALTHCHECK_UNSET")))}, nil
			},
			code: 1,
			want: []string{`(?m)^FAIL hc: env REEVE_TEST_HEALTHCHECK_UNSET is not set; set it in the environment .*--run-env NAME=value when deploying.*reeve\.EnvFromAgent`},
		},
		{
			name: "environment variable from the agent",
			setup: func(t *testing.T) ([]*Flow, []string) {
				return []*Flow{flow(t, nil, EnvFromAgent(unsetEnv(t, "REEVE_TEST_HEALTHCHECK_UNSET")))}, nil
			},
			want: []string{`(?m)^ok   hc: env REEVE_TEST_HEALTHCHECK_UNSET is provided by the agent at run time$`},
		},
		{
			name: "missing secret",
			setup: func(t *testing.T) ([]*Flow, []string) {
				unsetEnv(t, "REEVE_SECRET_HC_MISSING")
				return []*Flow{flow(t, nil, Secrets("HC_MISSING"))}, nil
			},
			code: 1,
			want: []string{`(?m)^FAIL hc: secret "HC_MISSING" is not set: set the environment variable REEVE_SECRET_HC_MISSING, or put it in a secrets file and pass --secrets-file$`},
		},
		{
			name: "secret from a secrets file",
			setup: func(t *testing.T) ([]*Flow, []string) {
				unsetEnv(t, "REEVE_SECRET_HC_TOKEN")
				file := filepath.Join(t.TempDir(), "secrets.env")
				if err := os.WriteFile(file, []byte("HC_TOKEN=hc-s3cret-value\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return []*Flow{flow(t, nil, Secrets("HC_TOKEN"))}, []string{"--secrets-file", file}
			},
			want: []string{`(?m)^ok   hc: secret HC_TOKEN resolves$`},
			not:  []string{"hc-s3cret-value"},
		},
		{
			name: "spec directory that matches the program",
			setup: func(t *testing.T) ([]*Flow, []string) {
				f, dir := flow(t, nil), t.TempDir()
				saveSpec(t, dir, "hc", f, nil)
				return []*Flow{f}, []string{"--spec", dir}
			},
			want: []string{`(?m)^ok   hc: spec loads `, `(?m)^all 2 checks passed$`},
		},
		{
			name: "spec naming a task the program does not register",
			setup: func(t *testing.T) ([]*Flow, []string) {
				f, dir := flow(t, nil), t.TempDir()
				saveSpec(t, dir, "hc", f, func(doc map[string]any) {
					doc["tasks"].([]any)[0].(map[string]any)["task"] = "elsewhere/step"
				})
				return []*Flow{f}, []string{"--spec", dir}
			},
			code: 1,
			want: []string{`(?m)^FAIL hc: task step: task "elsewhere/step" is not registered in this program; build the image from the program that defines it$`},
			not:  []string{"spec loads"},
		},
		{
			name: "spec that differs from the built-in flow",
			setup: func(t *testing.T) ([]*Flow, []string) {
				f, dir := flow(t, nil), t.TempDir()
				saveSpec(t, dir, "hc", f, func(doc map[string]any) {
					doc["parameters"].([]any)[0].(map[string]any)["default"] = 2
				})
				return []*Flow{f}, []string{"--spec", dir}
			},
			code: 1,
			want: []string{`(?m)^ok   hc: task step resolves to `, `(?m)^FAIL hc: spec sha256:[0-9a-f]{64} differs from the flow built into this program \(sha256:[0-9a-f]{64}\); save the specs again from this build$`},
		},
		{
			name: "spec directory without specs",
			setup: func(t *testing.T) ([]*Flow, []string) {
				return []*Flow{flow(t, nil)}, []string{"--spec", t.TempDir()}
			},
			code: 1,
			want: []string{`(?m)^FAIL \S+: no spec files \(\*\.json\) found; write them with the save command$`},
		},
		{
			name: "spec that does not decode",
			setup: func(t *testing.T) ([]*Flow, []string) {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "broken.json"), []byte(`{"name": "hc"}`), 0o644); err != nil {
					t.Fatal(err)
				}
				return []*Flow{flow(t, nil)}, []string{"--spec", dir}
			},
			code: 1,
			want: []string{`(?m)^FAIL broken\.json: spec does not load: .*no spec_version`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			flows, args := tc.setup(t)
			got := runCLI(t, flows, append([]string{"healthcheck"}, args...)...)
			if got.code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", got.code, tc.code, got.stdout, got.stderr)
			}
			match(t, "stdout", got.stdout, tc.want...)
			for _, s := range tc.not {
				if strings.Contains(got.stdout+got.stderr, s) {
					t.Errorf("output contains %q:\n%s%s", s, got.stdout, got.stderr)
				}
			}
			checkLines(t, got.stdout)
		})
	}
}

// Not parallel: it sets environment variables.
func TestHealthcheckReadsTheEnvironment(t *testing.T) {
	t.Setenv("REEVE_TEST_HEALTHCHECK_URL", "https://example.com")
	t.Setenv("REEVE_SECRET_HC_ENV_TOKEN", "hc-env-s3cret")
	step := NewTask0(cliTaskName(t, "step"), func(context.Context) (int, error) { return 1, nil })
	f := NewFlow("hc", Env("REEVE_TEST_HEALTHCHECK_URL"), Secrets("HC_ENV_TOKEN"))
	step.Bind(f, Name("step"))
	got := runCLI(t, []*Flow{f}, "healthcheck")
	if got.code != 0 {
		t.Errorf("exit code %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	match(t, "stdout", got.stdout, `(?m)^ok   hc: env REEVE_TEST_HEALTHCHECK_URL is set$`, `(?m)^ok   hc: secret HC_ENV_TOKEN resolves$`)
	if strings.Contains(got.stdout, "hc-env-s3cret") {
		t.Errorf("the secret's value is printed:\n%s", got.stdout)
	}
	checkLines(t, got.stdout)
}

func TestHealthcheckSecretsFlagsConflict(t *testing.T) {
	t.Parallel()
	step := NewTask0(cliTaskName(t, "step"), func(context.Context) (int, error) { return 1, nil })
	f := NewFlow("hc")
	step.Bind(f, Name("step"))
	got := runCLI(t, []*Flow{f}, "healthcheck", "--secrets-from-server", "--secrets-file", "x.env")
	if got.code != exitUsage || !strings.Contains(got.stderr, "--secrets-file and --secrets-from-server: give one of them") {
		t.Errorf("exit %d, stderr %q; want exit %d and a message to give one of the flags", got.code, got.stderr, exitUsage)
	}
}
