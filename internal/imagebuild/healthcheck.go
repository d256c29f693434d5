package imagebuild

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Where the health check runs (Options.HealthCheck).
const (
	// HealthCheckAuto runs it in a Docker container when an engine answers
	// a ping within DockerPingTimeout, else runs the binary built for this
	// machine's platform, else fails the build.
	HealthCheckAuto = "auto"
	// HealthCheckDocker runs it in a container of the image, on the Docker
	// engine DOCKER_HOST (or the default socket) names.
	HealthCheckDocker = "docker"
	// HealthCheckBinary runs the program built for this machine's platform
	// here, with only the image's environment and the built specs.
	HealthCheckBinary = "binary"
	// HealthCheckSkip pushes without a health check.
	HealthCheckSkip = "skip"
)

// DockerPingTimeout is how long HealthCheckAuto waits for a Docker engine
// to answer before it runs the binary instead.
const DockerPingTimeout = 2 * time.Second

// ServerResults is the result store of server runs of flows that name
// none (internal/result/apiblob): the health check is given it.
const ServerResults = "reeve://server"

// Check is one line of the health check.
type Check struct {
	OK   bool
	Flow string // the flow it is about, or "image" for the image itself
	What string // what passed, or what failed and how to fix it
}

// String is the check's line: "ok   FLOW: WHAT" or "FAIL FLOW: WHAT".
func (c Check) String() string {
	mark := "ok  "
	if !c.OK {
		mark = "FAIL"
	}
	return mark + " " + c.Flow + ": " + c.What
}

// SecretCheck checks that the secrets a flow declares are set where its
// runs read them (a project on the server), returning one Check per name.
// An error means it could not check at all.
type SecretCheck func(ctx context.Context, flow string, names []string) ([]Check, error)

// HealthCheckError is the error of a build whose health check failed:
// nothing was pushed.
type HealthCheckError struct {
	Image  string  // the image checked, pinned by digest
	Failed []Check // the checks that failed
	Total  int     // the number of checks
}

func (e *HealthCheckError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the health check of %s failed (%d of %d checks), so nothing was pushed:\n", e.Image, len(e.Failed), e.Total)
	for _, c := range e.Failed {
		fmt.Fprintln(&b, c)
	}
	b.WriteString(e.Advice())
	return b.String()
}

// Advice says what to do about the failures.
func (e *HealthCheckError) Advice() string {
	var b strings.Builder
	if slices.ContainsFunc(e.Failed, func(c Check) bool { return strings.Contains(c.What, "is not registered in this program") }) {
		b.WriteString("The specs were saved on this machine by this program, so a task they name but the image's program lacks is " +
			"registered only under a condition of this machine (an environment variable, a file, a flag): register every task " +
			"unconditionally, at package level.\n")
	}
	b.WriteString("Fix the failures and build again, or give --skip-healthcheck to push without the check.")
	return b.String()
}

