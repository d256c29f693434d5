package docker

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/moby/moby/client"
)

// DefaultPullTimeout bounds a pull when Config.PullTimeout is 0: images
// can be large and registries slow, but a pull that takes this long is
// stuck.
const DefaultPullTimeout = 10 * time.Minute

// Kind is the runner's kind, in Saved records, and the storage kind it runs.
const Kind = "docker"

// PullPolicy says when the runner pulls a run's image.
type PullPolicy string

// The pull policies.
const (
	// PullMissing pulls an image only when the engine lacks it (the
	// default: a digest-pinned image never changes).
	PullMissing PullPolicy = "missing"
	// PullAlways pulls before every run (for images referenced by tag).
	PullAlways PullPolicy = "always"
	// PullNever never pulls: the image must be on the engine already.
	PullNever PullPolicy = "never"
)

// ParsePullPolicy parses a pull policy as a user writes it ("" is
// "missing").
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch p := PullPolicy(strings.ToLower(strings.TrimSpace(s))); p {
	case "":
		return PullMissing, nil
	case PullAlways, PullMissing, PullNever:
		return p, nil
	}
	return "", fmt.Errorf("pull policy %q is not one of always, missing (pull only images the engine lacks), never", s)
}

// Config configures the runner.
type Config struct {
	// Client is the Docker engine's client. Nil means a client from the
	// environment (DOCKER_HOST, DOCKER_API_VERSION, DOCKER_CERT_PATH,
	// DOCKER_TLS_VERIFY), which Close closes.
	Client *client.Client
	// Agent is the agent's name (required). It labels the containers the
	// runner starts, so that Find finds this agent's containers only.
	Agent string
	// Network is the Docker network the containers join; "" is the
	// engine's default bridge network. "host" shares the agent machine's
	// network (then a loopback API address needs no rewrite).
	Network string
	// Volumes are bind mounts like `docker run -v`:
	// HOST:CONTAINER[:ro].
	Volumes []string
	// Pull is when to pull a run's image; "" is PullMissing.
	Pull PullPolicy
	// APIURL, when set, is the REEVE_API_URL containers get, verbatim,
	// instead of the server URL of the claim (rewritten when loopback).
	APIURL string
	// Env is given to every container, under the run configuration's
	// variables and the environment contract's, which win (see
	// runner.Spec.Environ): the variables the agent provides to flows
	// (reeve.EnvFromAgent).
	Env map[string]string
	// PullTimeout bounds a pull of a run's image; 0 is DefaultPullTimeout.
	PullTimeout time.Duration
	// Keychain finds the credentials of a registry to pull from. Nil is
	// authn.DefaultKeychain (the agent user's ~/.docker/config.json or
	// $DOCKER_CONFIG, and its credential helpers).
	Keychain authn.Keychain
	// Logger receives the runner's own logs; nil discards them.
	Logger *slog.Logger
}

// Validate checks the configuration, naming the offending field.
func (c Config) Validate() error {
	if c.Agent == "" {
		return errors.New("docker runner: Config.Agent is empty: give the agent's name (it labels the agent's containers)")
	}
	if strings.ContainsAny(c.Agent, "\x00\n") {
		return fmt.Errorf("docker runner: Config.Agent %q holds a control character", c.Agent)
	}
	if _, err := ParsePullPolicy(string(c.Pull)); err != nil {
		return fmt.Errorf("docker runner: Config.Pull: %w", err)
	}
	for _, v := range c.Volumes {
		if err := checkVolume(v); err != nil {
			return fmt.Errorf("docker runner: Config.Volumes: %w", err)
		}
	}
	for k := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("docker runner: Config.Env: the variable name %q is not valid", k)
		}
	}
	if c.PullTimeout < 0 {
		return fmt.Errorf("docker runner: Config.PullTimeout %v is negative", c.PullTimeout)
	}
	if c.APIURL != "" {
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("docker runner: Config.APIURL %q is not an http(s) URL like http://10.0.0.5:4200", c.APIURL)
		}
	}
	return nil
}

// checkVolume checks a HOST:CONTAINER[:OPTIONS] bind.
func checkVolume(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("volume %q is not HOST:CONTAINER or HOST:CONTAINER:ro", v)
	}
	if !path.IsAbs(parts[1]) {
		return fmt.Errorf("volume %q: the container path %q is not absolute", v, parts[1])
	}
	return nil
}
