package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/reevehq/reeve/internal/runner"
)

// drainTimeout bounds how long a handle reads the logs of a container that
// stopped (they end at once, unless the engine misbehaves).
const drainTimeout = 30 * time.Second

// handle is a started or recovered container.
type handle struct {
	r     *Runner
	id    string // the container's full ID
	name  string
	image string
	out   func(runner.Line)

	// ctx bounds the handle's requests that outlive the call that made the
	// handle; it ends with the runner, or when the container is done.
	ctx    context.Context
	cancel context.CancelFunc

	exited chan struct{} // closed when the container has stopped
	done   chan struct{} // closed when exit is set: stopped, output drained, removed
	exit   runner.Exit

	stopOnce sync.Once
}

func (r *Runner) newHandle(id, name, image string, out func(runner.Line)) *handle {
	ctx, cancel := context.WithCancel(r.life)
	return &handle{r: r, id: id, name: name, image: image, out: out, ctx: ctx, cancel: cancel, exited: make(chan struct{}), done: make(chan struct{})}
}

func (h *handle) ID() string { return handleID(h.id, h.name) }

func (h *handle) Saved() runner.Saved {
	data, _ := json.Marshal(saved{ID: h.id, Name: h.name, Image: h.image})
	return runner.Saved{Runner: Kind, ID: h.ID(), Data: data}
}

func (h *handle) Wait(ctx context.Context) (runner.Exit, error) {
	select {
	case <-h.done:
		return h.exit, nil
	case <-ctx.Done():
		return runner.Exit{}, ctx.Err()
	}
}

// Stop sends SIGTERM to the container's main process, and SIGKILL after
// grace if the container still runs.
func (h *handle) Stop(ctx context.Context, grace time.Duration) error {
	if isClosed(h.exited) {
		return nil
	}
	if err := h.kill(ctx, "SIGTERM"); err != nil {
		return err
	}
	h.stopOnce.Do(func() {
		h.r.goroutine(func() {
			t := time.NewTimer(grace)
			defer t.Stop()
			select {
			case <-h.exited:
			case <-h.ctx.Done():
			case <-t.C:
				ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
				defer cancel()
				if err := h.kill(ctx, "SIGKILL"); err != nil {
					h.r.log.WarnContext(ctx, "could not kill a container", "container", h.name, "err", err)
				}
			}
		})
	})
	return nil
}

// kill sends sig to the container; one that does not run is fine.
func (h *handle) kill(ctx context.Context, sig string) error {
	_, err := h.r.cl.ContainerKill(ctx, h.id, client.ContainerKillOptions{Signal: sig})
	if err == nil || cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) { // conflict: it is not running
		return nil
	}
	return h.r.engineError(fmt.Sprintf("send %s to the flow program (%s)", sig, h.ID()), err)
}

// watch follows the container's output until it stops, then says how it
// ended and removes it. It returns early, leaving the container be, when
// the runner closes.
func (h *handle) watch(wait client.ContainerWaitResult, since string) {
	defer h.cancel()
	logCtx, stopLogs := context.WithCancel(h.ctx)
	defer stopLogs()
	logsDone := make(chan struct{})
	logs := newLogReader(h.out)
	h.r.wg.Add(1) // the runner is not closed: watch runs on its goroutine
	go func() {
		defer h.r.wg.Done()
		defer close(logsDone)
		h.follow(logCtx, since, logs)
	}()

	code, known, err := h.waitStopped(wait)
	if err != nil { // the runner closes
		stopLogs()
		<-logsDone
		return
	}
	close(h.exited)
	t := time.NewTimer(drainTimeout)
	select {
	case <-logsDone:
	case <-t.C:
		h.r.log.Warn("the container's output did not end after it stopped", "container", h.name)
		stopLogs()
		<-logsDone
	}
	t.Stop()

	ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
	defer cancel()
	h.catchUp(ctx, since, logs)
	var oom bool
	var memory int64
	res, err := h.r.cl.ContainerInspect(ctx, h.id, client.ContainerInspectOptions{})
	if err == nil && res.Container.State != nil {
		if !known {
			code, known = res.Container.State.ExitCode, true
		}
		oom = res.Container.State.OOMKilled
		if res.Container.HostConfig != nil {
			memory = res.Container.HostConfig.Memory
		}
	}
	if h.ctx.Err() != nil {
		return // the runner closes
	}
	h.r.remove(ctx, h.id)
	if known {
		h.exit = exitOf(code, oom, memory)
	} else {
		h.exit = runner.Exit{Code: -1, Unknown: true}
	}
	h.r.log.Info("a container ended", "container", h.name, "exit", h.exit.String())
	close(h.done)
}