// healthCheck runs the health check of the images before the push and
// writes its lines to o.Progress. It returns where it ran ("docker",
// "binary" or "skipped").
func healthCheck(ctx context.Context, o Options, plats []*v1.Platform, imgs []v1.Image, progs []*program, flows []Flow, specDir string) (string, error) {
	w := o.Progress
	if w == nil {
		w = io.Discard
	}
	mode := o.HealthCheck
	if mode == "" {
		mode = HealthCheckAuto
	}
	if mode == HealthCheckSkip {
		return "skipped", nil
	}
	host := slices.IndexFunc(plats, func(p *v1.Platform) bool {
		return p.OS == runtime.GOOS && p.Architecture == runtime.GOARCH
	})
	hostPlat := runtime.GOOS + "/" + runtime.GOARCH
	var dc *client.Client
	switch mode {
	case HealthCheckAuto:
		var err error
		if dc, err = dockerEngine(ctx, DockerPingTimeout); err != nil && host < 0 {
			return "", fmt.Errorf("health check: cannot check a %s image on this machine (%s) without Docker (%v): "+
				"start a Docker engine, add this machine's platform to --platform, or give --skip-healthcheck to push without the check",
				plats[0], hostPlat, err)
		}
	case HealthCheckDocker:
		var err error
		if dc, err = dockerEngine(ctx, 10*time.Second); err != nil {
			return "", fmt.Errorf("health check in Docker: %v: start the engine (or set DOCKER_HOST), or run the check with --healthcheck binary", err)
		}
	case HealthCheckBinary:
		if host < 0 {
			return "", fmt.Errorf("health check by running the binary: the image is for %s, which cannot run on this machine (%s): "+
				"add %s to --platform, run the check in Docker (--healthcheck docker), or give --skip-healthcheck",
				strings.Join(platStrings(plats), ","), hostPlat, hostPlat)
		}
	}
	if dc != nil {
		defer dc.Close()
	}

	i := max(host, 0)
	digest, err := imgs[i].Digest()
	if err != nil {
		return "", fmt.Errorf("health check: %w", err)
	}
	ref := o.Repo + "@" + digest.String()
	var (
		out   []byte
		code  int
		where string
	)
	if dc != nil {
		where = "docker"
		fmt.Fprintf(w, "health check of %s (%s) in a Docker container\n", ref, plats[i])
		out, code, err = runInDocker(ctx, dc, imgs[i], o.RunEnv,
			"healthcheck", "--spec", FlowsDir, "--results", ServerResults, "--secrets-from-server")
		if err != nil && host < 0 {
			err = fmt.Errorf("%w (the engine may not run %s images: give --skip-healthcheck, or add %s to --platform)", err, plats[i], hostPlat)
		}
	} else {
		where = "binary"
		fmt.Fprintf(w, "health check of %s by running the %s binary on this machine\n", ref, plats[i])
		out, code, err = runBinary(ctx, imgs[i], progs[i].path, filepath.Dir(specDir), o.RunEnv,
			"healthcheck", "--spec", specDir, "--results", ServerResults, "--secrets-from-server")
	}
	if errors.Is(err, errTimedOut) {
		return "", fmt.Errorf("health check of %s: the program's healthcheck command did not finish within %v: does something in the program (an init function, a flow's construction) block or wait on the network? Fix it, or give --skip-healthcheck", ref, HealthCheckTimeout)
	}
	if err != nil {
		return "", fmt.Errorf("health check of %s: %w", ref, err)
	}
	checks, other := parseChecks(out)
	if (code != 0 && code != 1) || (code == 1 && !slices.ContainsFunc(checks, func(c Check) bool { return !c.OK })) {
		return "", fmt.Errorf("health check of %s: the program's healthcheck command failed (exit code %d):\n%s\n%s",
			ref, code, strings.TrimSpace(string(out)), healthcheckFailureAdvice(string(out), plats[i], hostPlat))
	}
	if o.CheckSecrets == nil {
		var names []string
		for _, f := range flows {
			for _, sec := range f.secrets {
				names = append(names, f.Name+": "+sec)
			}
		}
		if len(names) > 0 {
			other = append(other, fmt.Sprintf("note: not checked that the declared secrets are set on the server (%s): give --server to check them", strings.Join(names, ", ")))
		}
	} else {
		for _, f := range flows {
			if len(f.secrets) == 0 {
				continue
			}
			cs, err := o.CheckSecrets(ctx, f.Name, f.secrets)
			if err != nil {
				return "", fmt.Errorf("health check: check the secrets of flow %s: %w", f.Name, err)
			}
			checks = append(checks, cs...)
		}
	}
	if o.RunPlatform != "" {
		checks = append(checks, platformCheck(plats, o.RunPlatform))
	}
	for _, l := range other {
		fmt.Fprintln(w, l)
	}
	var failed []Check
	for _, c := range checks {
		fmt.Fprintln(w, c)
		if !c.OK {
			failed = append(failed, c)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "%d of %d checks failed\n", len(failed), len(checks))
		return "", &HealthCheckError{Image: ref, Failed: failed, Total: len(checks)}
	}
	fmt.Fprintf(w, "all %d checks passed\n", len(checks))
	return where, nil
}

