//go:build unix

package process_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/runner"
	"github.com/reevehq/reeve/internal/runner/process"
	"github.com/reevehq/reeve/internal/runner/runnertest"
	"github.com/reevehq/reeve/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestConformance(t *testing.T) {
	t.Parallel()
	runnertest.Run(t, runnertest.Config{
		New:     newRunner,
		Program: script,
		Missing: func(t *testing.T) api.Storage {
			return api.Storage{Kind: "local", Path: filepath.Join(t.TempDir(), "no-such-program")}
		},
		Kind: process.Kind,
	})
}

func newRunner(t *testing.T, dir string) runner.Runner {
	r, err := process.New(process.Config{Dir: dir, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// script writes an executable /bin/sh script.
func script(t *testing.T, body string) api.Storage {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flowprog")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return api.Storage{Kind: "local", Path: path}
}

// TestStartFails checks the reasons a user reads when a program cannot
// start.
func TestStartFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("\x00\x01\x02 not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		storage api.Storage
		want    []string
	}{
		{"missing", api.Storage{Kind: "local", Path: filepath.Join(dir, "missing")}, []string{"missing could not start", "does not exist on this agent's machine"}},
		{"not executable", api.Storage{Kind: "local", Path: notExec}, []string{"not-executable could not start", "permission denied", "chmod +x " + notExec}},
		{"directory", api.Storage{Kind: "local", Path: dir}, []string{"is a directory"}},
		{"relative", api.Storage{Kind: "local", Path: "bin/flows"}, []string{"not absolute", "--path"}},
		{"no path", api.Storage{Kind: "local"}, []string{"no program path"}},
		{"not a program", api.Storage{Kind: "local", Path: garbage}, []string{"garbage could not start", "not a program this machine runs"}},
		{"docker", api.Storage{Kind: "docker", Image: "example.com/flows@sha256:abc"}, []string{"Docker image (example.com/flows@sha256:abc)", "Docker agent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRunner(t, t.TempDir())
			h, err := r.Start(t.Context(), runner.Spec{FlowRunID: "r1", Attempt: 1, Storage: tc.storage, APIURL: "http://x", APIToken: "t"})
			if err == nil {
				h.Stop(t.Context(), 0)
				h.Wait(t.Context())
				t.Fatalf("Start succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestEnvironment checks that a program gets the agent's environment
// without its REEVE_* variables (the agent's token must not leak), then
// the run configuration's, then the contract's. It sets variables of this
// process, so it does not run in parallel.
func TestEnvironment(t *testing.T) {
	t.Setenv("REEVE_TOKEN", "the agent's token")
	t.Setenv("REEVE_SERVER", "http://agent.example")
	t.Setenv("AGENT_HOST_VAR", "kept")
	t.Setenv("OVERRIDDEN", "by the agent")
	r, err := process.New(process.Config{Dir: t.TempDir(), PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	h, err := r.Start(t.Context(), runner.Spec{
		FlowRunID: "r1", Attempt: 1,
		Storage: script(t, "env | sort"),
		Env:     map[string]string{"OVERRIDDEN": "by the run config", "REEVE_FLOW_RUN_ID": "not the contract's"},
		APIURL:  "http://server.example", APIToken: "run-token",
		Output: func(l runner.Line) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, l.Text)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if exit, err := h.Wait(t.Context()); err != nil || !exit.Success() {
		t.Fatalf("Wait = %+v, %v", exit, err)
	}
	mu.Lock()
	defer mu.Unlock()
	env := strings.Join(lines, "\n")
	for _, want := range []string{"AGENT_HOST_VAR=kept", "OVERRIDDEN=by the run config", "REEVE_API_URL=http://server.example", "REEVE_API_TOKEN=run-token", "REEVE_FLOW_RUN_ID=r1"} {
		if !strings.Contains(env, want+"\n") && !strings.HasSuffix(env, want) {
			t.Errorf("the program's environment has no %s:\n%s", want, env)
		}
	}
	for _, leak := range []string{"REEVE_TOKEN=", "REEVE_SERVER=", "by the agent", "not the contract's"} {
		if strings.Contains(env, leak) {
			t.Errorf("the program's environment has %q:\n%s", leak, env)
		}
	}
}
