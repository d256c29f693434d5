package docker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reevehq/reeve/internal/runner"
)

// ensureImage makes sure the engine has image (for platform, when set),
// pulling it as the pull policy says.
func (r *Runner) ensureImage(ctx context.Context, image string, platform *ocispec.Platform, note func(string)) error {
	if r.pull != PullAlways {
		present, err := r.hasImage(ctx, image, platform)
		if err != nil {
			return err
		}
		if present {
			return nil
		}
		if r.pull == PullNever {
			return fmt.Errorf("the image is not present on this engine and --pull never: pull it on the agent's machine (docker pull %s), or run the agent with --pull missing", image)
		}
	}
	// Before the pull, which may take minutes, so that the run's log says
	// what the run waits for.
	note(fmt.Sprintf("pulling the image %s ...", image))
	start := time.Now()
	if err := r.pullImage(ctx, image, platform); err != nil {
		return err
	}
	d := time.Since(start).Round(100 * time.Millisecond)
	r.log.InfoContext(ctx, "pulled image", "image", image, "duration", d)
	note(fmt.Sprintf("pulled the image %s in %v", image, d))
	return nil
}

// hasImage reports whether the engine has image, for platform when set.
func (r *Runner) hasImage(ctx context.Context, image string, platform *ocispec.Platform) (bool, error) {
	res, err := r.cl.ImageInspect(ctx, image)
	switch {
	case cerrdefs.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, r.engineError("look for the image on the engine", err)
	case platform != nil && (res.Os != platform.OS || res.Architecture != platform.Architecture):
		return false, nil // the engine has another platform's variant
	}
	return true, nil
}

