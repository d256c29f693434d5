package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/reevehq/reeve/api"
)

func (c *CLI) agentCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "List the agents that run flows",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  groupRun,
	}
	cmd.AddCommand(c.agentListCommand())
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
			t := newTable(c.stdout, "NAME", "LABELS", "LAST SEEN", "ID")
			for _, a := range as {
				t.row(a.Name, strings.Join(a.Labels, ","), tf.format(a.LastSeenAt), a.ID)
			}
			return t.flush()
		},
	}
	c.addClientFlags(cmd, &f, false)
	return cmd
}
