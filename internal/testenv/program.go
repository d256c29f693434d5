package testenv

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

// BuildProgram builds the Go main package in dir into a temporary binary
// named name and returns its path. It skips the test when there is no go
// tool (CI always has one: it builds the tests).
func BuildProgram(t testing.TB, dir, name string) string {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		t.Skipf("building a program needs the go tool, not found at %s", goTool)
	}
	bin := filepath.Join(t.TempDir(), name)
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.CommandContext(t.Context(), goTool, "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// ProgramResult is what one run of a program did.
type ProgramResult struct {
	Code           int
	Stdout, Stderr string
}

// RunProgram runs bin with args; env nil inherits this process's
// environment, otherwise env is the whole environment.
func RunProgram(t testing.TB, bin string, env []string, args ...string) ProgramResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	return ProgramResult{code, stdout.String(), stderr.String()}
}

// Check asserts the exit code and that stdout and stderr match every
// regular expression given for them.
func (r ProgramResult) Check(t testing.TB, code int, stdout, stderr []string) {
	t.Helper()
	if r.Code != code {
		t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.Code, code, r.Stdout, r.Stderr)
	}
	for _, p := range stdout {
		if !regexp.MustCompile(p).MatchString(r.Stdout) {
			t.Errorf("stdout does not match %s:\n%s", p, r.Stdout)
		}
	}
	for _, p := range stderr {
		if !regexp.MustCompile(p).MatchString(r.Stderr) {
			t.Errorf("stderr does not match %s:\n%s", p, r.Stderr)
		}
	}
}
