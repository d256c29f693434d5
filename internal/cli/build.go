package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/imagebuild"
)

// imageFlags are the flags of reeve build and reeve deploy that say what
// image to build, where to push it and how to check it.
type imageFlags struct {
	repo            string
	baseImage       string
	platform        string
	env             []string
	allowEnv        []string
	files           []string
	tag             string
	source          string
	revision        string
	healthcheck     string
	skipHealthcheck bool
}

// add adds the flags to fl.
func (f *imageFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.repo, "repo", "", "the repository to push to, REGISTRY/NAME (required)")
	fl.StringVar(&f.baseImage, "base-image", imagebuild.StaticBase, "the base image: static (Reeve's minimal base, made on this machine: users, /tmp, CA certificates, time zones), scratch (empty, enough for the static program), or a reference pulled with your registry credentials")
	fl.StringVar(&f.platform, "platform", "", "the image's platform, linux/ARCH[/VARIANT], or a comma-separated list of them for an image index (default: linux on this machine's architecture)")
	fl.StringArrayVar(&f.env, "env", nil, "set NAME=VALUE in the image (repeatable); anyone who can pull the image can read it, so values that look like credentials are refused: use reeve secret set")
	fl.StringArrayVar(&f.allowEnv, "allow-env", nil, "let --env (and deploy's --run-env) NAME through although it looks like a credential (repeatable)")
	fl.StringArrayVar(&f.files, "file", nil, "add the file or directory SRC at the absolute path DST in the image, as SRC:DST, root's and read-only (repeatable)")
	fl.StringVar(&f.tag, "tag", "", "the tag to push (default: a content hash of the image)")
	fl.StringVar(&f.source, "source", "", "the org.opencontainers.image.source label: the URL of the program's sources")
	fl.StringVar(&f.revision, "revision", "", "the org.opencontainers.image.revision label (default: the VCS revision go build stamps, when the tree has no uncommitted changes)")
	fl.StringVar(&f.healthcheck, "healthcheck", imagebuild.HealthCheckAuto, "where the health check runs before the push: auto (a Docker container when an engine answers, else the binary when the image is for this machine's platform), docker or binary")
	fl.BoolVar(&f.skipHealthcheck, "skip-healthcheck", false, "push without the health check (prints a warning)")
	bindEnv(fl, "repo", "REEVE_BUILD_REPO")
	bindEnv(fl, "base-image", "REEVE_BUILD_BASE_IMAGE")
	bindEnv(fl, "platform", "REEVE_BUILD_PLATFORM")
	bindEnv(fl, "healthcheck", "REEVE_BUILD_HEALTHCHECK")
}

// options returns the build options for the program in dir, checked.
func (f *imageFlags) options(fl *pflag.FlagSet, dir string) (imagebuild.Options, error) {
	o := imagebuild.Options{
		Dir:         dir,
		Repo:        f.repo,
		BaseImage:   f.baseImage,
		Platform:    f.platform,
		Env:         f.env,
		AllowEnv:    f.allowEnv,
		Tag:         f.tag,
		Source:      f.source,
		Revision:    f.revision,
		HealthCheck: f.healthcheck,
	}
	if o.Repo == "" {
		return o, usagef("give the repository to push to with --repo, like --repo localhost:5000/flows or --repo ghcr.io/ORG/NAME")
	}
	if fi, err := os.Stat(o.Dir); err != nil || !fi.IsDir() {
		return o, usagef("%s is not a directory: give the directory of the flow program's main package, like ./cmd/myflows", o.Dir)
	}
	for _, s := range f.files {
		src, dst, ok := strings.Cut(s, ":")
		if !ok || src == "" || !strings.HasPrefix(dst, "/") {
			return o, usagef("--file %q: give SRC:DST, a file here and an absolute path in the image", s)
		}
		if abs, err := filepath.Abs(src); err == nil {
			src = abs
		}
		o.Files = append(o.Files, imagebuild.File{Src: src, Dst: dst})
	}
	if f.skipHealthcheck {
		if fl.Changed("healthcheck") {
			return o, usagef("--skip-healthcheck and --healthcheck %s: give one of them", f.healthcheck)
		}
		o.HealthCheck = imagebuild.HealthCheckSkip
	} else if o.HealthCheck == imagebuild.HealthCheckSkip {
		return o, usagef("--healthcheck skip: give --skip-healthcheck instead")
	}
	if err := o.Validate(); err != nil {
		return o, usageError{err}
	}
	return o, nil
}

// build runs the build of o, with the health check's lines (or the
// warning that there is none) on stderr.
func (c *CLI) build(ctx context.Context, o imagebuild.Options) (imagebuild.Result, error) {
	if o.HealthCheck == imagebuild.HealthCheckSkip {
		fmt.Fprintln(c.stderr, "warning: skipping the health check: the image is pushed without proof that its flows load and have what they declare")
	}
	o.Progress = c.stderr
	res, err := imagebuild.Build(ctx, o)
	var hce *imagebuild.HealthCheckError
	if errors.As(err, &hce) {
		// Its lines are on stderr already.
		return res, fmt.Errorf("the health check of %s failed (%d of %d checks, above), so nothing was pushed. %s",
			hce.Image, len(hce.Failed), hce.Total, hce.Advice())
	}
	return res, err
}

