package reeve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	neturl "net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/result"
	"github.com/reevehq/reeve/internal/spec"
	"github.com/reevehq/reeve/internal/state"
)

// Exit codes of a flow program.
const (
	exitOK     = 0 // the flow run succeeded; every health check passed
	exitFailed = 1 // the flow run did not succeed; a health check failed
	exitUsage  = 2 // bad command line, parameters or flow: nothing ran
)

// Main turns a program into the command line of its flows:
//
//	run FLOW [--param k=v ...] [--executor sequential|parallel] [--workers N] [--results URL] [--json]
//	list
//	save [FLOW...] --out DIR
//	healthcheck [--spec DIR] [--results URL] [--secrets-file FILE | --secrets-from-server]
//	register --server URL --project P [--token T] [--labels a,b] [--flow NAME]
//	execute (started by an agent, with REEVE_API_URL, REEVE_API_TOKEN and REEVE_FLOW_RUN_ID)
//
// Call it from main with every flow the program offers. It exits the
// process: 0 only when the command succeeded.
func Main(flows ...*Flow) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // the first signal cancels the run; a second one ends the program at once
	}()
	code := runMain(ctx, flows, os.Args[1:], os.Stdout, os.Stderr, isTerminal(os.Stderr))
	stop()
	os.Exit(code)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// usageError marks errors that mean nothing ran because the input was wrong.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// exitError carries an exit code without a message of its own.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// program is the command line of a flow program.
type program struct {
	flows  []*Flow
	byName map[string]*Flow
	stdout io.Writer
	stderr io.Writer
	tty    bool
}

func runMain(ctx context.Context, flows []*Flow, args []string, stdout, stderr io.Writer, tty bool) int {
	p := &program{flows: flows, byName: map[string]*Flow{}, stdout: stdout, stderr: stderr, tty: tty}
	for _, f := range flows {
		if f == nil {
			fmt.Fprintln(stderr, "reeve.Main: a nil flow was passed")
			return exitUsage
		}
		if _, dup := p.byName[f.Name()]; dup {
			fmt.Fprintf(stderr, "reeve.Main: two flows are named %q; flow names must be unique\n", f.Name())
			return exitUsage
		}
		p.byName[f.Name()] = f
	}
	root := p.command()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, "error:", err)
		return exitUsage
	default:
		fmt.Fprintln(stderr, "error:", err)
		return exitFailed
	}
}

func (p *program) command() *cobra.Command {
	root := &cobra.Command{
		Use:           filepath.Base(os.Args[0]),
		Short:         "Run, list, save, check and register the flows of this program",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("name a command: run, list, save, healthcheck, register or execute (see %s --help)", c.CommandPath())}
		},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	root.AddCommand(p.runCommand(), p.listCommand(), p.saveCommand(), p.healthcheckCommand(),
		p.registerCommand(), p.executeCommand())
	return root
}

// usageArgs makes cobra's argument checks usage errors (exit 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return usageError{fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
		}
		return nil
	}
}

// flow picks a flow by name; the name may be left out when there is one.
func (p *program) flow(args []string) (*Flow, error) {
	if len(args) == 0 {
		if len(p.flows) == 1 {
			return p.flows[0], nil
		}
		return nil, usageError{fmt.Errorf("name the flow to run: %s", strings.Join(p.names(), ", "))}
	}
	f, ok := p.byName[args[0]]
	if !ok {
		return nil, usageError{fmt.Errorf("no flow named %q in this program; it has: %s", args[0], orNone(p.names()))}
	}
	return f, nil
}

func (p *program) names() []string {
	names := make([]string, len(p.flows))
	for i, f := range p.flows {
		names[i] = f.Name()
	}
	sort.Strings(names)
	return names
}

