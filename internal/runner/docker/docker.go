package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/reevehq/reeve/internal/runner"
)

// The labels of the runner's containers.
const (
	LabelAgent     = "dev.reeve.agent"       // the agent's name
	LabelFlowRunID = "dev.reeve.flow-run-id" // the flow run's ID
	LabelAttempt   = "dev.reeve.attempt"     // the run's attempt, in decimal
	LabelManagedBy = "dev.reeve.managed-by"  // always "reeve"
	// LabelAPIRelay is "LISTEN>TARGET" on a container whose server address
	// the runner relays (see the package doc), so that a runner that
	// recovers the container relays it again.
	LabelAPIRelay = "dev.reeve.api-relay"
)

// managedBy is the value of LabelManagedBy.
const managedBy = "reeve"

// Runner starts flow programs as Docker containers.
type Runner struct {
	cl       *client.Client
	own      bool // New made cl: Close closes it
	cfg      Config
	pull     PullPolicy
	keychain authn.Keychain
	log      *slog.Logger
	env      []string // Config.Env, as NAME=value, sorted

	// life is cancelled by Close: it bounds the goroutines that watch
	// containers, which outlive the calls that start them.
	life     context.Context
	stopLife context.CancelFunc
	wg       sync.WaitGroup // the runner's goroutines

	mu     sync.Mutex
	closed bool
	relays map[string]*relay // by listening address
}

var (
	_ runner.Runner  = (*Runner)(nil)
	_ runner.Finder  = (*Runner)(nil)
	_ runner.Checker = (*Runner)(nil)
)

// checkTimeout bounds the ping of Check, and the one that tells whether an
// engine call failed because the engine went away.
const checkTimeout = 5 * time.Second

// New returns a runner with cfg, once a ping proved the Docker engine
// answers.
func New(ctx context.Context, cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pull, _ := ParsePullPolicy(string(cfg.Pull))
	r := &Runner{cl: cfg.Client, cfg: cfg, pull: pull, keychain: cfg.Keychain, log: cfg.Logger, relays: map[string]*relay{}}
	if r.keychain == nil {
		r.keychain = authn.DefaultKeychain
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		r.env = append(r.env, k+"="+cfg.Env[k])
	}
	if r.cl == nil {
		cl, err := client.New(client.FromEnv)
		if err != nil {
			return nil, fmt.Errorf("docker runner: make the Docker engine's client: %w (check DOCKER_HOST and the other DOCKER_* variables)", err)
		}
		r.cl, r.own = cl, true
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := r.cl.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		if r.own {
			r.cl.Close()
		}
		return nil, unreachable(r.cl.DaemonHost(), err)
	}
	r.life, r.stopLife = context.WithCancel(context.Background())
	return r, nil
}

// Close stops the runner's relays and its goroutines, and closes the
// client if New made it. The containers keep running: a new runner finds
// them again (Recover, Find).
func (r *Runner) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	relays := r.relays
	r.relays = nil
	r.mu.Unlock()
	r.stopLife()
	for _, rl := range relays {
		rl.close()
	}
	r.wg.Wait()
	if r.own {
		return r.cl.Close()
	}
	return nil
}

// Check pings the engine: nil when it answers, else an error that wraps
// runner.ErrUnavailable, naming the engine's address; see runner.Checker.
func (r *Runner) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if _, err := r.cl.Ping(ctx, client.PingOptions{}); err != nil {
		return unreachable(r.cl.DaemonHost(), err)
	}
	return nil
}

// engineDown returns err, the error of an engine call, wrapping
// runner.ErrUnavailable when the engine no longer answers a ping: a call
// the engine broke off by going away fails with errors (EOF, a connection
// reset) that do not say so themselves.
func (r *Runner) engineDown(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, runner.ErrUnavailable) || ctx.Err() != nil {
		return err
	}
	perr := r.Check(context.WithoutCancel(ctx))
	if perr == nil {
		return err
	}
	return &unavailableError{
		msg: fmt.Sprintf("%v (the Docker engine at %s no longer answers: start Docker or set DOCKER_HOST)", err, r.cl.DaemonHost()),
		err: err,
	}
}

