// Package runner is the seam an agent launches flow programs through: start
// a flow run's program, watch it until it exits, stop it, and find it again
// after the agent restarts.
//
// A [Runner] starts a program from a [Spec] and returns a [Handle]. The
// agent persists the handle's [Saved] record (in its data directory) so that
// an agent that restarts can [Runner.Recover] the handle of a program that
// is still running and keep watching it, instead of declaring its run lost.
//
// Implementations live in sub-packages named for their technology:
// runner/process (a child process on the agent's machine), and later
// runner/docker and runner/kube. Each runs the conformance suite in
// runner/runnertest.
//
// The environment contract: the program is started as `PROGRAM execute`
// with REEVE_API_URL, REEVE_API_TOKEN (a token scoped to the run's attempt)
// and REEVE_FLOW_RUN_ID, on top of the run configuration's variables (which
// cannot override these three).
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/reevehq/reeve/api"
)

// The variables of the environment contract.
const (
	EnvAPIURL    = "REEVE_API_URL"
	EnvAPIToken  = "REEVE_API_TOKEN"
	EnvFlowRunID = "REEVE_FLOW_RUN_ID"
)

// Command is the flow program's subcommand that runs one flow run.
const Command = "execute"

// ErrGone is what Recover returns for a program that no longer runs (or
// whose record no longer matches a running program).
var ErrGone = errors.New("the flow program is no longer running")

// ErrUnsupported is wrapped by the error Start returns for a spec the
// runner cannot run at all, such as a storage kind of another agent.
var ErrUnsupported = errors.New("unsupported by this runner")

// ErrUnavailable is wrapped by the error Start returns when what the
// runner runs programs with is down (the Docker engine cannot be reached):
// the run fails with the reason, and the agent stops claiming until the
// runner's Check (see Checker) passes again.
var ErrUnavailable = errors.New("the runner's engine is unavailable")

// Checker is implemented by runners that depend on something that can go
// away (the Docker engine). Check returns nil when the runner can start
// programs, else an error that wraps ErrUnavailable and says why.
type Checker interface {
	Check(ctx context.Context) error
}

// Runner starts flow programs and finds them again after a restart.
// Implementations are safe for concurrent use.
type Runner interface {
	// Start starts the program of spec and returns its handle. ctx bounds
	// the start only (an image pull included; the agent cancels it after
	// its start timeout or when it stops): the program outlives it. An error
	// means the program did not start: the error's message is written for
	// the user (it becomes the run's Failed state), e.g. "the flow program
	// /opt/flows/etl could not start: permission denied: it is not
	// executable (chmod +x it)". A spec the runner cannot run wraps
	// ErrUnsupported. A runner that starts programs asynchronously may
	// instead return a handle whose Exit has StartErr set.
	Start(ctx context.Context, spec Spec) (Handle, error)
	// Recover returns the handle of a program that a handle's Saved record
	// describes, if it still runs; out receives its output from now on
	// (output written while nobody watched is not replayed). A program that
	// has exited, or a record of another runner, is ErrGone.
	Recover(ctx context.Context, saved Saved, out func(Line)) (Handle, error)
}

// Handle is a started program.
type Handle interface {
	// ID names the program for people, e.g. "pid 4242".
	ID() string
	// Saved is the record to persist so that Recover can find the
	// program after the agent restarts.
	Saved() Saved
	// Wait waits until the program has exited and its output has all been
	// given to the spec's Output, and says how it exited. It returns early
	// with the context's error only.
	Wait(ctx context.Context) (Exit, error)
	// Stop asks the program to stop (SIGTERM or the runner's equivalent),
	// then kills it if it still runs after grace. It returns once the
	// signals are sent, not when the program has exited (use Wait). A
	// program that already exited is not an error.
	Stop(ctx context.Context, grace time.Duration) error
}

// Spec is what to run.
type Spec struct {
	FlowRunID string
	Attempt   int
	// Storage says where the program is (local: an absolute path on the
	// agent's machine; docker: an image).
	Storage api.Storage
	// Env is the run configuration's environment.
	Env map[string]string
	// CPU and Memory are the run configuration's limits, as written there
	// ("500m" or "2" cores; "512Mi"), or "" for none. Runners that can
	// enforce them do (the Docker runner); the process runner does not.
	CPU, Memory string
	// Platform is the platform the run configuration asks for, like
	// "linux/arm64", or "" for the agent's own. The Docker runner pulls
	// and runs the image's variant for it.
	Platform string
	// APIURL and APIToken are the server URL the program calls and the
	// run's token (from the claim).
	APIURL   string
	APIToken string
	// Output receives the program's stdout and stderr, line by line, from
	// the runner's goroutines (one at a time). Nil discards the output.
	Output func(Line)
	// Note, when set, receives what the runner has to tell the run's
	// reader (it goes to the run's log at INFO, from the agent), e.g. that
	// it rewrote a loopback API address so a container can reach it.
	Note func(msg string)
}

