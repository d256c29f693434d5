package reeve

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/execute"
	"github.com/reevehq/reeve/internal/spec"
	"github.com/reevehq/reeve/internal/state"
)

// The environment of the execute command, set by the agent that starts it.
const (
	envAPIURL       = "REEVE_API_URL"
	envAPIToken     = "REEVE_API_TOKEN"
	envFlowRunID    = "REEVE_FLOW_RUN_ID"
	envMaxRetryWait = "REEVE_MAX_RETRY_WAIT"
)

// executeCommand runs one flow run for a server: the agent starts the
// program with `execute` and the run's environment.
func (p *program) executeCommand() *cobra.Command {
	var maxRetryWait time.Duration
	c := &cobra.Command{
		Use:   "execute",
		Short: "Run one flow run for a Reeve server (agents start this; see REEVE_FLOW_RUN_ID)",
		Long: "Run the flow run REEVE_FLOW_RUN_ID of the Reeve server at REEVE_API_URL with the run token\n" +
			"REEVE_API_TOKEN: check that this program was built for the run's registered spec, run it,\n" +
			"send task-run states, logs and heartbeats, and write its final state. Agents start it;\n" +
			"exits 0 when the run succeeded, was cancelled, or was re-queued for a long retry.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			env := map[string]string{}
			for _, name := range []string{envAPIURL, envAPIToken, envFlowRunID} {
				v := strings.TrimSpace(os.Getenv(name))
				if v == "" {
					return usageError{fmt.Errorf("%s is not set: the execute command runs a flow run for a Reeve server, and the agent that starts it sets %s, %s and %s; to run a flow here, use the run command",
						name, envAPIURL, envAPIToken, envFlowRunID)}
				}
				env[name] = v
			}
			if !cmd.Flags().Changed("max-retry-wait") {
				if v := os.Getenv(envMaxRetryWait); v != "" {
					d, err := time.ParseDuration(v)
					if err != nil || d < 0 {
						return usageError{fmt.Errorf("%s=%q: want a duration such as 60s or 5m", envMaxRetryWait, v)}
					}
					maxRetryWait = d
				}
			}
			cl, err := client.New(env[envAPIURL], env[envAPIToken], client.WithUserAgent("reeve-runner"))
			if err != nil {
				return usageError{err}
			}
			flows := make(map[string]execute.Flow, len(p.flows))
			for _, f := range p.flows {
				hash, err := f.SpecHash()
				flows[f.Name()] = execute.Flow{Graph: &f.g, SpecHash: hash, Err: err}
			}
			out, err := execute.Run(cmd.Context(), execute.Config{
				Client:       cl,
				FlowRunID:    env[envFlowRunID],
				Flows:        flows,
				MaxRetryWait: maxRetryWait,
				Stderr:       p.stderr,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(p.stdout, "flow run %s: %s%s\n", env[envFlowRunID], out.State, peakMemory())
			switch out.State.Kind {
			case state.Success, state.Scheduled, state.Cancelled:
				return nil
			}
			return exitError{exitFailed}
		},
	}
	c.Flags().DurationVar(&maxRetryWait, "max-retry-wait", execute.DefaultMaxRetryWait,
		"the longest retry delay this runner waits out itself; a task retrying later re-queues the run ("+envMaxRetryWait+")")
	return c
}

// registerCommand registers the program's flows with a server, with the
// program itself (its absolute path) as their storage.
func (p *program) registerCommand() *cobra.Command {
	var server, project, token, only string
	var labels []string
	c := &cobra.Command{
		Use:   "register --server URL --project P",
		Short: "Register this program's flows with a Reeve server, to run from this program's path",
		Long: "Register every flow of this program (or --flow NAME) with the Reeve server: its spec,\n" +
			"and this program's absolute path for process agents on this machine. Registering an\n" +
			"unchanged flow changes nothing; a changed one becomes its next version.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" {
				server = os.Getenv(envAPIURL)
			}
			if token == "" {
				token = os.Getenv(envAPIToken)
			}
			if server == "" {
				return usageError{fmt.Errorf("which server? give --server URL (or set %s)", envAPIURL)}
			}
			if project == "" {
				return usageError{errors.New("which project? give --project NAME (\"default\" is the server's default project)")}
			}
			names := p.names()
			if only != "" {
				if _, ok := p.byName[only]; !ok {
					return usageError{fmt.Errorf("no flow named %q in this program; it has: %s", only, orNone(names))}
				}
				names = []string{only}
			}
			path, err := programPath()
			if err != nil {
				return err
			}
			cl, err := client.New(server, token, client.WithUserAgent("reeve-register"))
			if err != nil {
				return usageError{err}
			}
			var clean []string
			for _, l := range labels {
				if l = strings.TrimSpace(l); l != "" {
					clean = append(clean, l)
				}
			}
			for _, name := range names {
				s, err := p.byName[name].toSpec()
				if err != nil {
					return usageError{fmt.Errorf("flow %q: %w", name, err)}
				}
				data, err := spec.Encode(s)
				if err != nil {
					return fmt.Errorf("flow %q: %w", name, err)
				}
				reg, err := cl.RegisterFlow(cmd.Context(), api.RegisterFlow{
					Project: project,
					Spec:    json.RawMessage(data),
					Storage: api.Storage{Kind: "local", Path: path},
					Labels:  clean,
				})
				if err != nil {
					return fmt.Errorf("register flow %q: %w", name, err)
				}
				what := "unchanged"
				if reg.Created {
					what = "created"
				}
				fmt.Fprintf(p.stdout, "%s\tversion %d\t%s\t%s\n", name, reg.Version.Version, what, reg.Version.SpecHash)
				for _, w := range reg.Warnings {
					fmt.Fprintf(p.stderr, "warning: flow %s: %s\n", name, w)
				}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&server, "server", "", "the Reeve server's URL (default "+envAPIURL+")")
	fl.StringVar(&project, "project", "", "the project to register the flows in")
	fl.StringVar(&token, "token", "", "an API token that may register flows (default "+envAPIToken+")")
	fl.StringSliceVar(&labels, "labels", nil, "labels agents must have to run the flows, added to each flow's own (a,b)")
	fl.StringVar(&only, "flow", "", "register only this flow")
	return c
}

// programPath is the absolute, symlink-resolved path of this program.
func programPath() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program's path: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return "", fmt.Errorf("find this program's path: %w", err)
	}
	return filepath.Abs(exe)
}

// peakMemory says how much memory this process used at most, as
// " (peak memory 24.7 MiB)", where the system tells (Linux: VmHWM), else "".
func peakMemory() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kib); err == nil {
				return fmt.Sprintf(" (peak memory %.1f MiB)", float64(kib)/1024)
			}
		}
	}
	return ""
}