// pullImage pulls image with the credentials the keychain has for its
// registry, and explains a failure.
func (r *Runner) pullImage(ctx context.Context, image string, platform *ocispec.Platform) error {
	ref, err := name.ParseReference(image)
	if err != nil {
		return fmt.Errorf("it is not an image reference (%v): deploy the flow again with reeve deploy", err)
	}
	auth, err := r.registryAuth(ctx, ref)
	if err != nil {
		return err
	}
	opts := client.ImagePullOptions{RegistryAuth: auth}
	if platform != nil {
		opts.Platforms = []ocispec.Platform{*platform}
	}
	timeout := r.cfg.PullTimeout
	if timeout <= 0 {
		timeout = DefaultPullTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := r.cl.ImagePull(pctx, image, opts)
	if err == nil {
		err = res.Wait(pctx) // drains the stream; its first error message
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil && errors.Is(pctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("pull: it took too long: the pull of %s did not end within %v, so the agent gave up on it: check the registry %s and how fast the engine's machine reaches it, or pull the image there beforehand (docker pull %s)", image, timeout, ref.Context().RegistryStr(), image)
	case ctx.Err() == nil && !client.IsErrConnectionFailed(err) && r.Check(ctx) != nil:
		// The engine went away during the pull, breaking its stream (an
		// EOF, which is not the registry's fault).
		return unreachable(r.cl.DaemonHost(), err)
	}
	return r.pullError(ctx, ref, platform, err)
}

// registryAuth returns the X-Registry-Auth value for ref's registry: the
// keychain's credentials, or "" for anonymous.
func (r *Runner) registryAuth(ctx context.Context, ref name.Reference) (string, error) {
	reg := ref.Context().Registry
	a, err := r.keychain.Resolve(reg)
	if err != nil {
		return "", fmt.Errorf("pull: find the credentials for %s: %w", reg.RegistryStr(), err)
	}
	if a == authn.Anonymous {
		return "", nil
	}
	cfg, err := authn.Authorization(ctx, a)
	if err != nil {
		return "", fmt.Errorf("pull: get the credentials for %s: %w", reg.RegistryStr(), err)
	}
	if *cfg == (authn.AuthConfig{}) {
		return "", nil
	}
	data, err := json.Marshal(registry.AuthConfig{
		Username:      cfg.Username,
		Password:      cfg.Password,
		Auth:          cfg.Auth,
		ServerAddress: reg.RegistryStr(),
		IdentityToken: cfg.IdentityToken,
		RegistryToken: cfg.RegistryToken,
	})
	if err != nil {
		return "", fmt.Errorf("pull: encode the credentials for %s: %w", reg.RegistryStr(), err)
	}
	return base64.URLEncoding.EncodeToString(data), nil
}

// pullError says why a pull failed, and what to do, naming the image.
func (r *Runner) pullError(ctx context.Context, ref name.Reference, platform *ocispec.Platform, err error) error {
	reg := ref.Context().RegistryStr()
	msg := strings.ToLower(err.Error())
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	switch {
	case client.IsErrConnectionFailed(err):
		return r.engineError("pull", err)
	case ctx.Err() != nil:
		return fmt.Errorf("pull: %w", ctx.Err())
	case cerrdefs.IsUnauthorized(err) || cerrdefs.IsPermissionDenied(err) ||
		has("unauthorized", "denied", "authentication required", "no basic auth credentials", "forbidden"):
		return fmt.Errorf("pull: access denied by the registry %s (%v): run `docker login %s` on the agent's machine as the agent's user, or check the image's name", reg, err, reg)
	case has("no matching manifest", "does not match the specified platform", "no match for platform"):
		want := "this engine's platform " + r.enginePlatform(ctx)
		if platform != nil {
			want = "the platform " + formatPlatform(platform) + " the run configuration asks for"
		}
		only := ""
		if ps := r.imagePlatforms(ctx, ref); len(ps) > 0 {
			only = ", only for " + strings.Join(ps, ", ")
		}
		return fmt.Errorf("pull: the image has no variant for %s%s (%v): build and push the image for that platform, or set the flow's platform to one it has", want, only, err)
	case cerrdefs.IsNotFound(err) || has("manifest unknown", "not found", "does not exist", "name unknown"):
		return fmt.Errorf("pull: the registry %s does not have it (%v): was it pushed? reeve deploy pushes it", reg, err)
	case has("connection refused", "no such host", "i/o timeout", "dial tcp", "network is unreachable", "tls handshake", "server gave http response", "connection reset", "context deadline exceeded", "eof"):
		return fmt.Errorf("pull: the registry %s is unreachable from the Docker engine (%v): check that it runs and that the engine's machine reaches it (DNS, firewall, proxy, insecure-registries)", reg, err)
	}
	return fmt.Errorf("pull: %w", err)
}

// enginePlatform names the engine's platform, like "linux/amd64".
func (r *Runner) enginePlatform(ctx context.Context) string {
	info, err := r.cl.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "(unknown)"
	}
	arch := info.Info.Architecture
	switch arch { // uname names, as Docker reports them
	case "x86_64":
		arch = "amd64"
	case "aarch64":
		arch = "arm64"
	}
	return info.Info.OSType + "/" + arch
}

// engineError wraps an error of the engine, explaining an unreachable one.
func (r *Runner) engineError(op string, err error) error {
	if client.IsErrConnectionFailed(err) {
		return unreachable(r.cl.DaemonHost(), err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func unreachable(host string, err error) error {
	return &unavailableError{
		msg: fmt.Sprintf("the Docker engine at %s is unreachable: %v; start Docker or set DOCKER_HOST", host, err),
		err: err,
	}
}

// unavailableError is the error of an engine that cannot be reached: its
// message is its own, and it wraps runner.ErrUnavailable and its cause.
type unavailableError struct {
	msg string
	err error
}

func (e *unavailableError) Error() string   { return e.msg }
func (e *unavailableError) Unwrap() []error { return []error{runner.ErrUnavailable, e.err} }

// imagePlatforms returns the platforms an image in a registry has, as far
// as the agent can tell (the registry may be the engine's to reach only):
// nil when it cannot.
func (r *Runner) imagePlatforms(ctx context.Context, ref name.Reference) []string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithTransport(tr), remote.WithAuthFromKeychain(r.keychain))
	if err != nil {
		return nil
	}
	var out []string
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return nil
		}
		for _, d := range m.Manifests {
			if d.Platform != nil && d.Platform.OS != "unknown" { // attestations
				out = append(out, d.Platform.String())
			}
		}
		return out
	}
	img, err := desc.Image()
	if err != nil {
		return nil
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil
	}
	return []string{cfg.Platform().String()}
}
