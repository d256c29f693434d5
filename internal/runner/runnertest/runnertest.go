// Package runnertest is the conformance suite every runner.Runner runs: it
// starts real programs (small /bin/sh scripts) and checks their
// environment, output, exit status, failures to start, Stop, and Recover
// after a restart.
//
//	func TestConformance(t *testing.T) {
//		runnertest.Run(t, runnertest.Config{
//			New:     func(t *testing.T, dir string) runner.Runner { ... },
//			Program: func(t *testing.T, script string) api.Storage { ... },
//			Missing: func(t *testing.T) api.Storage { ... },
//			Kind:    "process",
//		})
//	}
package runnertest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/runner"
)

// Config is what the suite needs from a runner's tests.
type Config struct {
	// New returns a runner keeping its state in dir. The suite calls it
	// twice with one dir to play an agent restart.
	New func(t *testing.T, dir string) runner.Runner
	// Program returns the storage of a program that runs the /bin/sh
	// script (its arguments, as the runner passes them, are $1...). The
	// script may use files under the test's temporary directories.
	Program func(t *testing.T, script string) api.Storage
	// Missing returns the storage of a program that does not exist.
	Missing func(t *testing.T) api.Storage
	// Kind is the runner's kind, as its Saved records name it.
	Kind string
	// SkipRecover skips the Recover tests, for a runner that cannot
	// recover programs on this machine; say why.
	SkipRecover string
	// WantAPIURL, when set, returns the REEVE_API_URL a program should see
	// for the spec's APIURL, for a runner that rewrites it (the Docker
	// runner rewrites a loopback address); nil means unchanged.
	WantAPIURL func(specURL string) string
}

// timeout bounds every wait of the suite: a broken runner fails the test
// instead of hanging it.
const timeout = 30 * time.Second

