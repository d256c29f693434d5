package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/imagebuild"
)

// deployed is what reeve deploy --json prints.
type deployed struct {
	Image imagebuild.Result `json:"image"`
	Flows []api.Registered  `json:"flows"`
}

func (c *CLI) deployCommand() *cobra.Command {
	var (
		img    imageFlags
		rcf    runConfigFlags
		conn   clientFlags
		labels []string
	)
	cmd := &cobra.Command{
		Use:   "deploy PATH --repo REGISTRY/NAME [--project P]",
		Short: "Build, check and push a flow program's image, and register every flow it holds",
		Long: "Deploy does what reeve build does, then registers every flow of the program with the\n" +
			"server: the spec exactly as the image holds it, the image pinned by digest (docker\n" +
			"storage), the run configuration (--cpu, --memory, --executor, --workers, --run-env,\n" +
			"--run-platform) and --labels. --env and --platform are the image's, as in reeve build.\n\n" +
			healthCheckHelp + "The declared secrets are looked up in --project on the server, and the image must\n" +
			"have --run-platform when it is given.\n\n" +
			"The same sources and flags give the same image digest, and a flow whose spec, image,\n" +
			"labels and run configuration are those of its newest version is not registered again:\n" +
			"deploying unchanged code pushes no layer and registers nothing new. It prints one line\n" +
			"per flow, and the server's warnings (such as no agent having the flow's labels) on stderr.",
		Example: "  reeve deploy ./examples/etl --repo localhost:5000/flows --project default\n" +
			"  reeve deploy ./cmd/myflows --repo ghcr.io/acme/flows --labels gpu --memory 2Gi --run-env LOG_LEVEL=info --run-platform linux/arm64 --platform linux/arm64",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := img.options(cmd.Flags(), args[0])
			if err != nil {
				return err
			}
			rc, err := rcf.runConfig(o.AllowEnv)
			if err != nil {
				return err
			}
			o.RunEnv, o.RunPlatform = rc.Env, rc.Platform
			if err := o.Validate(); err != nil {
				return usageError{fmt.Errorf("--run-env or --run-platform: %w", err)}
			}
			cl, err := c.connect(&conn)
			if err != nil {
				return err
			}
			if o.HealthCheck != imagebuild.HealthCheckSkip {
				o.CheckSecrets = secretCheck(cl, conn.project)
			}
			res, err := c.build(cmd.Context(), o)
			if err != nil {
				return err
			}
			if !conn.json {
				fmt.Fprintln(c.stdout, res.Ref)
				writePushed(c.stderr, res)
			}
			out := deployed{Image: res}
			created := 0
			for _, f := range res.Flows {
				reg, err := cl.RegisterFlow(cmd.Context(), api.RegisterFlow{
					Project:   conn.project,
					Spec:      f.Spec,
					Storage:   api.Storage{Kind: "docker", Image: res.Ref},
					Labels:    labels,
					RunConfig: rc,
				})
				if err != nil {
					return fmt.Errorf("register flow %s (the image %s is pushed; deploy again to register the rest): %w", f.Name, res.Ref, err)
				}
				out.Flows = append(out.Flows, *reg)
				for _, w := range reg.Warnings {
					fmt.Fprintf(c.stderr, "warning: %s\n", w)
				}
				if conn.json {
					continue
				}
				if reg.Created {
					created++
					fmt.Fprintf(c.stdout, "registered %s version %d (new)\n", f.Name, reg.Version.Version)
				} else {
					fmt.Fprintf(c.stdout, "%s unchanged (version %d)\n", f.Name, reg.Version.Version)
				}
			}
			if conn.json {
				return printJSON(c.stdout, out)
			}
			if created == 0 {
				fmt.Fprintln(c.stdout, "nothing new registered")
			}
			return nil
		},
	}
	fl := cmd.Flags()
	img.add(fl)
	rcf.add(fl, "run-env", "run-platform")
	fl.StringSliceVar(&labels, "labels", nil, "labels agents must have to run the flows, added to the specs' (comma-separated, repeatable)")
	c.addClientFlags(cmd, &conn, true)
	return cmd
}