// Validate checks the spec, naming the offending field.
func (s Spec) Validate() error {
	switch {
	case s.FlowRunID == "":
		return errors.New("runner spec: FlowRunID is empty")
	case s.Attempt < 0:
		return fmt.Errorf("runner spec: Attempt %d is negative", s.Attempt)
	case s.APIURL == "":
		return errors.New("runner spec: APIURL is empty")
	case s.APIToken == "":
		return errors.New("runner spec: APIToken is empty")
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("runner spec: environment variable name %q is not valid", k)
		}
	}
	return nil
}

// Environ returns the program's environment on top of base (NAME=value
// entries): base, then the run configuration's variables (sorted by name),
// then the contract's variables, which win.
func (s Spec) Environ(base []string) []string {
	out := make([]string, 0, len(base)+len(s.Env)+3)
	contract := map[string]bool{EnvAPIURL: true, EnvAPIToken: true, EnvFlowRunID: true}
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := s.Env[name]; !contract[name] && !ok {
			out = append(out, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		if !contract[k] {
			out = append(out, k+"="+s.Env[k])
		}
	}
	return append(out,
		EnvAPIURL+"="+s.APIURL,
		EnvAPIToken+"="+s.APIToken,
		EnvFlowRunID+"="+s.FlowRunID,
	)
}

// Stream names an output stream of a program.
type Stream string

// The output streams.
const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// Line is one line a program wrote, without its line break.
type Line struct {
	Stream Stream
	Text   string
	Time   time.Time // when the runner read it
}

// Exit says how a program ended.
type Exit struct {
	// Code is the exit status, or -1 when the program was killed by a
	// signal, did not start, or ended unseen.
	Code int
	// Signal is the signal that killed the program, e.g. "SIGKILL
	// (killed)", or "".
	Signal string
	// StartErr is set when the program never started; its message says
	// why and what to do.
	StartErr error
	// Unknown is set when the runner saw the program end but not how
	// (a recovered process that is not the runner's child).
	Unknown bool
	// Reason, when set, says why the program ended in words a user can
	// act on, to follow "the flow program ...", e.g. "was killed for
	// running out of memory: it used all of its 64 MiB limit (raise the
	// flow's memory with --memory)". It takes the place of the plain exit
	// status in String.
	Reason string
}

// Success reports whether the program exited with status 0.
func (e Exit) Success() bool {
	return e.StartErr == nil && !e.Unknown && e.Signal == "" && e.Code == 0
}

// String says how the program ended, to follow "the flow program ...":
// "exited with status 2", "was killed by signal SIGKILL (killed)", "could not start:
// ...", "ended (how is unknown: ...)".
func (e Exit) String() string {
	switch {
	case e.StartErr != nil:
		return "could not start: " + e.StartErr.Error()
	case e.Reason != "":
		return e.Reason
	case e.Unknown:
		return "ended (its exit status is unknown: the agent restarted while it ran)"
	case e.Signal != "":
		return "was killed by signal " + e.Signal
	}
	return fmt.Sprintf("exited with status %d", e.Code)
}

// Saved is the persistent record of a handle: enough for the runner that
// made it to find the program again. Data is the runner's own.
type Saved struct {
	Runner string          `json:"runner"` // the runner's kind, e.g. "process"
	ID     string          `json:"id"`     // the handle's ID
	Data   json.RawMessage `json:"data"`
}

// Finder is implemented by runners that can list the programs they started
// for their agent by themselves (the Docker runner, by container label), so
// that an agent that restarts without its records still finds them.
type Finder interface {
	// Find returns the programs of this runner's agent that still run,
	// and removes what is left of those that ended (exited containers).
	Find(ctx context.Context) ([]Found, error)
}

// Found is a running program a Finder found.
type Found struct {
	FlowRunID string
	Attempt   int
	// Token is the run token the program was started with, so that the
	// agent can ship its output to the run's log again.
	Token string
	// Program names the program for people, e.g. the image reference.
	Program string
	// Saved is the record Recover takes to watch the program again.
	Saved Saved
}
