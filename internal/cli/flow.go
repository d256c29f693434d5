package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/client"
	"github.com/reevehq/reeve/internal/imagebuild"
	"github.com/reevehq/reeve/internal/spec"
)

func (c *CLI) flowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "flow",
		Short: "Register, list and show flows",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  groupRun,
	}
	cmd.AddCommand(c.flowRegisterCommand(), c.flowListCommand(), c.flowShowCommand())
	return cmd
}

func (c *CLI) flowRegisterCommand() *cobra.Command {
	var (
		f        clientFlags
		path     string
		image    string
		labels   []string
		rcf      runConfigFlags
		allowEnv []string
	)
	cmd := &cobra.Command{
		Use:   "register SPEC.json (--path /abs/program | --image name@sha256:...)",
		Short: "Register a flow spec (written by a flow program's save command) as its flow's next version",
		Long: "Register a flow spec with the server: the spec file a flow program's `save` command\n" +
			"writes, and where agents find the program: --path, the absolute path of the program\n" +
			"on the agents' machines, or --image, a container image pinned by digest.\n" +
			"Registering a spec identical to the flow's newest version changes nothing.",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return usageError{fmt.Errorf("read the spec: %w", err)}
			}
			sp, err := spec.Decode(data)
			if err != nil {
				return usageError{fmt.Errorf("%s: %w", args[0], err)}
			}
			var storage api.Storage
			switch {
			case (path == "") == (image == ""):
				return usagef("give where agents find the program: --path /abs/program or --image name@sha256:..., one of them")
			case path != "":
				if !filepath.IsAbs(path) {
					return usagef("--path %q is not absolute: give the program's absolute path on the agents' machines", path)
				}
				storage = api.Storage{Kind: "local", Path: path}
			default:
				storage = api.Storage{Kind: "docker", Image: image}
			}
			rc, err := rcf.runConfig(allowEnv)
			if err != nil {
				return err
			}
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			reg, err := cl.RegisterFlow(cmd.Context(), api.RegisterFlow{
				Project:   f.project,
				Spec:      json.RawMessage(data),
				Storage:   storage,
				Labels:    labels,
				RunConfig: rc,
			})
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, reg)
			}
			if reg.Created {
				fmt.Fprintf(c.stdout, "Registered flow %s version %d (spec %s) in project %s\n", reg.Flow.Name, reg.Version.Version, short(reg.Version.SpecHash), f.project)
			} else {
				fmt.Fprintf(c.stdout, "Flow %s is unchanged: version %d already has this spec (%s)\n", reg.Flow.Name, reg.Version.Version, short(sp.Hash()))
			}
			for _, w := range reg.Warnings {
				fmt.Fprintf(c.stderr, "warning: %s\n", w)
			}
			return nil
		},
	}
	c.addClientFlags(cmd, &f, true)
	fl := cmd.Flags()
	fl.StringVar(&path, "path", "", "the program's absolute path on the agents' machines (process agents)")
	fl.StringVar(&image, "image", "", "the program's container image, pinned by digest: name@sha256:<hex>")
	fl.StringArrayVar(&labels, "label", nil, "a label agents must have to run the flow, added to the spec's (repeat for more)")
	rcf.add(fl, "env", "platform")
	fl.StringArrayVar(&allowEnv, "allow-env", nil, "let --env NAME through although it looks like a credential (repeatable)")
	return cmd
}

// runConfigFlags are the flags of a flow's run configuration, shared by
// reeve flow register and reeve deploy (which name the environment and
// platform flags differently: its --env and --platform are the image's).
type runConfigFlags struct {
	rc                    api.RunConfig
	env                   []string
	envFlag, platformFlag string
}

// add adds the flags to fl, with the names envFlag and platformFlag for
// the run's environment and platform.
func (f *runConfigFlags) add(fl *pflag.FlagSet, envFlag, platformFlag string) {
	f.envFlag, f.platformFlag = envFlag, platformFlag
	fl.StringVar(&f.rc.CPU, "cpu", "", "CPU for each run: cores (\"2\", \"0.5\") or millicores (\"500m\")")
	fl.StringVar(&f.rc.Memory, "memory", "", "memory for each run, e.g. 512Mi")
	fl.IntVar(&f.rc.Workers, "workers", 0, "parallel executor: at most N task runs at once (default: the program's)")
	fl.StringVar(&f.rc.Executor, "executor", "", "how runs execute tasks: sequential or parallel (default: the program's)")
	fl.StringArrayVar(&f.env, envFlag, nil, "an environment variable of each run as NAME=value (repeat for more)")
	fl.StringVar(&f.rc.Platform, platformFlag, "", "the platform runs need, linux/ARCH[/VARIANT] like linux/arm64 (default: the agent's own)")
}