// writePushed says on w what was pushed.
func writePushed(w io.Writer, res imagebuild.Result) {
	if res.Index {
		fmt.Fprintf(w, "pushed %s (an image index of %d images, %.1f MB compressed in all)\n", res.Tag, len(res.Images), float64(res.Size)/1e6)
		for _, im := range res.Images {
			fmt.Fprintf(w, "  %s %s (%.1f MB)\n", im.Platform, im.Digest, float64(im.Size)/1e6)
		}
		return
	}
	fmt.Fprintf(w, "pushed %s (%s, %.1f MB compressed)\n", res.Tag, res.Platform, float64(res.Size)/1e6)
}

// secretCheck checks declared secrets against the project's secrets on
// the server, listed once.
func secretCheck(cl *client.Client, project string) imagebuild.SecretCheck {
	var have map[string]bool
	return func(ctx context.Context, flow string, names []string) ([]imagebuild.Check, error) {
		if have == nil {
			ss, err := cl.Secrets(ctx, project)
			if err != nil {
				return nil, fmt.Errorf("list the secrets of project %s: %w", project, err)
			}
			have = map[string]bool{}
			for _, s := range ss {
				have[s.Name] = true
			}
		}
		out := make([]imagebuild.Check, 0, len(names))
		for _, n := range names {
			if have[n] {
				out = append(out, imagebuild.Check{OK: true, Flow: flow, What: fmt.Sprintf("secret %s is set in project %s", n, project)})
			} else {
				out = append(out, imagebuild.Check{Flow: flow, What: fmt.Sprintf("secret %s is not set in project %s: reeve secret set %s --project %s", n, project, n, project)})
			}
		}
		return out, nil
	}
}

// healthCheckHelp is what the help of build and deploy says of the health check.
const healthCheckHelp = "Before the push, the build runs the program's healthcheck command against the image:\n" +
	"in a Docker container when an engine answers (DOCKER_HOST, or the default socket), else\n" +
	"by running the binary built for this machine, with only the image's environment, when the\n" +
	"image is for this machine's platform (--healthcheck docker or binary picks one). It checks\n" +
	"that every spec loads in that binary and every task resolves, that checkpointed tasks have\n" +
	"a result store (the server's, reeve://server, for flows that name none), that declared\n" +
	"environment variables are set in the image or come from the agent, that declared secrets\n" +
	"are set on the server (when there is one) and that the image has the run configuration's\n" +
	"platform. It prints one line per check on stderr; a failure names the flow and the fix, and\n" +
	"nothing is pushed. --skip-healthcheck pushes without it.\n"

func (c *CLI) buildCommand() *cobra.Command {
	var (
		f       imageFlags
		conn    clientFlags
		project string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "build PATH --repo REGISTRY/NAME",
		Short: "Build a flow program into a container image, check it and push it, without Docker",
		Long: "Build compiles the Go main package in PATH (a program that calls reeve.Main) for Linux:\n" +
			"static, -trimpath, reproducible. It saves every flow's spec, and pushes an image to\n" +
			"--repo that holds the program at /opt/reeve/bin/NAME (the entrypoint) and the specs at\n" +
			"/opt/reeve/flows/FLOW.json, runs as user 65532:65532 in /opt/reeve, and is labeled with\n" +
			"the source, the revision and every flow's spec hash (dev.reeve.flows).\n\n" +
			"No Docker engine is needed. The registry credentials are the ones docker login writes\n" +
			"(~/.docker/config.json, $DOCKER_CONFIG) and its credential helpers. Loopback and\n" +
			"private-network registries are spoken to over plain HTTP.\n\n" +
			healthCheckHelp + "With --server (REEVE_SERVER), the declared secrets are looked up in --project on\n" +
			"that server.\n\n" +
			"The same sources and flags give the same image digest. The tag defaults to a content\n" +
			"hash (the first 12 hex digits of the digest), and layers the registry already holds are\n" +
			"not uploaded again. It prints the image pinned by digest, then one line per flow.\n\n" +
			"For a --platform other than this machine's, the specs are saved by a second build of the\n" +
			"program for this machine. A comma-separated --platform list, like linux/amd64,linux/arm64,\n" +
			"builds one image per platform and pushes an OCI image index of them; the digest printed and\n" +
			"the default tag are then the index's. To register the flows too, use reeve deploy.",
		Example: "  reeve build ./examples/etl --repo localhost:5000/flows\n" +
			"  reeve build ./cmd/myflows --repo ghcr.io/acme/flows --env LOG_LEVEL=debug --file config.yaml:/etc/myflows/config.yaml",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := f.options(cmd.Flags(), args[0])
			if err != nil {
				return err
			}
			if conn.server != "" && o.HealthCheck != imagebuild.HealthCheckSkip {
				cl, err := c.connect(&conn)
				if err != nil {
					return err
				}
				o.CheckSecrets = secretCheck(cl, project)
			}
			res, err := c.build(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.stdout, res)
			}
			fmt.Fprintln(c.stdout, res.Ref)
			t := newTable(c.stdout, "FLOW", "SPEC HASH")
			for _, fl := range res.Flows {
				t.row(fl.Name, fl.Hash)
			}
			if err := t.flush(); err != nil {
				return err
			}
			writePushed(c.stderr, res)
			return nil
		},
	}
	fl := cmd.Flags()
	f.add(fl)
	addConnFlags(fl, &conn)
	fl.StringVarP(&project, "project", "p", "default", "with --server: the project whose secrets the health check looks for")
	bindEnv(fl, "project", "REEVE_PROJECT")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
