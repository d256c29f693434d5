// Package imagebuild makes daemonless image builds of flow programs: it
// compiles a Go main package that links the Reeve SDK into a static Linux
// binary, saves the spec of every flow it holds, layers both onto a base
// image and pushes the result to an OCI registry, without a Docker engine.
//
// A build is reproducible: the same sources, base image and options give
// the same image digest, so the default tag (a content hash) and the
// digest-pinned reference identify the program's version, and pushing an
// unchanged image uploads no layer.
//
// Several platforms give one image per platform, each with its own
// program binary and the same specs layer, gathered in an OCI image index
// that is pushed under the tag; the index digest is then the pinned
// reference.
//
// Before the push, the build runs the program's healthcheck command
// against the image (in a Docker container, or by running the binary built
// for this machine): every spec loads and every task resolves, persisted
// results have a store, declared environment variables are set, declared
// secrets exist on the server (Options.CheckSecrets) and the image has the
// run configuration's platform. A failure pushes nothing.
//
// The image holds
//
//	/opt/reeve/bin/NAME          the program (layer 1), the entrypoint
//	/opt/reeve/flows/FLOW.json   every flow's spec, and the --file extras (layer 2)
//
// runs as user 65532:65532 in /opt/reeve, and carries the OCI labels
// org.opencontainers.image.source and .revision (when known) and
// dev.reeve.flows, the JSON object of flow name to spec hash.
package imagebuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Where things are in the image, and who runs them.
const (
	BinDir   = "/opt/reeve/bin"   // the program: BinDir/NAME
	FlowsDir = "/opt/reeve/flows" // the specs: FlowsDir/FLOW.json
	WorkDir  = "/opt/reeve"       // the working directory
	UID      = 65532              // the non-root user and group the program runs as
)

// Label keys set on the image.
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelFlows    = "dev.reeve.flows" // JSON object: flow name → spec hash
)

// File is an extra file to put in the image.
type File struct {
	Src string // a regular file on this machine
	Dst string // an absolute path in the image
}

// Options say what to build and where to push it.
type Options struct {
	// Dir is the directory of the Go main package to build (it must link
	// the Reeve SDK and call reeve.Main). Required.
	Dir string
	// Repo is the repository to push to, e.g. "localhost:5000/flows".
	// Required.
	Repo string
	// BaseImage is the image the layers go on. "" or "static" is Reeve's
	// minimal static base made on this machine (users, /tmp, CA
	// certificates, time zones; see StaticBase), "scratch" the empty
	// image; anything else is a reference pulled with the user's registry
	// credentials.
	BaseImage string
	// Platform is the image's platform, "linux/ARCH[/VARIANT]", or a
	// comma-separated list of them for an image index with one image per
	// platform. The zero value is linux on this machine's architecture.
	Platform string
	// Env are K=V variables set in the image, after the base image's. One
	// that looks like a credential is refused (see CheckEnv) unless its
	// name is in AllowEnv.
	Env      []string
	AllowEnv []string
	// Files are extra files put into the image's second layer.
	Files []File
	// Tag is the tag pushed. "" is a content hash: the first 12 hex
	// digits of the image digest.
	Tag string
	// Source and Revision, when set, become the OCI labels
	// org.opencontainers.image.source and .revision. An empty Revision is
	// taken from the VCS revision go build stamped into the binary, when
	// the working tree had no uncommitted changes.
	Source, Revision string
	// Labels are extra image labels.
	Labels map[string]string

	// HealthCheck says where the health check runs, after the image is
	// made and before anything is pushed: HealthCheckAuto (the zero
	// value), HealthCheckDocker, HealthCheckBinary or HealthCheckSkip. It
	// runs the program's healthcheck command against the image's specs
	// with the server's result store and secrets from the server; a
	// failed check fails the build with a *HealthCheckError.
	HealthCheck string
	// RunEnv is the environment the run configuration gives each run: the
	// health check runs with it, on top of the image's.
	RunEnv map[string]string
	// RunPlatform is the platform the run configuration asks for,
	// "linux/ARCH[/VARIANT]"; the health check fails when the image does
	// not have it. "" checks nothing.
	RunPlatform string
	// CheckSecrets, if set, checks that the secrets each flow declares
	// are set on the server, as part of the health check.
	CheckSecrets SecretCheck
	// Progress receives the health check's lines; nil discards them.
	Progress io.Writer
}

