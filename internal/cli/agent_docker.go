package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reevehq/reeve/internal/runner"
	"github.com/reevehq/reeve/internal/runner/docker"
)

func (c *CLI) agentDockerCommand() *cobra.Command {
	var (
		f       agentFlags
		network string
		volumes []string
		pull    string
	)
	cmd := &cobra.Command{
		Use:   "docker",
		Short: "Run flow programs as Docker containers (storage kind docker)",
		Long: "reeve agent docker registers an agent with the server, claims the flow runs its labels\n" +
			"cover, and runs each run in a container of the flow's image (as reeve deploy pushed it,\n" +
			"pinned by digest) through the Docker Engine API (DOCKER_HOST, or the default socket).\n\n" +
			"Images are pulled with your registry credentials (docker login's config file and its\n" +
			"credential helpers) as --pull says: missing (the default) pulls an image the engine\n" +
			"lacks, always pulls every time, never only uses images already there.\n\n" +
			"Each container gets the run's environment (REEVE_API_URL, a token for this run only,\n" +
			"REEVE_FLOW_RUN_ID and the flow's run configuration), the flow's CPU and memory limits,\n" +
			"and labels naming the agent and the run (dev.reeve.agent, dev.reeve.flow-run-id,\n" +
			"dev.reeve.attempt). Its output goes to the run's log; it is removed once it exits.\n\n" +
			"A server address on loopback (like http://127.0.0.1:4200) cannot be reached from a\n" +
			"container: the agent gives containers the address of the Docker network's gateway on\n" +
			"the same port instead, relaying it to the server when the server listens on loopback\n" +
			"only, and says so in each run's log. --api-url sets the address containers use instead;\n" +
			"--network host needs no rewriting.\n\n" +
			"A run whose image cannot be pulled, whose container is killed for running out of\n" +
			"memory, or that exits before its runner started fails with the reason. On SIGINT or\n" +
			"SIGTERM the agent exits and leaves its containers running; started again with the same\n" +
			"--name, it finds them by their labels and watches them again, reports the runs of\n" +
			"those that ended lost (the server runs them again) and removes what is left of them.\n\n" +
			"The token (--token, REEVE_TOKEN or reeve login's) must have the role agent or admin.",
		Example: "  reeve agent docker --labels docker\n" +
			"  reeve agent docker --labels gpu --network flows --volume /srv/data:/data --pull always",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			policy, err := docker.ParsePullPolicy(pull)
			if err != nil {
				return usagef("--pull %q: give missing (pull the images the engine lacks, the default), always or never", pull)
			}
			return c.runAgent(cmd, &f, docker.Kind, func(ctx context.Context, name, _ string) (runner.Runner, func(), error) {
				r, err := docker.New(ctx, docker.Config{
					Agent:   name,
					Network: network,
					Volumes: volumes,
					Pull:    policy,
					APIURL:  f.apiURL,
				})
				if err != nil {
					return nil, nil, err
				}
				return r, func() { r.Close() }, nil
			})
		},
	}
	c.addAgentFlags(cmd, &f)
	fl := cmd.Flags()
	// Word the common flags for containers (keeping their variables' names).
	for flag, usage := range map[string]string{
		"api-url":           "the server URL containers call, as REEVE_API_URL, used as given (default: --server, with a loopback address rewritten to the Docker network's gateway)",
		"data-dir":          "the agent's directory: records of its running containers (default: agents/NAME in the data directory of reeve server)",
		"stop-grace":        "how long a stopped container has between SIGTERM and SIGKILL",
		"stop-runs-on-exit": "stop the containers when the agent exits, instead of leaving them running",
	} {
		f := fl.Lookup(flag)
		if i := strings.LastIndex(f.Usage, " ["); i >= 0 {
			usage += f.Usage[i:]
		}
		f.Usage = usage
	}
	fl.StringVar(&network, "network", "", "the Docker network the containers join (default: the engine's default bridge; host shares this machine's network)")
	fl.StringArrayVar(&volumes, "volume", nil, "mount HOST:CONTAINER[:ro] into every container, like docker run -v (repeatable)")
	fl.StringVar(&pull, "pull", "missing", "when to pull a run's image: missing, always or never")
	bindEnv(fl, "network", "REEVE_AGENT_NETWORK")
	bindEnv(fl, "pull", "REEVE_AGENT_PULL")
	return cmd
}
