package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/spec"
	"github.com/reevehq/reeve/internal/state"
)

func (c *CLI) runCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Create, list, show, follow and cancel flow runs",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  groupRun,
	}
	cmd.AddCommand(c.runCreateCommand(), c.runListCommand(), c.runShowCommand(), c.runLogsCommand(), c.runCancelCommand(), c.runRestartCommand())
	return cmd
}

func (c *CLI) runCreateCommand() *cobra.Command {
	var (
		f          clientFlags
		params     []string
		paramsFile string
		at         string
		idemKey    string
		name       string
	)
	cmd := &cobra.Command{
		Use:   "create FLOW",
		Short: "Create a run of a flow's newest version (agents pick it up when it is due)",
		Long: "Create a run of the newest version of FLOW (a name in --project, or an ID).\n" +
			"Parameters are --param name=value: text for string parameters, JSON for the others\n" +
			"(text that is not JSON is sent as a string); --params-file reads a JSON object first.\n" +
			"--at delays the run: an RFC 3339 time, or a duration from now such as 10m.",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			scheduled, err := parseAt(at, time.Now())
			if err != nil {
				return err
			}
			given := map[string]json.RawMessage{}
			if paramsFile != "" {
				data, err := os.ReadFile(paramsFile)
				if err != nil {
					return usageError{fmt.Errorf("--params-file: %w", err)}
				}
				if err := json.Unmarshal(data, &given); err != nil || given == nil {
					return usagef("--params-file %s is not a JSON object of parameter values", paramsFile)
				}
			}
			texts := map[string]string{}
			for _, kv := range params {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usagef("--param %q: want name=value", kv)
				}
				texts[k] = v
			}
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			d, err := findFlow(ctx, cl, f.project, args[0])
			if err != nil {
				return err
			}
			if len(d.Versions) == 0 {
				return reeve.Errorf(reeve.CodeNotFound, "flow %q has no version: register it first", d.Flow.Name)
			}
			v := d.Versions[0] // newest first
			types := map[string]string{}
			if sp, err := spec.Decode(v.Spec); err == nil {
				for _, p := range sp.Parameters {
					types[p.Name] = p.Type
				}
			}
			for k, text := range texts {
				given[k] = paramValue(text, types[k])
			}
			req := api.CreateFlowRun{
				FlowID:         d.Flow.ID,
				FlowVersionID:  v.ID,
				Name:           name,
				ScheduledAt:    scheduled,
				IdempotencyKey: idemKey,
			}
			if len(given) > 0 {
				if req.Params, err = json.Marshal(given); err != nil {
					return err
				}
			}
			created, err := cl.CreateFlowRun(ctx, req)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, created)
			}
			run := created.FlowRun
			if !created.Created {
				fmt.Fprintf(c.stdout, "Flow run %s already exists with idempotency key %q (%s)\n", run.ID, idemKey, run.State.Kind)
				return nil
			}
			fmt.Fprintf(c.stdout, "Created flow run %s of %s version %d, %s for %s\n", run.ID, d.Flow.Name, v.Version, run.State.Kind, c.times().format(run.ScheduledAt))
			return nil
		},
	}
	c.addClientFlags(cmd, &f, true)
	fl := cmd.Flags()
	fl.StringArrayVar(&params, "param", nil, "a parameter as name=value (repeat for more)")
	fl.StringVar(&paramsFile, "params-file", "", "a file holding a JSON object of parameter values (--param wins)")
	fl.StringVar(&at, "at", "", "when the run is due: an RFC 3339 time or a duration from now, e.g. 10m (default now)")
	fl.StringVar(&idemKey, "idempotency-key", "", "a key that makes creating the run again return the same run")
	fl.StringVar(&name, "name", "", "a name for the run")
	return cmd
}

// paramValue is a parameter given as text: a JSON string for a string
// parameter, else the text as JSON when it is JSON, else a JSON string
// (which the server rejects, naming the parameter, if it wants another type).
func paramValue(text, typ string) json.RawMessage {
	if typ != "string" && json.Valid([]byte(text)) {
		return json.RawMessage(text)
	}
	b, _ := json.Marshal(text)
	return b
}

// parseAt reads --at: "" (now), an RFC 3339 time, or a duration from now.
func parseAt(at string, now time.Time) (time.Time, error) {
	if at == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, at); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(at, "+")); err == nil && d >= 0 {
		return now.Add(d), nil
	}
	return time.Time{}, usagef("--at %q is not a time: give an RFC 3339 time (2026-01-02T15:04:05Z) or a duration from now (10m, 2h)", at)
}