// Run runs the suite.
func Run(t *testing.T, cfg Config) {
	t.Run("EnvAndOutput", func(t *testing.T) {
		t.Parallel()
		r := cfg.New(t, t.TempDir())
		out := NewOutput()
		spec := newSpec(cfg.Program(t, `
echo "arg=$1"
echo "url=$REEVE_API_URL"
echo "token=$REEVE_API_TOKEN"
echo "run=$REEVE_FLOW_RUN_ID"
echo "custom=$CUSTOM"
echo "to stderr" >&2
printf 'no line break'
`), out)
		spec.Env = map[string]string{"CUSTOM": "a value", runner.EnvAPIToken: "not the contract's"}
		h := Start(t, r, spec)
		exit := Wait(t, h)
		if !exit.Success() {
			t.Fatalf("exit = %+v (%s), want status 0\noutput:\n%s", exit, exit, out)
		}
		wantURL := spec.APIURL
		if cfg.WantAPIURL != nil {
			wantURL = cfg.WantAPIURL(spec.APIURL)
		}
		for _, want := range []runner.Line{
			{Stream: runner.Stdout, Text: "arg=" + runner.Command},
			{Stream: runner.Stdout, Text: "url=" + wantURL},
			{Stream: runner.Stdout, Text: "token=" + spec.APIToken},
			{Stream: runner.Stdout, Text: "run=" + spec.FlowRunID},
			{Stream: runner.Stdout, Text: "custom=a value"},
			{Stream: runner.Stderr, Text: "to stderr"},
			{Stream: runner.Stdout, Text: "no line break"},
		} {
			if !out.Has(want.Stream, want.Text) {
				t.Errorf("no %s line %q in the output:\n%s", want.Stream, want.Text, out)
			}
		}
		if h.ID() == "" {
			t.Error("the handle's ID is empty")
		}
	})

	t.Run("ExitStatus", func(t *testing.T) {
		t.Parallel()
		r := cfg.New(t, t.TempDir())
		h := Start(t, r, newSpec(cfg.Program(t, "echo bye >&2\nexit 3"), nil))
		exit := Wait(t, h)
		if exit.Code != 3 || exit.Success() || exit.StartErr != nil || exit.Signal != "" {
			t.Fatalf("exit = %+v, want status 3", exit)
		}
		if got, want := exit.String(), "exited with status 3"; got != want {
			t.Errorf("exit.String() = %q, want %q", got, want)
		}
	})

	t.Run("MissingProgram", func(t *testing.T) {
		t.Parallel()
		r := cfg.New(t, t.TempDir())
		storage := cfg.Missing(t)
		h, err := r.Start(t.Context(), newSpec(storage, nil))
		if err == nil {
			exit := Wait(t, h)
			if exit.StartErr == nil {
				t.Fatalf("a missing program started: exit %+v", exit)
			}
			err = exit.StartErr
		}
		where := storage.Path + storage.Image
		if !strings.Contains(err.Error(), where) {
			t.Errorf("the error %q does not name the program %q", err, where)
		}
	})

	t.Run("StopGraceful", func(t *testing.T) {
		t.Parallel()
		r := cfg.New(t, t.TempDir())
		out := NewOutput()
		h := Start(t, r, newSpec(cfg.Program(t, `
trap 'echo got TERM; exit 7' TERM
echo ready
while :; do sleep 0.05; done
`), out))
		out.WaitFor(t, runner.Stdout, "ready")
		if err := h.Stop(t.Context(), timeout); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		exit := Wait(t, h)
		if exit.Code != 7 {
			t.Fatalf("exit = %+v, want status 7 from the TERM trap\noutput:\n%s", exit, out)
		}
		if !out.Has(runner.Stdout, "got TERM") {
			t.Errorf("no line \"got TERM\" in the output:\n%s", out)
		}
		if err := h.Stop(t.Context(), time.Second); err != nil {
			t.Errorf("Stop of a program that exited: %v", err)
		}
	})

	t.Run("StopKills", func(t *testing.T) {
		t.Parallel()
		r := cfg.New(t, t.TempDir())
		out := NewOutput()
		h := Start(t, r, newSpec(cfg.Program(t, `
trap '' TERM
echo ready
while :; do sleep 0.05; done
`), out))
		out.WaitFor(t, runner.Stdout, "ready")
		if err := h.Stop(t.Context(), 50*time.Millisecond); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		exit := Wait(t, h)
		if exit.Signal == "" || exit.Success() {
			t.Fatalf("exit = %+v, want killed by a signal", exit)
		}
	})

	t.Run("Recover", func(t *testing.T) {
		t.Parallel()
		if cfg.SkipRecover != "" {
			t.Skip(cfg.SkipRecover)
		}
		dir := t.TempDir()
		release := filepath.Join(t.TempDir(), "release")
		out := NewOutput()
		spec := newSpec(cfg.Program(t, `
echo before
while [ ! -e "$RELEASE" ]; do sleep 0.02; done
echo after
`), out)
		spec.Env = map[string]string{"RELEASE": release}
		h := Start(t, cfg.New(t, dir), spec)
		out.WaitFor(t, runner.Stdout, "before")

		// The agent restarts: a new runner on the same directory finds the
		// program from its saved record, which went through JSON.
		data, err := json.Marshal(h.Saved())
		if err != nil {
			t.Fatal(err)
		}
		var saved runner.Saved
		if err := json.Unmarshal(data, &saved); err != nil {
			t.Fatal(err)
		}
		if saved.Runner != cfg.Kind {
			t.Errorf("saved record of runner %q, want %q", saved.Runner, cfg.Kind)
		}
		r2 := cfg.New(t, dir)
		out2 := NewOutput()
		h2, err := r2.Recover(t.Context(), saved, out2.Add)
		if err != nil {
			t.Fatalf("Recover of a running program: %v", err)
		}
		if h2.ID() != h.ID() {
			t.Errorf("recovered handle ID %q, want %q", h2.ID(), h.ID())
		}
		if err := os.WriteFile(release, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		exit2 := Wait(t, h2)
		if !exit2.Success() && !exit2.Unknown {
			t.Errorf("recovered exit = %+v, want status 0 or unknown", exit2)
		}
		if exit := Wait(t, h); !exit.Success() {
			t.Errorf("exit = %+v, want status 0", exit)
		}
		if out2.Has(runner.Stdout, "before") {
			t.Errorf("the recovered handle replayed output written before it:\n%s", out2)
		}

		// Once it exited, its record finds nothing.
		if _, err := cfg.New(t, dir).Recover(t.Context(), saved, nil); !errors.Is(err, runner.ErrGone) {
			t.Errorf("Recover of an exited program: %v, want ErrGone", err)
		}
	})

	t.Run("RecoverBadRecord", func(t *testing.T) {
		t.Parallel()
		r := cfg.New(t, t.TempDir())
		for _, s := range []runner.Saved{
			{},
			{Runner: "no such runner", ID: "x", Data: json.RawMessage(`{}`)},
			{Runner: cfg.Kind, ID: "x", Data: json.RawMessage(`{}`)},
			{Runner: cfg.Kind, ID: "x", Data: json.RawMessage(`"not an object"`)},
		} {
			if _, err := r.Recover(t.Context(), s, nil); !errors.Is(err, runner.ErrGone) {
				t.Errorf("Recover(%+v) = %v, want ErrGone", s, err)
			}
		}
	})
}

// newSpec returns a spec of the program with the contract's values.
func newSpec(storage api.Storage, out *Output) runner.Spec {
	s := runner.Spec{
		FlowRunID: "run-" + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", ""),
		Attempt:   1,
		Storage:   storage,
		APIURL:    "http://127.0.0.1:1/reeve",
		APIToken:  "reeve_run_token_for_tests",
	}
	if out != nil {
		s.Output = out.Add
	}
	return s
}

// Start starts spec with r, failing the test if it does not start, and
// stops the program (and waits for it) when the test ends.
func Start(t *testing.T, r runner.Runner, spec runner.Spec) runner.Handle {
	t.Helper()
	h, err := r.Start(t.Context(), spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		// Never leave a program behind.
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_ = h.Stop(ctx, 0)
		_, _ = h.Wait(ctx)
	})
	return h
}

