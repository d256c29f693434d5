//go:build unix

package process

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reevehq/reeve/internal/runner"
)

// Runner starts flow programs as child processes.
type Runner struct {
	dir  string
	env  []string
	poll time.Duration
}

var _ runner.Runner = (*Runner)(nil)

// New returns a runner with cfg, creating its directory.
func New(cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("process runner: create the output directory: %w", err)
	}
	r := &Runner{dir: cfg.Dir, env: cfg.Env, poll: cfg.PollInterval}
	if r.env == nil {
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "REEVE_") {
				r.env = append(r.env, kv)
			}
		}
	}
	if r.poll == 0 {
		r.poll = 100 * time.Millisecond
	}
	return r, nil
}

// saved is the runner's part of a runner.Saved record.
type saved struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"` // field 22 of /proc/PID/stat
	Dir       string `json:"dir"`        // the output files
}

// Start starts `PROGRAM execute` for the spec; see runner.Runner.
func (r *Runner) Start(ctx context.Context, spec runner.Spec) (runner.Handle, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	path := spec.Storage.Path
	if spec.Storage.Kind != "local" {
		what := fmt.Sprintf("its storage kind is %q", spec.Storage.Kind)
		if spec.Storage.Kind == "docker" {
			what = fmt.Sprintf("its flow program is a Docker image (%s)", spec.Storage.Image)
		}
		return nil, fmt.Errorf("%s, and a process agent runs only local programs (storage kind \"local\"): run the flow on a Docker agent whose labels cover the flow's, or register it with --path: %w", what, runner.ErrUnsupported)
	}
	if err := checkProgram(path); err != nil {
		return nil, err
	}
	dir := filepath.Join(r.dir, fmt.Sprintf("%s.%d", safeName(spec.FlowRunID), spec.Attempt))
	if err := os.RemoveAll(dir); err != nil { // a previous start of this attempt
		return nil, fmt.Errorf("the flow program %s could not start: clear its output directory: %w", path, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("the flow program %s could not start: create its output directory: %w", path, err)
	}
	var files [2]*os.File
	for i, s := range streams {
		f, err := os.OpenFile(filepath.Join(dir, string(s)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			closeAll(files[:])
			os.RemoveAll(dir)
			return nil, fmt.Errorf("the flow program %s could not start: create its output file: %w", path, err)
		}
		files[i] = f
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        []string{path, runner.Command},
		Env:         spec.Environ(r.env),
		Stdout:      files[0],
		Stderr:      files[1],
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	err := cmd.Start()
	closeAll(files[:]) // the child has its own copies
	if err != nil {
		os.RemoveAll(dir)
		return nil, startError(path, err)
	}
	h := &handle{pid: cmd.Process.Pid, dir: dir, out: spec.Output, poll: r.poll, exited: make(chan struct{}), drained: make(chan struct{})}
	h.startTime, _ = startTime(h.pid) // our unreaped child: its /proc entry is there
	go func() {
		err := cmd.Wait()
		h.exit = exitOf(cmd.ProcessState, err)
		close(h.exited)
	}()
	go h.tail(0, 0)
	return h, nil
}

// Recover finds a program a Saved record describes; see runner.Runner.
func (r *Runner) Recover(ctx context.Context, rec runner.Saved, out func(runner.Line)) (runner.Handle, error) {
	if rec.Runner != Kind {
		return nil, fmt.Errorf("a %q runner's record, not a process runner's: %w", rec.Runner, runner.ErrGone)
	}
	var s saved
	if err := json.Unmarshal(rec.Data, &s); err != nil {
		return nil, fmt.Errorf("read a process runner's record: %v: %w", err, runner.ErrGone)
	}
	// Only ever touch a directory of this runner's.
	ownDir := s.Dir != "" && filepath.Dir(filepath.Clean(s.Dir)) == filepath.Clean(r.dir)
	if s.PID <= 0 || s.StartTime == 0 || !alive(s.PID, s.StartTime) {
		if ownDir {
			os.RemoveAll(s.Dir)
		}
		return nil, fmt.Errorf("pid %d: %w", s.PID, runner.ErrGone)
	}
	h := &handle{pid: s.PID, startTime: s.StartTime, out: out, poll: r.poll, adopted: true, exited: make(chan struct{}), drained: make(chan struct{})}
	var offsets [2]int64
	if ownDir {
		h.dir = s.Dir
		for i, st := range streams {
			if fi, err := os.Stat(filepath.Join(s.Dir, string(st))); err == nil {
				offsets[i] = fi.Size() // output written while nobody watched is not replayed
			}
		}
	}
	go func() {
		t := time.NewTicker(r.poll)
		defer t.Stop()
		for range t.C {
			if !alive(h.pid, h.startTime) {
				h.exit = runner.Exit{Code: -1, Unknown: true}
				close(h.exited)
				return
			}
		}
	}()
	go h.tail(offsets[0], offsets[1])
	return h, nil
}

var streams = [2]runner.Stream{runner.Stdout, runner.Stderr}

// handle is a started or recovered program.
type handle struct {
	pid       int
	startTime uint64
	dir       string // output files; "" for none
	out       func(runner.Line)
	poll      time.Duration
	adopted   bool

	exited  chan struct{} // closed when the program has exited; then exit is set
	exit    runner.Exit
	drained chan struct{} // closed when exited and the output is all read

	stopOnce sync.Once
}

func (h *handle) ID() string { return "pid " + strconv.Itoa(h.pid) }

func (h *handle) Saved() runner.Saved {
	data, _ := json.Marshal(saved{PID: h.pid, StartTime: h.startTime, Dir: h.dir})
	return runner.Saved{Runner: Kind, ID: h.ID(), Data: data}
}

func (h *handle) Wait(ctx context.Context) (runner.Exit, error) {
	select {
	case <-h.drained:
		return h.exit, nil
	case <-ctx.Done():
		return runner.Exit{}, ctx.Err()
	}
}

// Stop sends SIGTERM to the program's process group, and SIGKILL after
// grace if the program still runs.
func (h *handle) Stop(ctx context.Context, grace time.Duration) error {
	if h.done() {
		return nil
	}
	if err := h.signal(syscall.SIGTERM); err != nil {
		return err
	}
	h.stopOnce.Do(func() {
		go func() {
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-h.exited:
			case <-t.C:
				_ = h.signal(syscall.SIGKILL)
			}
		}()
	})
	return nil
}

func (h *handle) done() bool {
	select {
	case <-h.exited:
		return true
	default:
		return false
	}
}

// signal signals the program's process group, if the program is still the
// process it was (a recovered program's ID may have been reused).
func (h *handle) signal(sig syscall.Signal) error {
	if h.done() || (h.adopted && !alive(h.pid, h.startTime)) {
		return nil
	}
	err := syscall.Kill(-h.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		err = syscall.Kill(h.pid, sig) // not a group leader after all
	}
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("send %v to the flow program (%s): %w", sig, h.ID(), err)
	}
	return nil
}

// maxLine is the longest line given to Output; longer ones are split.
const maxLine = 64 << 10

// tail reads the output files from the offsets, line by line, until the
// program has exited and they are read to their end; then it deletes them.
func (h *handle) tail(stdoutAt, stderrAt int64) {
	defer close(h.drained)
	var files [2]*os.File
	var partial [2][]byte
	if h.dir != "" {
		for i, s := range streams {
			if f, err := os.Open(filepath.Join(h.dir, string(s))); err == nil {
				_, _ = f.Seek([]int64{stdoutAt, stderrAt}[i], io.SeekStart)
				files[i] = f
			}
		}
	}
	emit := func(i int, text []byte) {
		if h.out != nil {
			h.out(runner.Line{Stream: streams[i], Text: string(bytes.TrimSuffix(text, []byte("\r"))), Time: time.Now()})
		}
	}
	buf := make([]byte, 32<<10)
	t := time.NewTicker(h.poll)
	defer t.Stop()
	for {
		last := h.done() // read once more after the program exited
		for i, f := range files {
			if f == nil {
				continue
			}
			for {
				n, err := f.Read(buf)
				partial[i] = append(partial[i], buf[:n]...)
				for {
					j := bytes.IndexByte(partial[i], '\n')
					if j < 0 {
						break
					}
					emit(i, partial[i][:j])
					partial[i] = partial[i][j+1:]
				}
				for len(partial[i]) >= maxLine {
					emit(i, partial[i][:maxLine])
					partial[i] = partial[i][maxLine:]
				}
				if n == 0 || err != nil {
					break
				}
			}
		}
		if last {
			break
		}
		select {
		case <-t.C:
		case <-h.exited:
		}
	}
	for i, f := range files {
		if len(partial[i]) > 0 {
			emit(i, partial[i])
		}
		if f != nil {
			f.Close()
		}
	}
	if h.dir != "" {
		os.RemoveAll(h.dir)
	}
}

// checkProgram checks that path names a program this agent may run, with
// a message a user can act on.
func checkProgram(path string) error {
	if path == "" {
		return errors.New("the flow version has no program path (storage kind \"local\" needs one): register the flow again with --path /absolute/path/to/program")
	}
	if !filepath.IsAbs(path) {
		return fmt.Errorf("the flow program %q could not start: its path is not absolute: register the flow again with --path /absolute/path/to/program", path)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("the flow program %s could not start: it does not exist on this agent's machine: install it there, or register the flow with the path it has on the agents' machines", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("the flow program %s could not start: permission denied: the agent's user cannot reach it (check the permissions of its directories)", path)
	case err != nil:
		return fmt.Errorf("the flow program %s could not start: %w", path, err)
	case fi.IsDir():
		return fmt.Errorf("the flow program %s could not start: it is a directory, not a program: register the flow with the program's path", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("the flow program %s could not start: it is not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("the flow program %s could not start: permission denied: it is not executable (chmod +x %s)", path, path)
	}
	return nil
}

// startError explains why exec failed.
func startError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("the flow program %s could not start: permission denied: the agent's user may not run it (check its mode and owner, and that its file system is not mounted noexec)", path)
	case errors.Is(err, syscall.ENOEXEC):
		return fmt.Errorf("the flow program %s could not start: it is not a program this machine runs (built for another OS or architecture? build it for this one, e.g. GOOS=linux GOARCH=amd64)", path)
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("the flow program %s could not start: it, or the interpreter its first line names, does not exist on this agent's machine", path)
	}
	return fmt.Errorf("the flow program %s could not start: %w", path, err)
}

// exitOf says how a child exited.
func exitOf(ps *os.ProcessState, err error) runner.Exit {
	if ps == nil {
		return runner.Exit{Code: -1, StartErr: err}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return runner.Exit{Code: -1, Signal: signalName(ws.Signal())}
	}
	return runner.Exit{Code: ps.ExitCode()}
}

// safeName makes an ID usable as a file name.
func safeName(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == '.' {
			return '_'
		}
		return r
	}, id)
}

func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE",
	syscall.SIGHUP: "SIGHUP", syscall.SIGILL: "SIGILL", syscall.SIGINT: "SIGINT",
	syscall.SIGKILL: "SIGKILL", syscall.SIGPIPE: "SIGPIPE", syscall.SIGQUIT: "SIGQUIT",
	syscall.SIGSEGV: "SIGSEGV", syscall.SIGTERM: "SIGTERM", syscall.SIGUSR1: "SIGUSR1",
	syscall.SIGUSR2: "SIGUSR2", syscall.SIGXCPU: "SIGXCPU",
}

// signalName names a signal as people know it: "SIGKILL (killed)".
func signalName(sig syscall.Signal) string {
	if n, ok := signalNames[sig]; ok {
		return n + " (" + sig.String() + ")"
	}
	return fmt.Sprintf("%d (%s)", int(sig), sig)
}
