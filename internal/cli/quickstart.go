package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/agent"
	"github.com/reevehq/reeve/internal/result/apiblob"
	"github.com/reevehq/reeve/internal/runner/process"
	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/server"
	"github.com/reevehq/reeve/internal/spec"
	"github.com/reevehq/reeve/internal/state"
)

// quickstartExamples are the example flow programs quickstart builds and
// registers, and the flow it runs.
var quickstartExamples = []string{"etl", "checkpoint", "secrets"}

const quickstartFlow = "etl"

func (c *CLI) quickstartCommand() *cobra.Command {
	var (
		keep bool
		dir  string
	)
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Run Reeve end to end on this machine: server, agent, the example flows and a run",
		Long: "quickstart starts a Reeve server on a free local port with a temporary SQLite store, and\n" +
			"a process agent; it builds the example flow programs (./examples, so run it from a\n" +
			"checkout of Reeve), registers their flows with the server (each program registers\n" +
			"itself), runs the etl flow, shows its task states as they change and its result,\n" +
			"and exits 0 when the run succeeded.\n\n" +
			"With --keep, server and agent keep running after the run, and quickstart prints the\n" +
			"server's URL and an admin token to try the other commands with; Ctrl-C stops them.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.quickstart(cmd.Context(), dir, keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep server and agent running after the run (until Ctrl-C)")
	cmd.Flags().StringVar(&dir, "examples", "examples", "the directory of the example flow programs")
	return cmd
}

func (c *CLI) quickstart(ctx context.Context, examples string, keep bool) (err error) {
	start := time.Now()
	// The agent stops first, then the server it talks to.
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServer()
	agentCtx, stopAgent := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAgent()
	out := c.stdout
	for _, name := range quickstartExamples {
		if _, err := os.Stat(filepath.Join(examples, name, "main.go")); err != nil {
			return usagef("quickstart builds the example flow programs in %s, and %s/%s/main.go is missing: run it from a checkout of Reeve (git clone, then go run ./cmd/reeve quickstart)", examples, examples, name)
		}
	}
	tmp, err := os.MkdirTemp("", "reeve-quickstart-")
	if err != nil {
		return fmt.Errorf("quickstart: %w", err)
	}
	defer os.RemoveAll(tmp) // after the server and the agent stopped (deferred later, run earlier)
	logFile, err := os.Create(filepath.Join(tmp, "reeve.log"))
	if err != nil {
		return fmt.Errorf("quickstart: %w", err)
	}
	defer logFile.Close()

	// The server, in this process, on a free port.
	admin := server.NewTokenSecret()
	srvDone := make(chan error, 1)
	addr := make(chan string, 1)
	sub := *c
	sub.stdout, sub.stderr = logFile, logFile
	sub.listening = func(a string) { addr <- a }
	sub.lookupEnv = func(k string) (string, bool) {
		if k == "REEVE_ADMIN_TOKEN" {
			return admin, true
		}
		if strings.HasPrefix(k, "REEVE_") {
			return "", false
		}
		return c.lookupEnv(k)
	}
	flags := serverFlags{
		listen: "127.0.0.1:0", dataDir: filepath.Join(tmp, "server"), logFormat: "text", logLevel: "info",
		shutdownTimeout: 5 * time.Second, scheduleRuns: scheduler.DefaultRuns, scheduleEvery: scheduler.DefaultInterval,
		runs: runFlags{heartbeat: scheduler.DefaultHeartbeat, lostAfter: scheduler.DefaultLostAfter, submitTimeout: scheduler.DefaultSubmitTimeout,
			maxRecoveries: scheduler.DefaultMaxRecoveries, lateAfter: scheduler.DefaultLateAfter, monitorEvery: scheduler.DefaultMonitorInterval},
		maxResultBytes: api.DefaultMaxResultBytes,
	}
	go func() { srvDone <- sub.runServer(srvCtx, flags) }()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a
	case err := <-srvDone:
		return fmt.Errorf("quickstart: the server did not start (log: %s): %w", logFile.Name(), err)
	}
	defer func() {
		stopServer()
		if serr := <-srvDone; serr != nil && err == nil {
			err = fmt.Errorf("quickstart: server: %w", serr)
		}
	}()
	fmt.Fprintf(out, "● Server      %s (SQLite in %s)\n", url, tmp)
	cl, err := client.New(url, admin, client.WithUserAgent("reeve-quickstart"))
	if err != nil {
		return err
	}

	// The example programs, built and registered by themselves.
	bin := filepath.Join(tmp, "bin")
	fmt.Fprintf(out, "● Building    %s\n", strings.Join(quickstartExamples, ", "))
	built := time.Now()
	if err := buildExamples(ctx, examples, bin); err != nil {
		return err
	}
	fmt.Fprintf(out, "              built in %v\n", time.Since(built).Round(time.Millisecond))
	for _, name := range quickstartExamples {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name), "register", "--server", url, "--token", admin, "--project", "default")
		cmd.Env = append(os.Environ(), "REEVE_API_URL=", "REEVE_API_TOKEN=")
		b, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("quickstart: %s register: %w\n%s", name, err, b)
		}
	}
	fmt.Fprintf(out, "● Registered  the flows of %d programs (local storage: %s)\n", len(quickstartExamples), bin)

	// A process agent, in this process.
	procs, err := process.New(process.Config{Dir: filepath.Join(tmp, "agent", "output")})
	if err != nil {
		return err
	}
	ag, err := agent.New(agent.Config{
		Client: cl, Runner: procs, Kind: "process", Name: "quickstart", MaxRuns: max(4, runtime.NumCPU()),
		DataDir: filepath.Join(tmp, "agent"), StopRunsOnExit: true,
		Logger: slog.New(slog.NewTextHandler(logFile, nil)),
	})
	if err != nil {
		return err
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- ag.Run(agentCtx) }()
	defer func() {
		stopAgent()
		if aerr := <-agentDone; aerr != nil && !errors.Is(aerr, context.Canceled) && err == nil {
			err = fmt.Errorf("quickstart: agent: %w", aerr)
		}
	}()
	fmt.Fprintln(out, "● Agent       quickstart (process), waiting for runs")

	// A run of the etl flow, followed live.
	created, err := cl.CreateFlowRun(ctx, api.CreateFlowRun{Project: "default", Flow: quickstartFlow, Name: "quickstart"})
	if err != nil {
		return err
	}
	run := created.FlowRun
	fmt.Fprintf(out, "● Run         %s of flow %s\n\n", run.ID, quickstartFlow)
	final, err := c.followRun(ctx, cl, run.ID, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n● %s in %v", stateText(final.FlowRun.State), time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(out, " (run: %v from creation to its final state)\n", final.FlowRun.UpdatedAt.Sub(final.FlowRun.CreatedAt).Round(time.Millisecond))
	if r := lastResult(ctx, cl, final); r != "" {
		fmt.Fprintf(out, "  result of %s\n", r)
	}
	if keep {
		fmt.Fprintf(out, "\nServer and agent keep running (Ctrl-C stops them). Try:\n")
		fmt.Fprintf(out, "  export REEVE_SERVER=%s REEVE_TOKEN=%s\n", url, admin)
		fmt.Fprintf(out, "  go run ./cmd/reeve run list\n  go run ./cmd/reeve run show %s\n  go run ./cmd/reeve run logs %s\n", run.ID, run.ID)
		fmt.Fprintf(out, "Server and agent log: %s (removed with the rest when quickstart stops)\n", logFile.Name())
		<-ctx.Done()
		return nil
	}
	if !final.FlowRun.State.Kind.Successful() {
		return fmt.Errorf("the run ended %s: see its logs above, and the server and agent log %s", final.FlowRun.State.Kind, logFile.Name())
	}
	return nil
}

