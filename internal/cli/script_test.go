package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"go.uber.org/goleak"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/cli"
)

func TestMain(m *testing.M) {
	testscript.Main(leakCheck{m}, map[string]func(){
		"reeve": func() {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := cli.New(cli.Options{}).Run(ctx, os.Args[1:])
			stop()
			os.Exit(code)
		},
	})
}

// leakCheck fails the tests if they leave goroutines behind (a server
// that did not stop, a stream that was not closed).
type leakCheck struct{ m *testing.M }

func (l leakCheck) Run() int {
	code := l.m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "leaked goroutines:", err)
			return 1
		}
	}
	return code
}

// TestScripts runs the CLI scripts in testdata/script. Their custom
// commands:
//
//	startserver [FLAGS...]   start `reeve server` in this process on 127.0.0.1:0 (same code
//	                         path as the command) and set REEVE_SERVER (and SERVER_ADDR to
//	                         its host:port); set REEVE_TOKEN to
//	                         REEVE_ADMIN_TOKEN, or to the admin token the server printed.
//	                         Its stdout and stderr go to $WORK/server.out and $WORK/server.err.
//	stopserver               stop it (SIGINT-like: cancel its context) and check it exited 0
//	applogs RUNID MSG...     append one INFO log line per MSG to a flow run, with REEVE_TOKEN
//	jsonfield [-set VAR] PATH [WANT]
//	                         read the last command's stdout as JSON and take the value at
//	                         PATH (dot-separated keys and indices; len is an array's length):
//	                         compare it with WANT (strings unquoted), and/or set $VAR to it
//	filemode FILE MODE       check a file's permission bits, e.g. 0600
//	exits CODE CMD ARGS...   run a command (like exec) and check its exit code
//	writeenv VAR FILE        write $VAR (without a line break) to FILE
//	addagent NAME [LABEL...] register an agent, with REEVE_TOKEN
//	waitruns N               wait (up to 30s) until there are at least N flow runs
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", filepath.Join(env.WorkDir, "home"))
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			env.Setenv("XDG_DATA_HOME", filepath.Join(env.WorkDir, ".data"))
			// A race-enabled reeve would sleep 1s when it exits; it still
			// reports races (and then exits 66, failing the script).
			env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			env.Values[serverKey{}] = &scriptServer{}
			env.Defer(func() {
				s := env.Values[serverKey{}].(*scriptServer)
				s.stop()
			})
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"startserver": cmdStartServer,
			"stopserver":  cmdStopServer,
			"applogs":     cmdAppLogs,
			"jsonfield":   cmdJSONField,
			"filemode":    cmdFileMode,
			"exits":       cmdExits,
			"writeenv":    cmdWriteEnv,
			"addagent":    cmdAddAgent,
			"waitruns":    cmdWaitRuns,
		},
		RequireExplicitExec: false,
	})
}

type serverKey struct{}

// scriptServer is the server a script started.
type scriptServer struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan int // the exit code
	files  []*os.File
}

// stop stops the server, if running, and returns its exit code.
func (s *scriptServer) stop() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel == nil {
		return 0, false
	}
	s.cancel()
	code := <-s.done
	for _, f := range s.files {
		f.Close()
	}
	s.cancel, s.done, s.files = nil, nil, nil
	return code, true
}

// syncFile is a file that the server writes while the script reads it.
type syncFile struct {
	mu sync.Mutex
	f  *os.File
}

func (w *syncFile) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Write(p)
}

func cmdStartServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! startserver")
	}
	s := ts.Value(serverKey{}).(*scriptServer)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		ts.Fatalf("a server is running already: stopserver first")
	}
	open := func(name string) *syncFile {
		f, err := os.Create(ts.MkAbs(name))
		ts.Check(err)
		s.files = append(s.files, f)
		return &syncFile{f: f}
	}
	stdout, stderr := open("server.out"), open("server.err")
	addr := make(chan string, 1)
	c := cli.New(cli.Options{
		Stdin:  strings.NewReader(""),
		Stdout: stdout,
		Stderr: stderr,
		LookupEnv: func(name string) (string, bool) {
			v := ts.Getenv(name)
			return v, v != ""
		},
		Terminal:  func() bool { return false },
		Listening: func(a string) { addr <- a },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- c.Run(ctx, append([]string{"server", "--listen", "127.0.0.1:0"}, args...))
	}()
	select {
	case a := <-addr:
		s.cancel, s.done = cancel, done
		ts.Setenv("REEVE_SERVER", "http://"+a)
		ts.Setenv("SERVER_ADDR", a)
	case code := <-done:
		cancel()
		for _, f := range s.files {
			f.Close()
		}
		s.files = nil
		errText, _ := os.ReadFile(ts.MkAbs("server.err"))
		ts.Fatalf("reeve server exited with code %d before listening:\n%s", code, errText)
	case <-time.After(30 * time.Second):
		s.cancel, s.done = cancel, done // stopped at the script's end
		ts.Fatalf("reeve server did not listen within 30s")
	}
	if tok := ts.Getenv("REEVE_ADMIN_TOKEN"); tok != "" {
		ts.Setenv("REEVE_TOKEN", tok)
		return
	}
	// The box with the first admin token is written before the server
	// listens.
	errText, err := os.ReadFile(ts.MkAbs("server.err"))
	ts.Check(err)
	if m := regexp.MustCompile(`(?m)^\s+(reeve_\S+)\s*$`).FindSubmatch(errText); m != nil {
		ts.Setenv("REEVE_TOKEN", string(m[1]))
	}
}