// goroutine runs f on a goroutine of the runner, unless it is closed.
func (r *Runner) goroutine(f func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Go(f)
	return true
}

// saved is the runner's part of a runner.Saved record.
type saved struct {
	ID    string `json:"container_id"`
	Name  string `json:"name"`
	Image string `json:"image"`
}

// Start starts a container running the spec's image; see runner.Runner.
func (r *Runner) Start(ctx context.Context, spec runner.Spec) (runner.Handle, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	image := spec.Storage.Image
	if spec.Storage.Kind != Kind {
		what := fmt.Sprintf("its storage kind is %q", spec.Storage.Kind)
		if spec.Storage.Kind == "local" {
			what = fmt.Sprintf("its flow program is a program on the agent's machine (%s)", spec.Storage.Path)
		}
		return nil, fmt.Errorf("%s, and a Docker agent runs only images (storage kind \"docker\"): run the flow on a process agent whose labels cover the flow's, or deploy it as an image with reeve deploy: %w", what, runner.ErrUnsupported)
	}
	if image == "" {
		return nil, errors.New("the flow version has no image (storage kind \"docker\" needs one): deploy the flow again with reeve deploy")
	}
	fail := func(err error) error { return fmt.Errorf("the flow program %s could not start: %w", image, err) }
	nanoCPUs, err := parseCPU(spec.CPU)
	if err != nil {
		return nil, fail(err)
	}
	memory, err := parseMemory(spec.Memory)
	if err != nil {
		return nil, fail(err)
	}
	platform, err := parsePlatform(spec.Platform)
	if err != nil {
		return nil, fail(fmt.Errorf("%w: correct the flow's platform", err))
	}
	note := spec.Note
	if note == nil {
		note = func(string) {}
	}
	// The errors of the engine's calls from here on.
	failEngine := func(err error) error { return fail(r.engineDown(ctx, err)) }
	if err := r.ensureImage(ctx, image, platform, note); err != nil {
		return nil, failEngine(err)
	}
	apiAddr, err := r.apiURL(ctx, spec.APIURL)
	if err != nil {
		return nil, failEngine(err)
	}
	env := spec
	env.APIURL = apiAddr.url
	labels := map[string]string{
		LabelAgent:     r.cfg.Agent,
		LabelFlowRunID: spec.FlowRunID,
		LabelAttempt:   strconv.Itoa(spec.Attempt),
		LabelManagedBy: managedBy,
	}
	if apiAddr.relay != "" {
		labels[LabelAPIRelay] = apiAddr.relay
	}
	name := containerName(spec.FlowRunID, spec.Attempt)
	if err := r.clearName(ctx, name); err != nil {
		return nil, failEngine(err)
	}
	hc := &container.HostConfig{
		Binds:       r.cfg.Volumes,
		NetworkMode: container.NetworkMode(r.cfg.Network),
		Resources:   container.Resources{NanoCPUs: nanoCPUs, Memory: memory},
	}
	if memory > 0 {
		hc.MemorySwap = memory // no swap on top: the limit is the limit
	}
	created, err := r.cl.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:     name,
		Platform: platform,
		Config: &container.Config{
			Image:  image,
			Cmd:    []string{runner.Command},
			Env:    env.Environ(r.env),
			Labels: labels,
		},
		HostConfig: hc,
	})
	if err != nil {
		return nil, failEngine(r.createError(err))
	}
	for _, w := range created.Warnings {
		r.log.WarnContext(ctx, "the Docker engine warns about a container", "container", name, "warning", w)
	}
	h := r.newHandle(created.ID, name, image, spec.Output)
	// Wait before starting, so that the exit cannot go unseen.
	wait := r.cl.ContainerWait(h.ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := r.cl.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		h.cancel()
		drain(wait)
		r.remove(context.WithoutCancel(ctx), created.ID)
		return nil, failEngine(r.startError(err))
	}
	if !r.goroutine(func() { h.watch(wait, "") }) {
		h.cancel()
		drain(wait)
		return nil, fail(fmt.Errorf("the runner is closed"))
	}
	r.log.InfoContext(ctx, "started a container", "container", name, "id", shortID(created.ID), "image", image, "flow_run_id", spec.FlowRunID, "attempt", spec.Attempt)
	if apiAddr.note != "" {
		note(apiAddr.note)
	}
	return h, nil
}