// buildExamples builds each example program into bin.
func buildExamples(ctx context.Context, examples, bin string) error {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, name := range quickstartExamples {
		args = append(args, "./"+filepath.ToSlash(filepath.Join(examples, name)))
	}
	cmd := exec.CommandContext(ctx, goTool, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("quickstart: go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// followRun prints the task-run state changes of a run until it
// finishes. A mapped task's children are summed up in its own line; a
// child shows only when it needed more than one attempt.
func (c *CLI) followRun(ctx context.Context, cl *client.Client, id string, out io.Writer) (*api.FlowRunDetail, error) {
	seen := map[string]int64{}
	var lastRun int64
	t0 := time.Now()
	for {
		d, err := cl.FlowRun(ctx, id)
		if err != nil {
			return nil, err
		}
		trs := slices.Clone(d.TaskRuns)
		slices.SortStableFunc(trs, func(a, b api.TaskRun) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
		for _, tr := range trs {
			if seen[tr.Key] == tr.Version {
				continue
			}
			seen[tr.Key] = tr.Version
			text := stateText(tr.State)
			if tr.State.Attempt > 1 {
				text += fmt.Sprintf(" after %d attempts", tr.State.Attempt)
			} else if strings.Contains(tr.Key, "[") {
				continue
			}
			fmt.Fprintf(out, "  %7.3fs  %-18s %s\n", time.Since(t0).Seconds(), tr.Key, text)
		}
		if d.FlowRun.Version != lastRun {
			lastRun = d.FlowRun.Version
			fmt.Fprintf(out, "  %7.3fs  %-18s %s\n", time.Since(t0).Seconds(), "(flow run)", stateText(d.FlowRun.State))
		}
		if d.FlowRun.State.Kind.Finished() {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// lastResult reads the result of the run's last task (in the flow's
// spec order) from the server's result store: "TASK: JSON", or "" when
// there is none to show.
func lastResult(ctx context.Context, cl *client.Client, d *api.FlowRunDetail) string {
	v, err := cl.FlowVersion(ctx, d.FlowRun.FlowVersionID)
	if err != nil {
		return ""
	}
	sp, err := spec.Decode(v.Spec)
	if err != nil || len(sp.Tasks) == 0 {
		return ""
	}
	last := sp.Tasks[len(sp.Tasks)-1].ID
	for _, tr := range d.TaskRuns {
		r := tr.State.Result
		if tr.Key != last || r == nil || r.Store != apiblob.URL || tr.State.Kind != state.Success {
			continue
		}
		b, _, err := cl.GetResult(ctx, d.FlowRun.ID, r.Key)
		if err != nil || !json.Valid(b) {
			return ""
		}
		return tr.Key + ": " + strings.TrimSpace(string(b))
	}
	return ""
}
