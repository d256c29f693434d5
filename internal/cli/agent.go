package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/agent"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/runner"
	"github.com/reevehq/reeve/internal/runner/docker"
	"github.com/reevehq/reeve/internal/runner/process"
)

func (c *CLI) agentCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run an agent, or list the agents that run flows",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  groupRun,
	}
	cmd.AddCommand(c.agentListCommand(), c.agentProcessCommand(), c.agentDockerCommand())
	return cmd
}

func (c *CLI) agentListCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List agents and when they were last seen",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			as, err := cl.Agents(cmd.Context())
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, api.Agents{Agents: as})
			}
			tf := c.times()
			t := newTable(c.stdout, "NAME", "LABELS", "KINDS", "LAST SEEN", "ID")
			for _, a := range as {
				kinds := strings.Join(a.StorageKinds, ",")
				if kinds == "" {
					kinds = "any"
				}
				t.row(a.Name, strings.Join(a.Labels, ","), kinds, tf.format(a.LastSeenAt), a.ID)
			}
			return t.flush()
		},
	}
	c.addClientFlags(cmd, &f, false)
	return cmd
}

// agentFlags are the flags of the commands that run an agent.
type agentFlags struct {
	conn           clientFlags
	name           string
	labels         []string
	maxRuns        int
	dataDir        string
	apiURL         string
	stopRunsOnExit bool
	stopGrace      time.Duration
	logFormat      string
	logLevel       string
}

func (c *CLI) agentProcessCommand() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "process",
		Short: "Run flow programs as processes on this machine (storage kind local)",
		Long: "reeve agent process registers an agent with the server, claims the flow runs its\n" +
			"labels cover, and runs each run's program (`PROGRAM execute`) as a child process,\n" +
			"shipping its stdout (INFO) and stderr (WARN) to the run's log.\n\n" +
			"A program that cannot start fails its run with the reason; a program that dies\n" +
			"mid-run has its run reported lost, and the server re-queues it.\n\n" +
			"On SIGINT or SIGTERM the agent stops claiming and exits, leaving its programs\n" +
			"running (they report by themselves); started again with the same --name and\n" +
			"--data-dir, it adopts those that still run and reports the others lost. With\n" +
			"--stop-runs-on-exit it stops them instead (SIGTERM, then SIGKILL after --stop-grace).\n\n" +
			"The token (--token, REEVE_TOKEN or reeve login's) must have the role agent or admin.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.runAgent(cmd, &f, process.Kind, func(_ context.Context, _ string, dataDir string) (runner.Runner, func(), error) {
				r, err := process.New(process.Config{Dir: filepath.Join(dataDir, "output")})
				return r, func() {}, err
			})
		},
	}
	c.addAgentFlags(cmd, &f)
	return cmd
}

// addAgentFlags adds the flags every agent command has.
func (c *CLI) addAgentFlags(cmd *cobra.Command, f *agentFlags) {
	fl := cmd.Flags()
	addConnFlags(fl, &f.conn)
	fl.StringVar(&f.name, "name", "", "the agent's name: an agent started again with the same name is the same agent (default: the host name)")
	fl.StringSliceVar(&f.labels, "labels", nil, "the labels of the flows the agent runs, comma-separated")
	fl.IntVar(&f.maxRuns, "max-runs", agent.DefaultMaxRuns(), "how many runs the agent runs at once; the default is 4 per CPU")
	fl.StringVar(&f.dataDir, "data-dir", "", "the agent's directory: records and output files of its running programs (default: agents/NAME in the data directory of reeve server)")
	fl.StringVar(&f.apiURL, "api-url", "", "the server URL the flow programs call, as REEVE_API_URL (default: --server)")
	fl.BoolVar(&f.stopRunsOnExit, "stop-runs-on-exit", false, "stop the flow programs when the agent exits, instead of leaving them running")
	fl.DurationVar(&f.stopGrace, "stop-grace", agent.DefaultStopGrace, "how long a stopped program has between SIGTERM and SIGKILL")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	bindEnv(fl, "name", "REEVE_AGENT_NAME")
	bindEnv(fl, "labels", "REEVE_AGENT_LABELS")
	bindEnv(fl, "max-runs", "REEVE_AGENT_MAX_RUNS")
	bindEnv(fl, "data-dir", "REEVE_AGENT_DATA_DIR")
	bindEnv(fl, "api-url", "REEVE_AGENT_API_URL")
	bindEnv(fl, "stop-runs-on-exit", "REEVE_AGENT_STOP_RUNS_ON_EXIT")
	bindEnv(fl, "stop-grace", "REEVE_AGENT_STOP_GRACE")
	bindEnv(fl, "log-format", "REEVE_LOG_FORMAT")
	bindEnv(fl, "log-level", "REEVE_LOG_LEVEL")
}