// clearName removes a container of the name that does not run: what is
// left of an earlier start of the same attempt.
func (r *Runner) clearName(ctx context.Context, name string) error {
	res, err := r.cl.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return nil
	case err != nil:
		return r.engineError("look for an earlier container "+name, err)
	case res.Container.State != nil && res.Container.State.Running:
		return fmt.Errorf("a container named %s already runs this attempt on the Docker engine: stop it (docker rm -f %s) to start the attempt again", name, name)
	}
	if _, err := r.cl.ContainerRemove(ctx, res.Container.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return r.engineError("remove the earlier container "+name, err)
	}
	return nil
}

func (r *Runner) createError(err error) error {
	msg := strings.ToLower(err.Error())
	switch {
	case client.IsErrConnectionFailed(err):
		return r.engineError("", err)
	case strings.Contains(msg, "network") && cerrdefs.IsNotFound(err):
		return fmt.Errorf("create its container: the Docker network %q does not exist (%v): create it (docker network create %s), or correct the agent's --network", r.cfg.Network, err, r.cfg.Network)
	case strings.Contains(msg, "mount") || strings.Contains(msg, "bind"):
		return fmt.Errorf("create its container: a volume of the agent's --volume is not valid (%v): correct it", err)
	}
	return fmt.Errorf("create its container: %w", err)
}

func (r *Runner) startError(err error) error {
	msg := strings.ToLower(err.Error())
	switch {
	case client.IsErrConnectionFailed(err):
		return r.engineError("", err)
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory") && strings.Contains(msg, "exec"):
		return fmt.Errorf("start its container: %v: the image's entrypoint must be the flow program (images reeve deploy builds have it)", err)
	}
	return fmt.Errorf("start its container: %w", err)
}

// remove removes a container, whatever its state; a container that is
// gone already is fine.
func (r *Runner) remove(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := r.cl.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) { // conflict: its removal is under way
		r.log.WarnContext(ctx, "could not remove a container", "id", shortID(id), "err", err)
	}
}

// Recover watches the container a Saved record names again; see
// runner.Runner.
func (r *Runner) Recover(ctx context.Context, rec runner.Saved, out func(runner.Line)) (runner.Handle, error) {
	if rec.Runner != Kind {
		return nil, fmt.Errorf("a %q runner's record, not a docker runner's: %w", rec.Runner, runner.ErrGone)
	}
	var s saved
	if err := json.Unmarshal(rec.Data, &s); err != nil {
		return nil, fmt.Errorf("read a docker runner's record: %v: %w", err, runner.ErrGone)
	}
	if s.ID == "" {
		return nil, fmt.Errorf("a docker runner's record without a container ID: %w", runner.ErrGone)
	}
	res, err := r.cl.ContainerInspect(ctx, s.ID, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("container %s: %w", shortID(s.ID), runner.ErrGone)
	}
	if err != nil {
		return nil, r.engineError("inspect the container "+shortID(s.ID), err)
	}
	c := res.Container
	var labels map[string]string
	if c.Config != nil {
		labels = c.Config.Labels
	}
	if labels[LabelManagedBy] != managedBy || labels[LabelAgent] != r.cfg.Agent {
		return nil, fmt.Errorf("container %s is not one of agent %s's: %w", shortID(s.ID), r.cfg.Agent, runner.ErrGone)
	}
	if c.State == nil || !c.State.Running {
		r.remove(ctx, c.ID)
		return nil, fmt.Errorf("container %s has exited: %w", shortID(c.ID), runner.ErrGone)
	}
	if l := labels[LabelAPIRelay]; l != "" {
		r.resumeRelay(ctx, l)
	}
	// Output written while nobody watched is not replayed.
	now := time.Now()
	since := fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond())
	image := s.Image
	if c.Config != nil && c.Config.Image != "" {
		image = c.Config.Image
	}
	h := r.newHandle(c.ID, strings.TrimPrefix(c.Name, "/"), image, out)
	wait := r.cl.ContainerWait(h.ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	if !r.goroutine(func() { h.watch(wait, since) }) {
		h.cancel()
		drain(wait)
		return nil, fmt.Errorf("recover container %s: the runner is closed", shortID(c.ID))
	}
	r.log.InfoContext(ctx, "watching a container again", "container", h.name, "id", shortID(c.ID))
	return h, nil
}