func cmdStopServer(ts *testscript.TestScript, neg bool, args []string) {
	s := ts.Value(serverKey{}).(*scriptServer)
	code, ok := s.stop()
	if !ok {
		ts.Fatalf("no server is running")
	}
	if (code != 0) != neg {
		ts.Fatalf("reeve server exited with code %d", code)
	}
}

func cmdAppLogs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: applogs RUNID MSG...")
	}
	cl, err := client.New(ts.Getenv("REEVE_SERVER"), ts.Getenv("REEVE_TOKEN"))
	ts.Check(err)
	var lines []api.LogLine
	for _, msg := range args[1:] {
		lines = append(lines, api.LogLine{Time: time.Now(), Level: "INFO", Message: msg, Attrs: json.RawMessage(`{"task":"greet"}`)})
	}
	ts.Check(cl.AppendLogs(context.Background(), args[0], lines))
}

func cmdJSONField(ts *testscript.TestScript, neg bool, args []string) {
	setVar := ""
	if len(args) >= 2 && args[0] == "-set" {
		setVar, args = args[1], args[2:]
	}
	if len(args) < 1 || len(args) > 2 || (setVar == "" && len(args) == 1) {
		ts.Fatalf("usage: jsonfield [-set VAR] PATH [WANT]")
	}
	var v any
	if err := json.Unmarshal([]byte(ts.ReadFile("stdout")), &v); err != nil {
		ts.Fatalf("stdout is not JSON: %v", err)
	}
	for _, key := range strings.Split(args[0], ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[key]; !ok {
				if neg {
					return
				}
				ts.Fatalf("%s: no key %q", args[0], key)
			}
		case []any:
			if key == "len" {
				v = float64(len(x))
				continue
			}
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(x) {
				ts.Fatalf("%s: %q is not an index of an array of %d", args[0], key, len(x))
			}
			v = x[i]
		default:
			ts.Fatalf("%s: %q: not an object or array", args[0], key)
		}
	}
	got, ok := v.(string)
	if !ok {
		b, _ := json.Marshal(v)
		got = string(b)
	}
	if setVar != "" {
		ts.Setenv(setVar, got)
	}
	if len(args) == 2 {
		if (got == args[1]) == neg {
			ts.Fatalf("%s is %s; want %s%s", args[0], got, map[bool]string{true: "not "}[neg], args[1])
		}
	}
}

func cmdFileMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: filemode FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fi.Mode().Perm(); (got == fs.FileMode(want)) == neg {
		ts.Fatalf("%s has mode %#o; want %s%#o", args[0], got, map[bool]string{true: "not "}[neg], want)
	}
}

func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE CMD ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with code %d; want %d", strings.Join(args[1:], " "), got, want)
	}
}

func cmdWriteEnv(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: writeenv VAR FILE")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(ts.Getenv(args[0])), 0o600))
}

func cmdAddAgent(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: addagent NAME [LABEL...]")
	}
	cl, err := client.New(ts.Getenv("REEVE_SERVER"), ts.Getenv("REEVE_TOKEN"))
	ts.Check(err)
	_, err = cl.RegisterAgent(context.Background(), api.RegisterAgent{Name: args[0], Labels: args[1:]})
	ts.Check(err)
}

func cmdWaitRuns(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitruns N")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	cl, err := client.New(ts.Getenv("REEVE_SERVER"), ts.Getenv("REEVE_TOKEN"))
	ts.Check(err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		page, err := cl.FlowRuns(context.Background(), client.FlowRunFilter{Limit: want})
		ts.Check(err)
		if len(page.FlowRuns) >= want {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%d flow runs after 30s; want %d", len(page.FlowRuns), want)
		}
		time.Sleep(20 * time.Millisecond) // polling a real server: no event to wait on
	}
}