// runConfig returns the run configuration the flags give. A variable that
// looks like a credential is refused unless allow names it.
func (f *runConfigFlags) runConfig(allow []string) (api.RunConfig, error) {
	rc := f.rc
	if err := imagebuild.CheckRunEnv("--"+f.envFlag, f.env, allow); err != nil {
		return rc, usageError{err}
	}
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return rc, usagef("--%s %q: want NAME=value", f.envFlag, kv)
		}
		if rc.Env == nil {
			rc.Env = map[string]string{}
		}
		rc.Env[k] = v
	}
	return rc, nil
}

// short shortens a hash for a table.
func short(hash string) string {
	if _, h, ok := strings.Cut(hash, ":"); ok {
		hash = h
	}
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

func (c *CLI) flowListCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the flows of a project",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			fs, err := cl.Flows(cmd.Context(), f.project, "")
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, api.Flows{Flows: fs})
			}
			tf := c.times()
			t := newTable(c.stdout, "NAME", "VERSION", "UPDATED", "ID")
			for _, fl := range fs {
				t.row(fl.Name, fl.LatestVersion, tf.format(fl.UpdatedAt), fl.ID)
			}
			return t.flush()
		},
	}
	c.addClientFlags(cmd, &f, true)
	return cmd
}

// findFlow finds a flow by name in project, or by ID.
func findFlow(ctx context.Context, cl *client.Client, project, nameOrID string) (*api.FlowDetail, error) {
	if _, err := uuid.Parse(nameOrID); err == nil {
		d, err := cl.Flow(ctx, nameOrID)
		if err == nil || !errors.Is(err, reeve.ErrNotFound) {
			return d, err
		}
	}
	fs, err := cl.Flows(ctx, project, nameOrID)
	if err != nil {
		return nil, err
	}
	if len(fs) == 0 {
		return nil, reeve.Errorf(reeve.CodeNotFound, "no flow %q in project %q: see reeve flow list --project %s", nameOrID, project, project)
	}
	return cl.Flow(ctx, fs[0].ID)
}

func (c *CLI) flowShowCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "show NAME|ID",
		Short: "Show a flow: its parameters, versions and schedules",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			d, err := findFlow(cmd.Context(), cl, f.project, args[0])
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, d)
			}
			c.writeFlow(d)
			return nil
		},
	}
	c.addClientFlags(cmd, &f, true)
	return cmd
}

// writeFlow prints a flow with its newest version's parameters, its
// versions and its schedules.
func (c *CLI) writeFlow(d *api.FlowDetail) {
	tf := c.times()
	w := c.stdout
	fmt.Fprintf(w, "Flow:     %s\n", d.Flow.Name)
	fmt.Fprintf(w, "ID:       %s\n", d.Flow.ID)
	fmt.Fprintf(w, "Version:  %d\n", d.Flow.LatestVersion)
	fmt.Fprintf(w, "Updated:  %s\n", tf.format(d.Flow.UpdatedAt))
	if len(d.Versions) > 0 {
		v := d.Versions[0]
		where := v.Storage.Path
		if v.Storage.Kind == "docker" {
			where = v.Storage.Image
		}
		fmt.Fprintf(w, "Program:  %s %s\n", v.Storage.Kind, where)
		if len(v.Labels) > 0 {
			fmt.Fprintf(w, "Labels:   %s\n", strings.Join(v.Labels, ", "))
		}
		if sp, err := spec.Decode(v.Spec); err == nil && len(sp.Parameters) > 0 {
			fmt.Fprintln(w, "\nPARAMETERS")
			t := newTable(w, "NAME", "TYPE", "DEFAULT")
			for _, p := range sp.Parameters {
				def := string(p.Default)
				if p.Required {
					def = "(required)"
				}
				t.row(p.Name, p.GoType, def)
			}
			t.flush()
		}
	}
	fmt.Fprintln(w, "\nVERSIONS")
	t := newTable(w, "VERSION", "SPEC", "PROGRAM", "LABELS", "CREATED", "ID")
	for _, v := range d.Versions {
		where := v.Storage.Path
		if v.Storage.Kind == "docker" {
			where = v.Storage.Image
		}
		t.row(v.Version, short(v.SpecHash), where, strings.Join(v.Labels, ","), tf.format(v.CreatedAt), v.ID)
	}
	t.flush()
	if len(d.Schedules) > 0 {
		fmt.Fprintln(w, "\nSCHEDULES")
		t := newTable(w, "WHEN", "STATE", "NEXT RUN", "ID")
		for _, sc := range d.Schedules {
			when := sc.Cron
			if sc.Timezone != "" {
				when += " (" + sc.Timezone + ")"
			}
			if sc.Cron == "" {
				when = "every " + (durationText(sc.Interval))
			}
			st := "active"
			if sc.Paused {
				st = "paused"
			}
			next := ""
			if len(sc.NextRuns) > 0 {
				next = tf.format(sc.NextRuns[0])
			}
			t.row(when, st, next, sc.ID)
		}
		t.flush()
	}
}

// durationText formats an api.Duration ("1h30m0s").
func durationText(d api.Duration) string {
	b, _ := d.MarshalText()
	return string(b)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