// waitStopped waits until the container has stopped and returns its exit
// status, if known. It fails only when the runner closes.
func (h *handle) waitStopped(wait client.ContainerWaitResult) (int, bool, error) {
	for {
		select {
		case res := <-wait.Result:
			if res.Error == nil || res.Error.Message == "" {
				return int(res.StatusCode), true, nil
			}
			h.r.log.Warn("waiting for a container failed", "container", h.name, "err", res.Error.Message)
		case err := <-wait.Error:
			if h.ctx.Err() != nil {
				return 0, false, h.ctx.Err()
			}
			h.r.log.Warn("waiting for a container failed", "container", h.name, "err", err)
		}
		// The wait broke (the engine restarted?): look at the container.
		res, err := h.r.cl.ContainerInspect(h.ctx, h.id, client.ContainerInspectOptions{})
		switch {
		case cerrdefs.IsNotFound(err):
			return 0, false, nil // removed by someone else
		case err == nil && res.Container.State != nil && !res.Container.State.Running:
			return res.Container.State.ExitCode, true, nil
		}
		t := time.NewTimer(time.Second)
		select {
		case <-t.C:
		case <-h.ctx.Done():
			t.Stop()
			return 0, false, h.ctx.Err()
		}
		wait = h.r.cl.ContainerWait(h.ctx, h.id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	}
}

// follow gives the container's output, from since ("" for the start), to
// the handle's Output until the container stops; logs keeps the last
// messages' times and the unfinished lines.
func (h *handle) follow(ctx context.Context, since string, logs *logReader) {
	logs.read(ctx, h, since, true)
}

// catchUp reads, once the container stopped, the messages its followed
// logs ended without (the engine may end them before the last message,
// often a last line without a line break), then gives the unfinished
// lines.
func (h *handle) catchUp(ctx context.Context, since string, logs *logReader) {
	// From the earlier of the streams' last messages (each stream's
	// timestamps grow, but the two streams' interleave).
	if a, b := logs.stdout.last, logs.stderr.last; !a.IsZero() && !b.IsZero() {
		if b.Before(a) {
			a = b
		}
		since = fmt.Sprintf("%d.%09d", a.Unix(), a.Nanosecond())
	}
	logs.read(ctx, h, since, false)
	logs.stdout.flush()
	logs.stderr.flush()
}

// logReader reads a container's logs, with the engine's timestamps, into
// lines.
type logReader struct {
	stdout, stderr *lineWriter
}

func newLogReader(out func(runner.Line)) *logReader {
	return &logReader{
		stdout: &lineWriter{stream: runner.Stdout, out: out},
		stderr: &lineWriter{stream: runner.Stderr, out: out},
	}
}

func (lr *logReader) read(ctx context.Context, h *handle, since string, follow bool) {
	logs, err := h.r.cl.ContainerLogs(ctx, h.id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow, Since: since, Timestamps: true})
	if err != nil {
		if ctx.Err() == nil && !cerrdefs.IsNotFound(err) {
			h.r.log.Warn("could not read a container's output", "container", h.name, "err", err)
		}
		return
	}
	defer logs.Close()
	if _, err := stdcopy.StdCopy(lr.stdout, lr.stderr, logs); err != nil && ctx.Err() == nil {
		h.r.log.Warn("reading a container's output failed", "container", h.name, "err", err)
	}
}

// maxLine is the longest line given to Output; longer ones are split.
const maxLine = 64 << 10

// lineWriter splits the messages of a stream of the logs, one a Write,
// each after its timestamp, into lines for Output.
type lineWriter struct {
	stream  runner.Stream
	out     func(runner.Line)
	last    time.Time // the time of the stream's last message given
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	if ts, msg, ok := bytes.Cut(p, []byte(" ")); ok {
		if t, err := time.Parse(time.RFC3339Nano, string(ts)); err == nil {
			if !t.After(w.last) {
				return n, nil // given already, by the read before
			}
			w.last, p = t, msg
		}
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.emit(w.partial[:i])
		w.partial = w.partial[i+1:]
	}
	for len(w.partial) >= maxLine {
		w.emit(w.partial[:maxLine])
		w.partial = w.partial[maxLine:]
	}
	return n, nil
}

// flush gives a last line without a line break.
func (w *lineWriter) flush() {
	if len(w.partial) > 0 {
		w.emit(w.partial)
		w.partial = nil
	}
}

func (w *lineWriter) emit(text []byte) {
	if w.out != nil {
		w.out(runner.Line{Stream: w.stream, Text: string(bytes.TrimSuffix(text, []byte("\r"))), Time: time.Now()})
	}
}

// exitOf says how a container ended from its exit status, whether the
// kernel killed a process of it for memory, and its memory limit (0 for
// none).
func exitOf(code int, oomKilled bool, memory int64) runner.Exit {
	if oomKilled && code != 0 {
		limit := "it had no memory limit: the machine ran out of memory"
		if memory > 0 {
			limit = "its memory limit is " + formatBytes(memory) + " (raise it with the flow's --memory)"
		}
		if code == 128+9 {
			return runner.Exit{Code: code, Signal: signalName(9), Reason: "was killed for running out of memory: " + limit}
		}
		// A process of it was killed, and it exited because of that.
		return runner.Exit{Code: code, Reason: fmt.Sprintf("exited with status %d after running out of memory (the kernel killed a process of it): %s", code, limit)}
	}
	if code > 128 {
		if name := signalName(code - 128); name != "" {
			return runner.Exit{Code: code, Signal: name}
		}
	}
	return runner.Exit{Code: code}
}

// signalNames are the Linux signals a container's program may die of
// (a container runs Linux whatever the agent's OS).
var signalNames = map[int]string{
	1: "SIGHUP (hangup)", 2: "SIGINT (interrupt)", 3: "SIGQUIT (quit)",
	4: "SIGILL (illegal instruction)", 6: "SIGABRT (aborted)", 7: "SIGBUS (bus error)",
	8: "SIGFPE (floating point exception)", 9: "SIGKILL (killed)", 10: "SIGUSR1 (user defined signal 1)",
	11: "SIGSEGV (segmentation fault)", 12: "SIGUSR2 (user defined signal 2)", 13: "SIGPIPE (broken pipe)",
	14: "SIGALRM (alarm clock)", 15: "SIGTERM (terminated)", 24: "SIGXCPU (CPU time limit exceeded)",
}

// signalName names a signal as people know it, "SIGKILL (killed)", or ""
// for a number that is not a signal programs die of.
func signalName(n int) string { return signalNames[n] }

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
