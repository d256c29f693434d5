package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reevehq/reeve/internal/imagebuild"
)

type buildFlags struct {
	repo      string
	baseImage string
	platform  string
	env       []string
	allowEnv  []string
	files     []string
	tag       string
	source    string
	revision  string
	json      bool
}

func (c *CLI) buildCommand() *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build PATH --repo REGISTRY/NAME",
		Short: "Build a flow program into a container image and push it, without Docker",
		Long: "Build compiles the Go main package in PATH (a program that calls reeve.Main) for Linux:\n" +
			"static, -trimpath, reproducible. It saves every flow's spec, and pushes an image to\n" +
			"--repo that holds the program at /opt/reeve/bin/NAME (the entrypoint) and the specs at\n" +
			"/opt/reeve/flows/FLOW.json, runs as user 65532:65532 in /opt/reeve, and is labeled with\n" +
			"the source, the revision and every flow's spec hash (dev.reeve.flows).\n\n" +
			"No Docker engine is needed. The registry credentials are the ones docker login writes\n" +
			"(~/.docker/config.json, $DOCKER_CONFIG) and its credential helpers. Loopback and\n" +
			"private-network registries are spoken to over plain HTTP.\n\n" +
			"The same sources and flags give the same image digest. The tag defaults to a content\n" +
			"hash (the first 12 hex digits of the digest), and layers the registry already holds are\n" +
			"not uploaded again. It prints the image pinned by digest, then one line per flow.\n\n" +
			"For a --platform other than this machine's, the specs are saved by a second build of the\n" +
			"program for this machine. A comma-separated --platform list, like linux/amd64,linux/arm64,\n" +
			"builds one image per platform and pushes an OCI image index of them; the digest printed and\n" +
			"the default tag are then the index's.",
		Example: "  reeve build ./examples/etl --repo localhost:5000/flows\n" +
			"  reeve build ./cmd/myflows --repo ghcr.io/acme/flows --env LOG_LEVEL=debug --file config.yaml:/etc/myflows/config.yaml",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := imagebuild.Options{
				Dir:       args[0],
				Repo:      f.repo,
				BaseImage: f.baseImage,
				Platform:  f.platform,
				Env:       f.env,
				AllowEnv:  f.allowEnv,
				Tag:       f.tag,
				Source:    f.source,
				Revision:  f.revision,
			}
			if o.Repo == "" {
				return usagef("give the repository to push to with --repo, like --repo localhost:5000/flows or --repo ghcr.io/ORG/NAME")
			}
			if fi, err := os.Stat(o.Dir); err != nil || !fi.IsDir() {
				return usagef("%s is not a directory: give the directory of the flow program's main package, like ./cmd/myflows", o.Dir)
			}
			for _, s := range f.files {
				src, dst, ok := strings.Cut(s, ":")
				if !ok || src == "" || !strings.HasPrefix(dst, "/") {
					return usagef("--file %q: give SRC:DST, a file here and an absolute path in the image", s)
				}
				if abs, err := filepath.Abs(src); err == nil {
					src = abs
				}
				o.Files = append(o.Files, imagebuild.File{Src: src, Dst: dst})
			}
			if err := o.Validate(); err != nil {
				return usageError{err}
			}
			res, err := imagebuild.Build(cmd.Context(), o)
			if err != nil {
				return err
			}
			if f.json {
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
			if res.Index {
				fmt.Fprintf(c.stderr, "pushed %s (an image index of %d images, %.1f MB compressed in all)\n", res.Tag, len(res.Images), float64(res.Size)/1e6)
				for _, im := range res.Images {
					fmt.Fprintf(c.stderr, "  %s %s (%.1f MB)\n", im.Platform, im.Digest, float64(im.Size)/1e6)
				}
				return nil
			}
			fmt.Fprintf(c.stderr, "pushed %s (%s, %.1f MB compressed)\n", res.Tag, res.Platform, float64(res.Size)/1e6)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.repo, "repo", "", "the repository to push to, REGISTRY/NAME (required)")
	fl.StringVar(&f.baseImage, "base-image", "scratch", "the base image: scratch (empty, enough for the static program) or a reference pulled with your registry credentials")
	fl.StringVar(&f.platform, "platform", "", "the image's platform, linux/ARCH[/VARIANT], or a comma-separated list of them for an image index (default: linux on this machine's architecture)")
	fl.StringArrayVar(&f.env, "env", nil, "set NAME=VALUE in the image (repeatable); anyone who can pull the image can read it, so values that look like credentials are refused: use reeve secret set")
	fl.StringArrayVar(&f.allowEnv, "allow-env", nil, "let --env NAME through although it looks like a credential (repeatable)")
	fl.StringArrayVar(&f.files, "file", nil, "add the file SRC at the absolute path DST in the image, as SRC:DST (repeatable)")
	fl.StringVar(&f.tag, "tag", "", "the tag to push (default: a content hash of the image)")
	fl.StringVar(&f.source, "source", "", "the org.opencontainers.image.source label: the URL of the program's sources")
	fl.StringVar(&f.revision, "revision", "", "the org.opencontainers.image.revision label (default: the VCS revision go build stamps, when the tree has no uncommitted changes)")
	fl.BoolVar(&f.json, "json", false, "print the result as JSON")
	bindEnv(fl, "repo", "REEVE_BUILD_REPO")
	bindEnv(fl, "base-image", "REEVE_BUILD_BASE_IMAGE")
	bindEnv(fl, "platform", "REEVE_BUILD_PLATFORM")
	return cmd
}