// Wait waits for the program of h to exit, failing the test after the
// suite's timeout.
func Wait(t *testing.T, h runner.Handle) runner.Exit {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	exit, err := h.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v (the program did not exit within %v)", err, timeout)
	}
	return exit
}

// Output collects a program's lines (and a runner's notes, as lines of
// the stream "note") for tests; it is safe for concurrent use.
type Output struct {
	mu      sync.Mutex
	lines   []runner.Line
	changed chan struct{} // closed and replaced on every line
}

// NewOutput returns an empty Output.
func NewOutput() *Output { return &Output{changed: make(chan struct{})} }

// Add records a line; it is a runner.Spec's Output.
func (o *Output) Add(l runner.Line) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lines = append(o.lines, l)
	close(o.changed)
	o.changed = make(chan struct{})
}

// Note records a runner's note; it is a runner.Spec's Note.
func (o *Output) Note(msg string) { o.Add(runner.Line{Stream: "note", Text: msg}) }

// Has reports whether a line of stream is text.
func (o *Output) Has(stream runner.Stream, text string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.ContainsFunc(o.lines, func(l runner.Line) bool { return l.Stream == stream && l.Text == text })
}

// Contains reports whether a line of any stream contains sub.
func (o *Output) Contains(sub string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.ContainsFunc(o.lines, func(l runner.Line) bool { return strings.Contains(l.Text, sub) })
}

// WaitFor waits for a line of stream that is text, failing the test after
// the suite's timeout.
func (o *Output) WaitFor(t *testing.T, stream runner.Stream, text string) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		changed := o.changed
		o.mu.Unlock()
		if o.Has(stream, text) {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %s line %q within %v; output:\n%s", stream, text, timeout, o)
		}
	}
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var b strings.Builder
	for _, l := range o.lines {
		b.WriteString(string(l.Stream) + ": " + l.Text + "\n")
	}
	return b.String()
}
