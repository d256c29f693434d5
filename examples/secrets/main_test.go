package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/testenv"
)

const (
	token  = "tok-5f2b9c81e4"
	apiURL = "https://api.example.com"
)

// unsetenv unsets an environment variable for the test.
func unsetenv(t *testing.T, name string) {
	t.Setenv(name, "") // restores the old value when the test ends
	os.Unsetenv(name)
}

// localEnv gives the test the environment of a fresh shell that sets
// API_URL (when url is not "") and nothing else this flow reads.
func localEnv(t *testing.T, url string) {
	for _, name := range []string{"REEVE_SECRET_API_TOKEN", "API_URL", "REGION"} {
		unsetenv(t, name)
	}
	if url != "" {
		t.Setenv("API_URL", url)
	}
}

func writeSecrets(t *testing.T, content string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func taskRun(t *testing.T, run *reeve.FlowRun, key string) reeve.TaskRun {
	t.Helper()
	tr, ok := run.TaskRun(key)
	if !ok {
		t.Fatalf("flow run has no task run %s", key)
	}
	return tr
}

// everything returns every text of a run that a user or a server sees:
// state messages, kept log records and the result, as JSON.
func everything(t *testing.T, run *reeve.FlowRun) string {
	t.Helper()
	var b strings.Builder
	for _, s := range run.History() {
		b.WriteString(s.Message + "\n")
	}
	for _, tr := range run.TaskRuns() {
		for _, s := range tr.History {
			b.WriteString(s.Message + "\n")
		}
		for _, r := range tr.Logs {
			b.WriteString(r.Message)
			r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
			b.WriteString("\n")
		}
		if tr.State.Result != nil {
			data, err := json.Marshal(tr.State.Result.Value)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(data)
		}
	}
	return b.String()
}

// Not parallel: these set the environment.

func TestSecretFromAFileIsUsedAndRedacted(t *testing.T) {
	localEnv(t, apiURL)
	var logs bytes.Buffer
	run, err := Flow().Run(t.Context(), reeve.RunOptions{
		Secrets:    reeve.LocalSecrets(writeSecrets(t, "# local secrets\nAPI_TOKEN="+token+"\n")),
		LogHandler: slog.NewTextHandler(&logs, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	if run.State().Kind != reeve.Success {
		t.Fatalf("flow run %s", run.State())
	}
	call := taskRun(t, run, "secrets.call")
	want := Response{URL: apiURL, Region: "local", Authorized: true}
	if got, _ := call.State.Result.Value.(Response); got != want {
		t.Errorf("result %+v, want %+v", call.State.Result.Value, want)
	}
	if len(call.Logs) != 1 || call.Logs[0].Message != "calling "+apiURL+" with Authorization: Bearer [REDACTED]" {
		t.Errorf("kept log records: %v", call.Logs)
	}
	if !strings.Contains(logs.String(), "Bearer [REDACTED]") {
		t.Errorf("log output:\n%s", logs.String())
	}
	for what, text := range map[string]string{"log output": logs.String(), "run": everything(t, run)} {
		if strings.Contains(text, token) {
			t.Errorf("the token leaked into the %s:\n%s", what, text)
		}
	}
}

func TestSecretFromTheEnvironment(t *testing.T) {
	localEnv(t, apiURL)
	t.Setenv("REEVE_SECRET_API_TOKEN", token)
	t.Setenv("REGION", "eu-west-1")
	run, err := Flow().Run(t.Context(), reeve.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	call := taskRun(t, run, "secrets.call")
	if got, _ := call.State.Result.Value.(Response); call.State.Kind != reeve.Success || got.Region != "eu-west-1" {
		t.Errorf("call: %s with %+v", call.State, call.State.Result)
	}
	if text := everything(t, run); strings.Contains(text, token) {
		t.Errorf("the token leaked:\n%s", text)
	}
}

func TestMissingSecretOrEnvFailsTheTask(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		secrets string // secrets file content; "" for no file
		want    []string
	}{
		{"no secret", apiURL, "", []string{`secret "API_TOKEN" is not set`, "REEVE_SECRET_API_TOKEN", "--secrets-file"}},
		{"secrets file without it", apiURL, "OTHER=x\n", []string{`secret "API_TOKEN" is not set`, "REEVE_SECRET_API_TOKEN", "secrets.env"}},
		{"no API_URL", "", "API_TOKEN=" + token + "\n", []string{"API_URL is not set"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			localEnv(t, tc.url)
			file := ""
			if tc.secrets != "" {
				file = writeSecrets(t, tc.secrets)
			}
			run, err := Flow().Run(t.Context(), reeve.RunOptions{Secrets: reeve.LocalSecrets(file)})
			if err != nil {
				t.Fatal(err)
			}
			s := taskRun(t, run, "secrets.call").State
			if s.Kind != reeve.Failed || run.State().Kind != reeve.Failed {
				t.Errorf("call %s, flow run %s; want both Failed", s, run.State())
			}
			for _, w := range tc.want {
				if !strings.Contains(s.Message, w) {
					t.Errorf("message %q does not contain %q", s.Message, w)
				}
			}
			if strings.Contains(everything(t, run), token) {
				t.Error("the token leaked")
			}
		})
	}
}

func TestSpecDeclaresWhatTheFlowNeeds(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := Flow().Save(&b); err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Secrets []struct {
			Name string `json:"name"`
		} `json:"secrets"`
		Env []struct {
			Name      string `json:"name"`
			FromAgent bool   `json:"from_agent"`
		} `json:"env"`
	}
	if err := json.Unmarshal(b.Bytes(), &spec); err != nil {
		t.Fatal(err)
	}
	if len(spec.Secrets) != 1 || spec.Secrets[0].Name != "API_TOKEN" {
		t.Errorf("secrets: %+v", spec.Secrets)
	}
	if len(spec.Env) != 2 || spec.Env[0].Name != "API_URL" || spec.Env[0].FromAgent || spec.Env[1].Name != "REGION" || !spec.Env[1].FromAgent {
		t.Errorf("env: %+v\n%s", spec.Env, b.String())
	}
}

// cliResult is what one run of the example's program did.
type cliResult struct{ testenv.ProgramResult }

func buildProgram(t *testing.T) string { return testenv.BuildProgram(t, ".", "secrets") }

// runProgram runs the program in this process's environment without
// anything the flow reads, plus env.
func runProgram(t *testing.T, bin string, env []string, args ...string) cliResult {
	t.Helper()
	var all []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != "API_URL" && name != "REGION" && !strings.HasPrefix(name, "REEVE_SECRET_") {
			all = append(all, kv)
		}
	}
	return cliResult{testenv.RunProgram(t, bin, append(all, env...), args...)}
}

// check is ProgramResult.Check, and the token never shows.
func (r cliResult) check(t *testing.T, code int, stdout, stderr []string) {
	t.Helper()
	r.Check(t, code, stdout, stderr)
	if strings.Contains(r.Stdout+r.Stderr, token) {
		t.Errorf("the token leaked:\nstdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
	}
}

// TestProgram runs the example's command line the way its doc comment does.
func TestProgram(t *testing.T) {
	t.Parallel()
	bin := buildProgram(t)
	withToken := []string{"REEVE_SECRET_API_TOKEN=" + token, "API_URL=" + apiURL}
	const header = `(?m)^TASK\s+STATE\s+ATTEMPTS\s+DURATION\s+MESSAGE$`

	t.Run("run with the token in the environment", func(t *testing.T) {
		t.Parallel()
		runProgram(t, bin, withToken, "run", "secrets").check(t, 0,
			[]string{header, `(?m)^secrets\.call\s+Success\s+1\s`, `(?m)^flow run [0-9a-f-]{36} of secrets: Success in `},
			[]string{`(?m)INFO  secrets\.call: calling https://api\.example\.com with Authorization: Bearer \[REDACTED\] region=local$`})
	})
	t.Run("run as JSON", func(t *testing.T) {
		t.Parallel()
		r := runProgram(t, bin, withToken, "run", "secrets", "--json")
		r.check(t, 0, []string{`"kind": "Success"`, `Bearer \[REDACTED\]`}, nil)
	})
	t.Run("run with a secrets file", func(t *testing.T) {
		t.Parallel()
		file := writeSecrets(t, "API_TOKEN="+token+"\n")
		runProgram(t, bin, []string{"API_URL=" + apiURL}, "run", "secrets", "--secrets-file", file).check(t, 0,
			[]string{`(?m)^flow run \S+ of secrets: Success in `}, []string{`Bearer \[REDACTED\]`})
	})
	t.Run("run without the token", func(t *testing.T) {
		t.Parallel()
		runProgram(t, bin, []string{"API_URL=" + apiURL}, "run", "secrets").check(t, 1,
			[]string{`(?m)^secrets\.call\s+Failed\s+1\s+\S+\s+secret "API_TOKEN" is not set`, `(?m)^flow run \S+ of secrets: Failed in `},
			[]string{`(?m)Failed\s+secrets\.call: secret "API_TOKEN" is not set: set the environment variable REEVE_SECRET_API_TOKEN`})
	})
	t.Run("unknown parameter", func(t *testing.T) {
		t.Parallel()
		runProgram(t, bin, withToken, "run", "secrets", "--param", "x=1").check(t, 2,
			nil, []string{`unknown parameter "x" \(it has no parameters\)`})
	})
	t.Run("healthcheck passes", func(t *testing.T) {
		t.Parallel()
		runProgram(t, bin, withToken, "healthcheck").check(t, 0, []string{
			`(?m)^ok   secrets: env API_URL is set$`,
			`(?m)^ok   secrets: env REGION is provided by the agent at run time$`,
			`(?m)^ok   secrets: secret API_TOKEN resolves$`,
			`(?m)^all 5 checks passed$`}, nil)
	})
	t.Run("healthcheck fails", func(t *testing.T) {
		t.Parallel()
		runProgram(t, bin, nil, "healthcheck").check(t, 1, []string{
			`(?m)^FAIL secrets: env API_URL is not set; `,
			`(?m)^FAIL secrets: secret "API_TOKEN" is not set: set the environment variable REEVE_SECRET_API_TOKEN, or put it in a secrets file and pass --secrets-file$`,
			`(?m)^2 of 5 checks failed$`}, nil)
	})
	t.Run("healthcheck with a secrets file", func(t *testing.T) {
		t.Parallel()
		file := writeSecrets(t, "API_TOKEN="+token+"\n")
		runProgram(t, bin, []string{"API_URL=" + apiURL}, "healthcheck", "--secrets-file", file).check(t, 0,
			[]string{`(?m)^all 5 checks passed$`}, nil)
	})
}