func (c *CLI) runListCommand() *cobra.Command {
	var (
		f      clientFlags
		flow   string
		states string
		limit  int
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List flow runs, newest first",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter := client.FlowRunFilter{Project: f.project, Limit: limit}
			if limit < 1 || limit > 1000 {
				return usagef("--limit %d is out of range: give 1 to 1000", limit)
			}
			kinds, err := parseKinds(states)
			if err != nil {
				return err
			}
			filter.States = kinds
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if flow != "" {
				d, err := findFlow(ctx, cl, f.project, flow)
				if err != nil {
					return err
				}
				filter.FlowID = d.Flow.ID
			}
			page, err := cl.FlowRuns(ctx, filter)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, page)
			}
			names := flowNames{cl: cl, names: map[string]string{}}
			tf := c.times()
			t := newTable(c.stdout, "ID", "FLOW", "NAME", "STATE", "SCHEDULED", "UPDATED")
			for _, r := range page.FlowRuns {
				t.row(r.ID, names.of(ctx, r.FlowID), r.Name, r.State.Kind, tf.format(r.ScheduledAt), tf.format(r.UpdatedAt))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if page.NextCursor != "" {
				fmt.Fprintf(c.stderr, "(the %d newest runs; --limit shows more)\n", len(page.FlowRuns))
			}
			return nil
		},
	}
	c.addClientFlags(cmd, &f, true)
	fl := cmd.Flags()
	fl.StringVar(&flow, "flow", "", "only the runs of this flow (name in --project, or ID)")
	fl.StringVar(&states, "state", "", "only runs in these states, comma-separated (e.g. Running,Failed)")
	fl.IntVar(&limit, "limit", 20, "at most this many runs (1 to 1000)")
	return cmd
}

// parseKinds reads a comma-separated list of state kinds, in any case.
func parseKinds(s string) ([]reeve.Kind, error) {
	var kinds []reeve.Kind
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, k := range state.Kinds() {
			if strings.EqualFold(k.String(), name) {
				kinds, found = append(kinds, k), true
				break
			}
		}
		if !found {
			names := make([]string, 0, len(state.Kinds()))
			for _, k := range state.Kinds() {
				names = append(names, k.String())
			}
			return nil, usagef("--state %q is not a state: use %s", name, strings.Join(names, ", "))
		}
	}
	return kinds, nil
}

// flowNames finds flow names by ID, asking the server once per flow.
type flowNames struct {
	cl    *client.Client
	names map[string]string
}

func (n flowNames) of(ctx context.Context, id string) string {
	if name, ok := n.names[id]; ok {
		return name
	}
	name := id
	if d, err := n.cl.Flow(ctx, id); err == nil {
		name = d.Flow.Name
	}
	n.names[id] = name
	return name
}

func (c *CLI) runShowCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a flow run with its task runs and state history",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			d, err := cl.FlowRun(ctx, args[0])
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, d)
			}
			names := flowNames{cl: cl, names: map[string]string{}}
			c.writeRun(d, names.of(ctx, d.FlowRun.FlowID))
			return nil
		},
	}
	c.addClientFlags(cmd, &f, false)
	return cmd
}

// writeRun prints a flow run, its task runs and its history.
func (c *CLI) writeRun(d *api.FlowRunDetail, flow string) {
	tf := c.times()
	w := c.stdout
	r := d.FlowRun
	fmt.Fprintf(w, "Flow run:   %s\n", r.ID)
	fmt.Fprintf(w, "Flow:       %s\n", flow)
	if r.Name != "" {
		fmt.Fprintf(w, "Name:       %s\n", r.Name)
	}
	fmt.Fprintf(w, "State:      %s\n", stateText(r.State))
	fmt.Fprintf(w, "Scheduled:  %s\n", tf.format(r.ScheduledAt))
	fmt.Fprintf(w, "Created:    %s\n", tf.format(r.CreatedAt))
	fmt.Fprintf(w, "Updated:    %s\n", tf.format(r.UpdatedAt))
	if len(r.Params) > 0 && string(r.Params) != "{}" && string(r.Params) != "null" {
		var buf bytes.Buffer
		if json.Compact(&buf, r.Params) == nil {
			fmt.Fprintf(w, "Parameters: %s\n", buf.String())
		}
	}
	if r.AgentID != "" {
		fmt.Fprintf(w, "Agent:      %s\n", r.AgentID)
	}
	if r.Attempt > 0 {
		fmt.Fprintf(w, "Attempt:    %d", r.Attempt)
		if r.Recoveries > 0 {
			fmt.Fprintf(w, " (re-queued %d times after its runner was lost)", r.Recoveries)
		}
		fmt.Fprintln(w)
	}
	if !r.HeartbeatAt.IsZero() {
		fmt.Fprintf(w, "Heartbeat:  %s\n", tf.format(r.HeartbeatAt))
	}
	if r.ScheduleID != "" {
		fmt.Fprintf(w, "Schedule:   %s\n", r.ScheduleID)
	}
	fmt.Fprintln(w, "\nTASK RUNS")
	if len(d.TaskRuns) == 0 {
		fmt.Fprintln(w, "(none yet)")
	} else {
		t := newTable(w, "KEY", "STATE", "ATTEMPT", "UPDATED", "MESSAGE")
		for _, tr := range d.TaskRuns {
			attempt := ""
			if tr.State.Attempt > 0 {
				attempt = fmt.Sprint(tr.State.Attempt)
			}
			t.row(tr.Key, tr.State.Kind, attempt, tf.format(tr.UpdatedAt), tr.State.Message)
		}
		t.flush()
	}
	fmt.Fprintln(w, "\nHISTORY")
	t := newTable(w, "TIME", "STATE", "MESSAGE")
	for _, s := range d.History {
		t.row(tf.format(s.Time), s.Kind, s.Message)
	}
	t.flush()
}