// HealthCheckTimeout bounds the program's healthcheck command, from its
// start (loading the image into Docker is not counted): a program that
// never answers (it blocks in an init function, say) must not hang the
// build.
var HealthCheckTimeout = 2 * time.Minute

// errTimedOut is wrapped by the error of a healthcheck command that ran
// longer than HealthCheckTimeout.
var errTimedOut = errors.New("the healthcheck command timed out")

// healthcheckFailureAdvice says what to do about a healthcheck command
// that failed without check lines, from what it printed.
func healthcheckFailureAdvice(out string, plat *v1.Platform, host string) string {
	switch {
	case strings.Contains(out, "exec format error"):
		return fmt.Sprintf("The Docker engine cannot run %s programs (this machine is %s): install an emulator for it (e.g. qemu-user-static with binfmt), add %s to --platform so the check runs that image, or give --skip-healthcheck", plat, host, host)
	case strings.Contains(out, "unknown flag") || strings.Contains(out, "unknown command"):
		return "The program's Reeve SDK is older than this reeve command (its healthcheck lacks --secrets-from-server): update github.com/reevehq/reeve in its go.mod, or give --skip-healthcheck"
	case strings.Contains(out, "no such file or directory") || strings.Contains(out, "executable file not found"):
		return "The image's program could not be started: is the base image's architecture the image's? Give --skip-healthcheck to push without the check"
	}
	return "The program's healthcheck command should print one line per check: does the program call reeve.Main? Fix it, or give --skip-healthcheck"
}

// platformCheck says whether the image has the platform the run
// configuration asks for.
func platformCheck(plats []*v1.Platform, want string) Check {
	wp, err := v1.ParsePlatform(want)
	if err != nil {
		return Check{Flow: "image", What: fmt.Sprintf("the run configuration's platform %q is not valid: give linux/ARCH[/VARIANT], like linux/arm64", want)}
	}
	for _, p := range plats {
		if samePlatform(p, wp) {
			return Check{OK: true, Flow: "image", What: fmt.Sprintf("platform %s matches the run configuration", p)}
		}
	}
	have := strings.Join(platStrings(plats), ",")
	return Check{Flow: "image", What: fmt.Sprintf("the run configuration asks for %s, but the image is for %s: build it with --platform %s "+
		"(or --platform %s,%s for both), or set the run configuration's platform to one the image has", wp, have, wp, have, wp)}
}

// samePlatform compares OS, architecture and variant; arm64 without a
// variant is arm64/v8.
func samePlatform(a, b *v1.Platform) bool {
	variant := func(p *v1.Platform) string {
		if p.Architecture == "arm64" && p.Variant == "" {
			return "v8"
		}
		return p.Variant
	}
	return a.OS == b.OS && a.Architecture == b.Architecture && variant(a) == variant(b)
}

func platStrings(plats []*v1.Platform) []string {
	out := make([]string, len(plats))
	for i, p := range plats {
		out[i] = p.String()
	}
	return out
}

// parseChecks splits the healthcheck command's output into its check
// lines and the other lines, without its closing total.
func parseChecks(out []byte) (checks []Check, other []string) {
	for l := range strings.Lines(string(out)) {
		l = strings.TrimRight(l, "\r\n")
		var ok bool
		switch {
		case strings.HasPrefix(l, "ok   "):
			ok = true
		case strings.HasPrefix(l, "FAIL "):
		case l == "", strings.HasPrefix(l, "all ") && strings.HasSuffix(l, " checks passed"), strings.HasSuffix(l, " checks failed"):
			continue
		default:
			other = append(other, l)
			continue
		}
		flow, what, _ := strings.Cut(l[5:], ": ")
		checks = append(checks, Check{OK: ok, Flow: flow, What: what})
	}
	return checks, other
}

