package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/reevehq/reeve/api"
)

func (c *CLI) projectCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "project",
		Short: "Create and list projects (they group flows, runs and secrets)",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  groupRun,
	}
	cmd.AddCommand(c.projectCreateCommand(), c.projectListCommand())
	return cmd
}

// groupRun is the RunE of a command group run without a subcommand.
func groupRun(cmd *cobra.Command, _ []string) error {
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return usagef("name a %s command: %s", cmd.Name(), joinOr(names))
}

func joinOr(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	s := ""
	for i, n := range names[:len(names)-1] {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s + " or " + names[len(names)-1]
}

func (c *CLI) projectCreateCommand() *cobra.Command {
	var (
		f           clientFlags
		description string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project (admin tokens only)",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			p, err := cl.CreateProject(cmd.Context(), api.CreateProject{Name: args[0], Description: description})
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, p)
			}
			fmt.Fprintf(c.stdout, "Created project %s (%s)\n", p.Name, p.ID)
			return nil
		},
	}
	c.addClientFlags(cmd, &f, false)
	cmd.Flags().StringVar(&description, "description", "", "what the project holds")
	return cmd
}

func (c *CLI) projectListCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List projects",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			ps, err := cl.Projects(cmd.Context())
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, api.Projects{Projects: ps})
			}
			tf := c.times()
			t := newTable(c.stdout, "NAME", "CREATED", "DESCRIPTION", "ID")
			for _, p := range ps {
				t.row(p.Name, tf.format(p.CreatedAt), p.Description, p.ID)
			}
			return t.flush()
		},
	}
	c.addClientFlags(cmd, &f, false)
	return cmd
}
