package cli

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reevehq/reeve/internal/runner"
	"github.com/reevehq/reeve/internal/runner/docker"
)

func (c *CLI) agentDockerCommand() *cobra.Command {
	var (
		f           agentFlags
		network     string
		volumes     []string
		pull        string
		pullTimeout time.Duration
		envs        []string
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
			"Unlike a process agent, a Docker agent does not pass its own environment to the flow\n" +
			"programs: --env NAME=VALUE gives every container a variable (the variables flows declare\n" +
			"with reeve.EnvFromAgent), and --env NAME the agent's own value of NAME. The flow's run\n" +
			"configuration (--run-env) wins over them.\n\n" +
			"A server address on loopback (like http://127.0.0.1:4200) cannot be reached from a\n" +
			"container: the agent gives containers the address of the Docker network's gateway on\n" +
			"the same port instead, relaying it to the server unless the server listens on all\n" +
			"addresses, and says so in each run's log. --api-url sets the address containers use instead;\n" +
			"--network host needs no rewriting. An https server address on loopback is left as it is\n" +
			"(the certificate would not match another address): give --api-url.\n\n" +
			"A run whose image cannot be pulled, whose container is killed for running out of\n" +
			"memory, or that exits before its runner started fails with the reason. On SIGINT or\n" +
			"SIGTERM the agent exits and leaves its containers running; started again with the same\n" +
			"--name, it finds them by their labels and watches them again, reports the runs of\n" +
			"those that ended lost (the server runs them again) and removes what is left of them.\n\n" +
			"The token (--token, REEVE_TOKEN or reeve login's) must have the role agent or admin.",
		Example: "  reeve agent docker --labels docker\n" +
			"  reeve agent docker --labels gpu --network flows --volume /srv/data:/data --pull always\n" +
			"  reeve agent docker --labels eu --env REGION=eu-west-1 --env AWS_PROFILE",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			policy, err := docker.ParsePullPolicy(pull)
			if err != nil {
				return usagef("--pull %q: give missing (pull the images the engine lacks, the default), always or never", pull)
			}
			if pullTimeout <= 0 {
				return usagef("--pull-timeout %v: give how long a pull may take, like 10m", pullTimeout)
			}
			env, err := parseAgentEnv(envs, os.LookupEnv)
			if err != nil {
				return err
			}
			return c.runAgent(cmd, &f, docker.Kind, func(ctx context.Context, name, _ string) (runner.Runner, func(), error) {
				r, err := docker.New(ctx, docker.Config{
					Agent:       name,
					Network:     network,
					Volumes:     volumes,
					Pull:        policy,
					PullTimeout: pullTimeout,
					APIURL:      f.apiURL,
					Env:         env,
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
	fl.DurationVar(&pullTimeout, "pull-timeout", docker.DefaultPullTimeout, "how long a pull of a run's image may take before the run fails")
	fl.StringArrayVar(&envs, "env", nil, "give every container the variable NAME=VALUE, or NAME with the agent's own value (repeatable); the run configuration's variables win")
	bindEnv(fl, "network", "REEVE_AGENT_NETWORK")
	bindEnv(fl, "pull", "REEVE_AGENT_PULL")
	bindEnv(fl, "pull-timeout", "REEVE_AGENT_PULL_TIMEOUT")
	return cmd
}

// parseAgentEnv parses the --env flags of a Docker agent: NAME=VALUE, or
// NAME for the value lookup (the agent's environment) has, which must have
// it.
func parseAgentEnv(flags []string, lookup func(string) (string, bool)) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	env := make(map[string]string, len(flags))
	for _, f := range flags {
		name, value, ok := strings.Cut(f, "=")
		if name == "" || strings.ContainsAny(name, "\x00") || strings.TrimSpace(name) != name {
			return nil, usagef("--env %q: give NAME=VALUE, or NAME for the agent's own value of NAME", f)
		}
		if !ok {
			if value, ok = lookup(name); !ok {
				return nil, usagef("--env %s: the agent's environment has no %s: set it, or give --env %s=VALUE", name, name, name)
			}
		}
		env[name] = value
	}
	return env, nil
}