// envList returns env as sorted NAME=VALUE entries.
func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// runBinary runs the program at bin with args in dir, with only the
// image's environment and runEnv, and returns its output and exit code.
func runBinary(ctx context.Context, img v1.Image, bin, dir string, runEnv map[string]string, args ...string) ([]byte, int, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, 0, err
	}
	env := mergeEnv(append([]string{}, cf.Config.Env...), envList(runEnv))
	wctx, cancel := context.WithTimeout(ctx, HealthCheckTimeout)
	defer cancel()
	cmd := exec.CommandContext(wctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second // a child holding its output must not hang the build
	out, err := cmd.CombinedOutput()
	if wctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		return out, 0, fmt.Errorf("run %s: %w", bin, errTimedOut)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out, ee.ExitCode(), nil
	}
	if err != nil {
		return out, 0, fmt.Errorf("run %s: %w", bin, err)
	}
	return out, 0, nil
}

// dockerEngine returns a client of the engine DOCKER_HOST (or the default
// socket) names, once it answered a ping within wait.
func dockerEngine(ctx context.Context, wait time.Duration) (*client.Client, error) {
	cl, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("no Docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if _, err := cl.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		host := cl.DaemonHost()
		cl.Close()
		return nil, fmt.Errorf("no Docker engine answers at %s: %w", host, err)
	}
	return cl, nil
}

// runInDocker loads img into the engine under a throwaway tag, runs its
// entrypoint with args as the image's user without a network, and returns
// the output and exit code. It removes the container and the tag.
func runInDocker(ctx context.Context, cl *client.Client, img v1.Image, runEnv map[string]string, args ...string) (out []byte, code int, err error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tag, err := name.NewTag("reeve-healthcheck:" + hex.EncodeToString(rnd[:]))
	if err != nil {
		return nil, 0, err
	}
	cleanup := func(f func(context.Context)) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		f(cctx)
	}

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.Write(tag, img, pw)) }()
	res, err := cl.ImageLoad(ctx, pr, client.ImageLoadWithQuiet(true))
	if err != nil {
		pr.CloseWithError(err)
		return nil, 0, fmt.Errorf("load the image into Docker: %w", err)
	}
	msg, err := io.ReadAll(res)
	res.Close()
	pr.Close()
	defer cleanup(func(ctx context.Context) {
		_, _ = cl.ImageRemove(ctx, tag.String(), client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("load the image into Docker: %w", err)
	}
	if bytes.Contains(msg, []byte(`"error"`)) {
		return nil, 0, fmt.Errorf("load the image into Docker: %s", strings.TrimSpace(string(msg)))
	}

	cf, err := img.ConfigFile()
	if err != nil {
		return nil, 0, err
	}
	created, err := cl.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image: tag.String(),
			Cmd:   args,
			Env:   envList(runEnv),
			User:  cf.Config.User,
		},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return nil, 0, fmt.Errorf("create the container: %w", err)
	}
	defer cleanup(func(ctx context.Context) {
		_, _ = cl.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := cl.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return nil, 0, fmt.Errorf("start the container: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, HealthCheckTimeout)
	defer cancel()
	wait := cl.ContainerWait(wctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-wait.Result:
		code = int(r.StatusCode)
		if r.Error != nil && r.Error.Message != "" {
			return nil, 0, fmt.Errorf("wait for the container: %s", r.Error.Message)
		}
	case err := <-wait.Error:
		if wctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			return nil, 0, fmt.Errorf("wait for the container: %w", errTimedOut)
		}
		return nil, 0, fmt.Errorf("wait for the container: %w", err)
	}
	logs, err := cl.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return nil, 0, fmt.Errorf("read the container's output: %w", err)
	}
	defer logs.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, logs); err != nil {
		return nil, 0, fmt.Errorf("read the container's output: %w", err)
	}
	return buf.Bytes(), code, nil
}