func stateText(s reeve.State) string {
	if s.Message == "" {
		return s.Kind.String()
	}
	return s.Kind.String() + " (" + oneLineText(s.Message) + ")"
}

func (c *CLI) runLogsCommand() *cobra.Command {
	var (
		f       clientFlags
		follow  bool
		taskRun string
	)
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "Print a flow run's logs; with -f, follow them until the run ends",
		Long: "Print the log lines of a flow run, oldest first. With --follow, wait for new lines\n" +
			"and return when the run has ended and its last line is printed (exit 0 whatever the\n" +
			"run's state; see reeve run show). With --json, one JSON object per line.",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			print := c.logPrinter(f.json)
			q := client.LogQuery{TaskRunID: taskRun}
			if follow {
				run, err := cl.FollowLogs(ctx, args[0], q, print)
				if err != nil {
					return err
				}
				if !f.json {
					fmt.Fprintf(c.stderr, "flow run %s ended: %s\n", run.ID, stateText(run.State))
				}
				return nil
			}
			for {
				page, err := cl.Logs(ctx, args[0], q)
				if err != nil {
					return err
				}
				for _, l := range page.Logs {
					if err := print(l); err != nil {
						return err
					}
				}
				if len(page.Logs) == 0 || page.NextAfter <= q.After {
					return nil
				}
				q.After = page.NextAfter
			}
		},
	}
	c.addClientFlags(cmd, &f, false)
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "wait for new lines until the run ends")
	fl.StringVar(&taskRun, "task-run", "", "only the lines of this task run (ID)")
	return cmd
}

// logPrinter returns a function that prints a log line: as JSON, or as
// "TIME LEVEL message key=value...".
func (c *CLI) logPrinter(asJSON bool) func(api.LogLine) error {
	if asJSON {
		enc := json.NewEncoder(c.stdout)
		return func(l api.LogLine) error { return enc.Encode(l) }
	}
	tty := c.terminal()
	return func(l api.LogLine) error {
		var b strings.Builder
		if tty {
			b.WriteString(l.Time.Local().Format("2006-01-02 15:04:05.000"))
		} else {
			b.WriteString(l.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		}
		fmt.Fprintf(&b, " %-5s %s", l.Level, l.Message)
		if len(l.Attrs) > 0 {
			var attrs map[string]any
			if json.Unmarshal(l.Attrs, &attrs) == nil {
				for _, k := range sortedKeys(attrs) {
					v, _ := json.Marshal(attrs[k])
					if s, ok := attrs[k].(string); ok && !strings.ContainsAny(s, " \t\n\"=") && s != "" {
						v = []byte(s)
					}
					fmt.Fprintf(&b, " %s=%s", k, v)
				}
			}
		}
		b.WriteByte('\n')
		_, err := fmt.Fprint(c.stdout, b.String())
		return err
	}
}

func (c *CLI) runCancelCommand() *cobra.Command {
	return c.runActionCommand(&cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a flow run that has not finished (a running one stops within a heartbeat)",
	}, (*client.Client).CancelFlowRun)
}

func (c *CLI) runRestartCommand() *cobra.Command {
	return c.runActionCommand(&cobra.Command{
		Use:   "restart ID",
		Short: "Run a failed or cancelled flow run again, re-running only what did not succeed",
		Long: "Schedule a finished, unsuccessful flow run again. Its next runner re-runs only the\n" +
			"failed and unfinished task runs (of a mapped task, only the failed children) and reuses\n" +
			"the persisted results of every task run that succeeded.",
	}, (*client.Client).RestartFlowRun)
}

// runActionCommand completes cmd as a command that applies act to the flow
// run named by its one argument and prints the run's new state.
func (c *CLI) runActionCommand(cmd *cobra.Command, act func(*client.Client, context.Context, string) (*api.FlowRun, error)) *cobra.Command {
	var f clientFlags
	cmd.Args = usageArgs(cobra.ExactArgs(1))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cl, err := c.connect(&f)
		if err != nil {
			return err
		}
		run, err := act(cl, cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if f.json {
			return printJSON(c.stdout, run)
		}
		fmt.Fprintf(c.stdout, "Flow run %s: %s\n", run.ID, stateText(run.State))
		return nil
	}
	c.addClientFlags(cmd, &f, false)
	return cmd
}