// Find lists the agent's containers: those that run are found, the others
// removed; see runner.Finder.
func (r *Runner) Find(ctx context.Context) ([]runner.Found, error) {
	list, err := r.cl.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelAgent+"="+r.cfg.Agent),
	})
	if err != nil {
		return nil, r.engineError("list the agent's containers", err)
	}
	var found []runner.Found
	for _, c := range list.Items {
		if c.Labels[LabelManagedBy] != managedBy {
			continue
		}
		switch c.State {
		case container.StateRunning, container.StatePaused, container.StateRestarting:
		case container.StateRemoving:
			continue
		case container.StateCreated:
			if time.Since(time.Unix(c.Created, 0)) < time.Minute {
				continue // a Start under way, perhaps
			}
			fallthrough
		default: // exited, dead, created long ago: what is left of an ended run
			r.log.InfoContext(ctx, "removing a container that ended", "id", shortID(c.ID), "state", c.State)
			r.remove(ctx, c.ID)
			continue
		}
		res, err := r.cl.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, r.engineError("inspect the container "+shortID(c.ID), err)
		}
		if res.Container.Config == nil {
			continue
		}
		cfg := res.Container.Config
		attempt, err := strconv.Atoi(cfg.Labels[LabelAttempt])
		if err != nil || cfg.Labels[LabelFlowRunID] == "" {
			r.log.WarnContext(ctx, "a container of the agent without a flow run's labels", "id", shortID(c.ID))
			continue
		}
		var token string
		for _, kv := range cfg.Env {
			if v, ok := strings.CutPrefix(kv, runner.EnvAPIToken+"="); ok {
				token = v
			}
		}
		name := strings.TrimPrefix(res.Container.Name, "/")
		data, _ := json.Marshal(saved{ID: c.ID, Name: name, Image: cfg.Image})
		found = append(found, runner.Found{
			FlowRunID: cfg.Labels[LabelFlowRunID],
			Attempt:   attempt,
			Token:     token,
			Program:   cfg.Image,
			Saved:     runner.Saved{Runner: Kind, ID: handleID(c.ID, name), Data: data},
		})
	}
	return found, nil
}

// containerName is the name of a run's container: "reeve-RUN-ATTEMPT",
// with what Docker does not allow in names replaced.
func containerName(flowRunID string, attempt int) string {
	id := strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
			return c
		}
		return '-'
	}, flowRunID)
	if len(id) > 200 {
		id = id[:200]
	}
	return fmt.Sprintf("reeve-%s-%d", id, attempt)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func handleID(id, name string) string {
	return "container " + name + " (" + shortID(id) + ")"
}

// drain reads what a ContainerWait, whose context is cancelled, delivers,
// so that the client's goroutine ends.
func drain(w client.ContainerWaitResult) {
	select {
	case <-w.Result:
	case <-w.Error:
	}
}