// Validate reports the first field of o that is not valid, by name.
func (o *Options) Validate() error {
	if o.Dir == "" {
		return errors.New("imagebuild: Dir is empty: name the directory of the flow program's main package")
	}
	if o.Repo == "" {
		return errors.New("imagebuild: Repo is empty: name the repository to push to, like localhost:5000/flows")
	}
	if _, err := name.NewRepository(o.Repo); err != nil {
		return fmt.Errorf("imagebuild: Repo %q: %w", o.Repo, err)
	}
	if o.BaseImage != "" && o.BaseImage != StaticBase && o.BaseImage != ScratchBase {
		if _, err := name.ParseReference(o.BaseImage); err != nil {
			return fmt.Errorf("imagebuild: BaseImage %q: %w", o.BaseImage, err)
		}
	}
	if _, err := o.platforms(); err != nil {
		return err
	}
	for _, kv := range o.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("imagebuild: Env %q is not NAME=VALUE", kv)
		}
	}
	if err := CheckEnv(o.Env, o.AllowEnv); err != nil {
		return err
	}
	for _, f := range o.Files {
		if f.Src == "" || !path.IsAbs(f.Dst) || path.Clean(f.Dst) == "/" {
			return fmt.Errorf("imagebuild: Files: %q → %q: give a source file and an absolute destination path in the image", f.Src, f.Dst)
		}
		if d := path.Clean(f.Dst); strings.HasPrefix(d, BinDir+"/") || strings.HasPrefix(d, FlowsDir+"/") {
			return fmt.Errorf("imagebuild: Files: %q → %q: %s and %s hold the program and its specs: put the file elsewhere", f.Src, f.Dst, BinDir, FlowsDir)
		}
	}
	switch o.HealthCheck {
	case "", HealthCheckAuto, HealthCheckDocker, HealthCheckBinary, HealthCheckSkip:
	default:
		return fmt.Errorf("imagebuild: HealthCheck %q: use auto, docker, binary or skip", o.HealthCheck)
	}
	for k := range o.RunEnv {
		if k == "" || strings.ContainsAny(k, "= \t\n") {
			return fmt.Errorf("imagebuild: RunEnv: %q is not an environment variable name", k)
		}
	}
	if o.RunPlatform != "" {
		p, err := v1.ParsePlatform(o.RunPlatform)
		if err != nil || p.OS != "linux" || p.Architecture == "" || p.OSVersion != "" || len(p.Features) > 0 || strings.Count(o.RunPlatform, "/") > 2 {
			return fmt.Errorf("imagebuild: RunPlatform %q: give one linux platform, linux/ARCH[/VARIANT], like linux/amd64 or linux/arm64", o.RunPlatform)
		}
	}
	if o.Tag != "" {
		if _, err := name.NewTag(o.Repo + ":" + o.Tag); err != nil {
			return fmt.Errorf("imagebuild: Tag %q: %w", o.Tag, err)
		}
	}
	return nil
}

// platforms returns the parsed Platform list, in the order given,
// defaulting to linux on this machine's architecture.
func (o *Options) platforms() ([]*v1.Platform, error) {
	if o.Platform == "" {
		return []*v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}}, nil
	}
	var out []*v1.Platform
	seen := map[string]string{}
	for _, s := range strings.Split(o.Platform, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, fmt.Errorf("imagebuild: Platform %q: an empty platform in the list: give one linux platform, like linux/amd64, or a comma-separated list of them, like linux/amd64,linux/arm64", o.Platform)
		}
		p, err := v1.ParsePlatform(s)
		if err != nil {
			return nil, fmt.Errorf("imagebuild: Platform %q: %s: %w", o.Platform, s, err)
		}
		if p.OS != "linux" || p.Architecture == "" || p.OSVersion != "" || len(p.Features) > 0 {
			return nil, fmt.Errorf("imagebuild: Platform %q: %s: give one linux platform, like linux/amd64 or linux/arm64, or a comma-separated list of them", o.Platform, s)
		}
		k := p.String()
		if prev, ok := seen[k]; ok {
			return nil, fmt.Errorf("imagebuild: Platform %q: %s is given twice (as %s and %s): name each platform once", o.Platform, k, prev, s)
		}
		seen[k] = s
		out = append(out, p)
	}
	return out, nil
}