func (p *program) runCommand() *cobra.Command {
	var (
		params      []string
		executor    string
		workers     int
		results     string
		asJSON      bool
		secretsFile string
		logLevel    string
	)
	c := &cobra.Command{
		Use:   "run [FLOW]",
		Short: "Run a flow here, showing live progress and a summary",
		Long: "Run a flow in this process. Exits 0 only when the flow run succeeds.\n" +
			"Parameters are --param name=value: text for string parameters, JSON for the others.",
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := p.flow(args)
			if err != nil {
				return err
			}
			values := map[string]any{}
			for _, kv := range params {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--param %q: want name=value", kv)}
				}
				values[k] = paramText(v)
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)}
			}
			prog := newProgress(p.stderr, p.tty && !asJSON, f.Name())
			run, err := f.Run(cmd.Context(), RunOptions{
				Params:     values,
				Executor:   Executor(executor),
				Workers:    workers,
				Results:    results,
				Secrets:    LocalSecrets(secretsFile),
				LogHandler: &logHandler{p: prog, level: level},
				LogLevel:   level,
				reporter:   prog,
			})
			prog.close()
			if err != nil {
				return usageError{err}
			}
			if asJSON {
				if err := writeRunJSON(p.stdout, run); err != nil {
					return err
				}
			} else {
				writeSummary(p.stdout, run)
			}
			if run.State().Kind != state.Success {
				return exitError{exitFailed}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringArrayVarP(&params, "param", "p", nil, "a parameter as name=value (repeat for more)")
	fl.StringVar(&executor, "executor", string(Parallel), "how to run tasks: sequential or parallel")
	fl.IntVar(&workers, "workers", 0, "parallel executor: at most N task runs at once (default 4 per CPU)")
	fl.StringVar(&results, "results", "", "result store URL for checkpointed and cached results (e.g. file://./results)")
	fl.BoolVar(&asJSON, "json", false, "print the run as JSON instead of a table")
	fl.StringVar(&secretsFile, "secrets-file", "", "file of NAME=value lines (or a JSON object) with local secrets")
	fl.StringVar(&logLevel, "log-level", "info", "task log level: debug, info, warn or error")
	return c
}

// writeSummary prints one row per task (a mapped task is one row with its
// children counted) and the flow run's outcome.
func writeSummary(w io.Writer, run *FlowRun) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATE\tATTEMPTS\tDURATION\tMESSAGE")
	for i := range run.run.Tasks {
		tr := &run.run.Tasks[i]
		n := run.g.Nodes[tr.Node]
		attempts := "-"
		if tr.State.Attempt > 0 {
			attempts = fmt.Sprint(tr.State.Attempt)
		}
		msg := tr.State.Message
		if n.Mapped && tr.State.Counts != nil {
			attempts = fmt.Sprintf("%d children", tr.State.Counts.Total())
		}
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i] + " …"
		}
		if r := []rune(msg); len(r) > 100 {
			msg = string(r[:97]) + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.ID, tr.State.Kind, attempts, duration(tr.History), msg)
	}
	tw.Flush()
	s := run.State()
	fmt.Fprintf(w, "\nflow run %s of %s: %s in %s", run.ID(), run.Flow(), s.Kind, duration(run.History()))
	if s.Message != "" {
		fmt.Fprintf(w, " (%s)", s.Message)
	}
	fmt.Fprintln(w)
}