// newRunner makes an agent's runner once its flags are checked; the
// function it returns releases what the runner holds.
type newRunner func(ctx context.Context, name, dataDir string) (runner.Runner, func(), error)

// agentStorageKinds are the storage kinds each kind of agent runs: the
// server gives an agent only runs of flows stored so.
var agentStorageKinds = map[string][]string{
	process.Kind: {api.StorageLocal},
	docker.Kind:  {api.StorageDocker},
}

// runAgent checks the flags, makes the runner and runs the agent until
// the command's context ends. kind is the runner's kind (process.Kind,
// docker.Kind); it says which storage kinds the agent runs.
func (c *CLI) runAgent(cmd *cobra.Command, f *agentFlags, kind string, mk newRunner) error {
	log, err := newLogger(c.stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	storageKinds, ok := agentStorageKinds[kind]
	if !ok {
		return fmt.Errorf("agent kind %q: which storage kinds it runs is not known", kind)
	}
	if f.maxRuns < 1 {
		return usagef("--max-runs %d: give how many runs the agent may run at once, at least 1", f.maxRuns)
	}
	if f.stopGrace < 0 {
		return usagef("--stop-grace %v is negative", f.stopGrace)
	}
	name := strings.TrimSpace(f.name)
	if name == "" {
		if name, err = os.Hostname(); err != nil || name == "" {
			return usagef("no host name to name the agent by (%v): give --name", err)
		}
	}
	var labels []string
	for _, l := range f.labels {
		if l = strings.TrimSpace(l); l != "" {
			labels = append(labels, l)
		}
	}
	dataDir := f.dataDir
	if dataDir == "" {
		base, err := c.defaultDataDir()
		if err != nil {
			return usagef("no data directory for the agent: give --data-dir (REEVE_AGENT_DATA_DIR)")
		}
		dataDir = filepath.Join(base, "agents", fileName(name))
	}
	if dataDir, err = filepath.Abs(dataDir); err != nil {
		return usagef("--data-dir: %v", err)
	}
	if f.apiURL != "" && !strings.HasPrefix(f.apiURL, "http://") && !strings.HasPrefix(f.apiURL, "https://") {
		return usagef("--api-url %q does not start with http:// or https://", f.apiURL)
	}
	cl, err := c.connect(&f.conn)
	if err != nil {
		return err
	}
	r, release, err := mk(cmd.Context(), name, dataDir)
	if err != nil {
		return err
	}
	defer release()
	a, err := agent.New(agent.Config{
		Client:         cl,
		Runner:         r,
		Kind:           kind,
		Name:           name,
		Labels:         labels,
		StorageKinds:   storageKinds,
		MaxRuns:        f.maxRuns,
		DataDir:        dataDir,
		APIURL:         f.apiURL,
		StopRunsOnExit: f.stopRunsOnExit,
		StopGrace:      f.stopGrace,
		Logger:         log,
	})
	if err != nil {
		return usageError{err}
	}
	log.Info(kind+" agent starting", "server", cl.URL(), "data_dir", dataDir)
	err = a.Run(cmd.Context())
	if errors.Is(err, errs.ErrForbidden) || errors.Is(err, errs.ErrUnauthorized) {
		return fmt.Errorf("%w (an agent's token needs the role agent or admin: create one with `reeve token create NAME --role agent`)", err)
	}
	return err
}

// fileName makes a name usable as a directory name.
func fileName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == ':' {
			return '_'
		}
		return r
	}, name)
}