// Flow is one flow in a built image.
type Flow struct {
	Name string `json:"name"`
	Hash string `json:"spec_hash"` // "sha256:..."
	// Spec is the spec file exactly as the image holds it at
	// FlowsDir/NAME.json: what reeve deploy registers.
	Spec json.RawMessage `json:"-"`

	secrets []string // the secrets the flow declares
}

// Image is the image built for one platform.
type Image struct {
	Platform string `json:"platform"` // linux/ARCH[/VARIANT]
	Digest   string `json:"digest"`   // the image manifest's: sha256:...
	Size     int64  `json:"size"`     // compressed size: the sum of its layers' sizes, base included
}

// Result says what was pushed: an image for one platform, an image index
// for several.
type Result struct {
	Ref       string            `json:"ref"`       // what was pushed pinned by digest: REPO@sha256:...
	Tag       string            `json:"tag"`       // the tag pushed with it
	Digest    string            `json:"digest"`    // the image's, or for several platforms the index's: sha256:...
	Platform  string            `json:"platform"`  // linux/ARCH[/VARIANT]; for several, the comma-separated list
	Platforms []string          `json:"platforms"` // each platform, in the order given
	Images    []Image           `json:"images"`    // the image of each platform, in the same order
	Index     bool              `json:"index"`     // whether Ref is an image index (several platforms)
	Size      int64             `json:"size"`      // compressed size: the sum of the images' sizes
	Flows     []Flow            `json:"flows"`     // by name
	Binary    string            `json:"binary"`    // the program's path in the image
	Labels    map[string]string `json:"labels"`    // the first image's (every image has the same)
	// HealthCheck says where the health check ran before the push:
	// "docker", "binary", or "skipped".
	HealthCheck string `json:"health_check"`
}

// Build compiles the flow program in o.Dir, saves its flows' specs, makes
// the image, runs the health check (see Options.HealthCheck) and pushes
// the image to o.Repo with the user's registry credentials (the Docker
// config file and its credential helpers). When the health check fails,
// nothing is pushed and the error is a *HealthCheckError.
func Build(ctx context.Context, o Options) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	plats, _ := o.platforms()
	tmp, err := os.MkdirTemp("", "reeve-build-")
	if err != nil {
		return Result{}, fmt.Errorf("build: %w", err)
	}
	defer os.RemoveAll(tmp)

	progs := make([]*program, len(plats))
	for i, plat := range plats {
		if progs[i], err = compile(ctx, o.Dir, plat, tmp); err != nil {
			return Result{}, err
		}
	}
	// The specs come from the same sources for every platform: save them
	// once, with the binary built for this machine when there is one.
	si := slices.IndexFunc(plats, func(p *v1.Platform) bool {
		return p.OS == runtime.GOOS && p.Architecture == runtime.GOARCH
	})
	si = max(si, 0)
	flows, specDir, err := saveSpecs(ctx, o.Dir, progs[si], plats[si], tmp)
	if err != nil {
		return Result{}, err
	}
	imgs := make([]v1.Image, len(plats))
	for i, plat := range plats {
		if imgs[i], err = assemble(ctx, o, plat, progs[i], flows, specDir); err != nil {
			return Result{}, err
		}
	}
	checked, err := healthCheck(ctx, o, plats, imgs, progs, flows, specDir)
	if err != nil {
		return Result{}, err
	}
	res, err := push(ctx, o, plats, imgs, progs[0], flows)
	if err != nil {
		return Result{}, err
	}
	res.HealthCheck = checked
	return res, nil
}

// flowsLabel is the value of the dev.reeve.flows label.
func flowsLabel(flows []Flow) string {
	m := make(map[string]string, len(flows))
	for _, f := range flows {
		m[f.Name] = f.Hash
	}
	b, _ := json.Marshal(m) // keys sorted: deterministic
	return string(b)
}