// duration is the time from the first Running state to the last state.
func duration(h []state.State) string {
	var start time.Time
	for _, s := range h {
		if s.Kind == state.Running {
			start = s.Time
			break
		}
	}
	if start.IsZero() || len(h) == 0 {
		return "-"
	}
	d := h[len(h)-1].Time.Sub(start)
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

type jsonTaskRun struct {
	Key      string        `json:"key"`
	Task     string        `json:"task"`
	TaskName string        `json:"task_name"`
	MapIndex *int          `json:"map_index,omitempty"`
	State    state.State   `json:"state"`
	History  []state.State `json:"history"`
	Logs     []jsonLog     `json:"logs,omitempty"`
}

type jsonLog struct {
	Time    time.Time      `json:"time"`
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Attrs   map[string]any `json:"attrs,omitempty"`
}

func writeRunJSON(w io.Writer, run *FlowRun) error {
	out := struct {
		ID       string        `json:"flow_run_id"`
		Flow     string        `json:"flow"`
		State    state.State   `json:"state"`
		History  []state.State `json:"history"`
		TaskRuns []jsonTaskRun `json:"task_runs"`
	}{ID: run.ID(), Flow: run.Flow(), State: run.State(), History: run.History()}
	for _, tr := range run.TaskRuns() {
		jt := jsonTaskRun{Key: tr.Key, Task: tr.Task, TaskName: tr.TaskName, State: tr.State, History: tr.History}
		if tr.MapIndex >= 0 {
			jt.MapIndex = &tr.MapIndex
		}
		for _, r := range tr.Logs {
			l := jsonLog{Time: r.Time, Level: r.Level.String(), Message: r.Message}
			r.Attrs(func(a slog.Attr) bool {
				if l.Attrs == nil {
					l.Attrs = map[string]any{}
				}
				l.Attrs[a.Key] = a.Value.Resolve().Any()
				return true
			})
			jt.Logs = append(jt.Logs, l)
		}
		out.TaskRuns = append(out.TaskRuns, jt)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func (p *program) listCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the flows of this program",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(p.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FLOW\tTASKS\tPARAMETERS\tSPEC HASH")
			for _, name := range p.names() {
				f := p.byName[name]
				var ps []string
				for _, par := range f.g.Params {
					if par.Required {
						ps = append(ps, par.Name+" (required)")
					} else {
						d, _ := json.Marshal(par.Default)
						if str, ok := par.Default.(string); ok {
							d = []byte(str)
						}
						ps = append(ps, par.Name+"="+string(d))
					}
				}
				hash, err := f.SpecHash()
				if err != nil {
					hash = "invalid: " + strings.ReplaceAll(err.Error(), "\n", "; ")
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", name, len(f.g.Nodes), orDash(strings.Join(ps, ", ")), hash)
			}
			return tw.Flush()
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (p *program) saveCommand() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "save [FLOW...]",
		Short: "Write each flow's spec to DIR/FLOW.json",
		RunE: func(cmd *cobra.Command, args []string) error {
			names := args
			if len(names) == 0 {
				names = p.names()
			}
			for _, name := range names {
				f, ok := p.byName[name]
				if !ok {
					return usageError{fmt.Errorf("no flow named %q in this program; it has: %s", name, orNone(p.names()))}
				}
				s, err := f.toSpec()
				if err != nil {
					return usageError{err}
				}
				path, err := spec.WriteFile(out, s)
				if err != nil {
					return err
				}
				fmt.Fprintf(p.stdout, "%s\t%s\n", path, s.Hash())
			}
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", ".", "directory to write the spec files to")
	return c
}

// check is one line of the health check.
type check struct {
	ok   bool
	flow string
	what string
}

func (p *program) healthcheckCommand() *cobra.Command {
	var (
		specDir, results, secretsFile string
		secretsFromServer             bool
	)
	c := &cobra.Command{
		Use:   "healthcheck",
		Short: "Check that every flow loads, resolves its tasks and has what it declares",
		Long: "Loads every spec (from --spec DIR, or the flows built into this program) and checks that\n" +
			"every task resolves, checkpointed and cached tasks have a result store, declared environment\n" +
			"variables are set and declared secrets resolve. Prints one line per check; exits 1 on any failure.\n\n" +
			"--results " + serverResults + " is the store of server runs: like there, it is used by the flows that\n" +
			"name no store of their own, and it counts as configured without a connection to the server.\n" +
			"--secrets-from-server says that runs read the declared secrets from the server (reeve build and\n" +
			"reeve deploy check that they are set there); they are then not looked up here.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var secrets SecretSource = LocalSecrets(secretsFile)
			if secretsFromServer {
				if secretsFile != "" {
					return usageError{errors.New("--secrets-file and --secrets-from-server: give one of them")}
				}
				secrets = nil
			}
			checks := p.healthchecks(cmd.Context(), specDir, results, secrets)
			failed := 0
			for _, c := range checks {
				mark := "ok  "
				if !c.ok {
					mark, failed = "FAIL", failed+1
				}
				fmt.Fprintf(p.stdout, "%s %s: %s\n", mark, c.flow, c.what)
			}
			if failed > 0 {
				fmt.Fprintf(p.stdout, "%d of %d checks failed\n", failed, len(checks))
				return exitError{exitFailed}
			}
			fmt.Fprintf(p.stdout, "all %d checks passed\n", len(checks))
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&specDir, "spec", "", "directory of spec files to check (default: the flows built into this program)")
	fl.StringVar(&results, "results", "", "the result store URL runs will be given, if any")
	fl.StringVar(&secretsFile, "secrets-file", "", "local secrets file to resolve declared secrets from")
	fl.BoolVar(&secretsFromServer, "secrets-from-server", false, "declared secrets come from the server at run time: do not look them up here")
	return c
}

// serverResults is the URL of the server's own result store
// (internal/result/apiblob), which server runs of flows that name no
// store use.
const serverResults = "reeve://server"

// healthchecks runs the health checks. A nil secrets means declared
// secrets come from the server at run time and are not looked up.
func (p *program) healthchecks(ctx context.Context, specDir, results string, secrets SecretSource) []check {
	var checks []check
	add := func(ok bool, flow, format string, args ...any) {
		checks = append(checks, check{ok, flow, fmt.Sprintf(format, args...)})
	}
	var specs []*spec.Spec
	if specDir == "" {
		for _, name := range p.names() {
			s, err := p.byName[name].toSpec()
			if err != nil {
				add(false, name, "spec cannot be made: %v", oneLine(err))
				continue
			}
			specs = append(specs, s)
		}
	} else {
		entries, err := filepath.Glob(filepath.Join(specDir, "*.json"))
		if err != nil || len(entries) == 0 {
			add(false, specDir, "no spec files (*.json) found; write them with the save command")
		}
		sort.Strings(entries)
		for _, path := range entries {
			data, err := os.ReadFile(path)
			if err == nil {
				var s *spec.Spec
				if s, err = spec.Decode(data); err == nil {
					specs = append(specs, s)
					continue
				}
			}
			add(false, filepath.Base(path), "spec does not load: %v", oneLine(err))
		}
	}
	for _, s := range specs {
		name := s.Name
		for _, t := range s.Tasks {
			if lookupTask(t.Task) == nil {
				add(false, name, "task %s: task %q is not registered in this program; build the image from the program that defines it", t.ID, t.Task)
			} else {
				add(true, name, "task %s resolves to %s", t.ID, t.Task)
			}
		}
		f, err := fromSpec(s)
		if err != nil {
			if !strings.Contains(err.Error(), "does not register") {
				add(false, name, "spec does not load in this program: %v", oneLine(err))
			}
			continue
		}
		add(true, name, "spec loads (%s)", s.Hash())
		if own, ok := p.byName[name]; ok && specDir != "" {
			if h, err := own.SpecHash(); err == nil && h != s.Hash() {
				add(false, name, "spec %s differs from the flow built into this program (%s); save the specs again from this build", s.Hash(), h)
			}
		}
		for _, n := range f.g.Nodes {
			if !n.Opts.Checkpoint && n.Opts.CacheFor <= 0 {
				continue
			}
			url := n.Opts.ResultStore
			order := []string{results, f.g.ResultStore}
			if results == serverResults {
				order = []string{f.g.ResultStore, results} // as in server runs: the flow's own store first
			}
			for _, u := range order {
				if url == "" {
					url = u
				}
			}
			if url == "" {
				add(false, name, "task %s persists its result but no result store is configured; set reeve.Results(url) on the flow, reeve.ResultStore(url) on the task, or pass --results URL", n.ID)
				continue
			}
			if url == serverResults {
				// Opened by the runner of a server run, with its connection.
				add(true, name, "task %s persists its result to the server's result store (%s)", n.ID, serverResults)
				continue
			}
			if dir, ok := fileStoreDir(url); ok {
				// Opening would create the directory: in an image, it is
				// often a volume that only a run's container mounts.
				if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
					add(true, name, "task %s persists its result to %s, a directory not here yet: it is made at run time, so a container needs it mounted (reeve agent docker --volume HOST:%s) to keep the results", n.ID, url, dir)
					continue
				} else if err == nil && !fi.IsDir() {
					add(false, name, "task %s: result store %s: %s is not a directory; name a directory", n.ID, url, dir)
					continue
				}
			}
			st, err := result.Open(ctx, url)
			if err != nil {
				add(false, name, "task %s: result store: %v", n.ID, oneLine(err))
				continue
			}
			add(true, name, "task %s persists its result to %s", n.ID, st.URL())
		}
		for _, e := range s.Env {
			switch _, set := os.LookupEnv(e.Name); {
			case e.FromAgent:
				add(true, name, "env %s is provided by the agent at run time", e.Name)
			case set:
				add(true, name, "env %s is set", e.Name)
			default:
				add(false, name, "env %s is not set; set it in the environment (or --env NAME=value when building an image, "+
					"--run-env NAME=value when deploying, or declare it with reeve.EnvFromAgent when the agent provides it)", e.Name)
			}
		}
		for _, sec := range s.Secrets {
			if secrets == nil {
				add(true, name, "secret %s is declared: runs get it from the server", sec.Name)
				continue
			}
			if _, err := secrets.Secret(ctx, sec.Name); err != nil {
				add(false, name, "%v", oneLine(err))
			} else {
				add(true, name, "secret %s resolves", sec.Name)
			}
		}
	}
	return checks
}

// fileStoreDir returns the directory of a file:// result store URL.
func fileStoreDir(store string) (string, bool) {
	if !strings.HasPrefix(store, "file://") {
		return "", false
	}
	u, err := neturl.Parse(store)
	if err != nil || u.Path == "" {
		return "", false
	}
	return filepath.FromSlash(u.Path), true
}

func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

var _ engine.Reporter = (*progress)(nil)
