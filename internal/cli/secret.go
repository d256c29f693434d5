package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/reevehq/reeve/api"
)

func (c *CLI) secretCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Set, list and remove a project's secrets (values are never shown)",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  groupRun,
	}
	cmd.AddCommand(c.secretSetCommand(), c.secretListCommand(), c.secretRmCommand())
	return cmd
}

func (c *CLI) secretSetCommand() *cobra.Command {
	var (
		f        clientFlags
		fromFile string
	)
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Set a secret from standard input or a file",
		Long: "Set the secret NAME of a project. The value is read from --from-file (as it is), else\n" +
			"from standard input (one trailing line break removed), typed without echo on a terminal.\n" +
			"It is never taken from a flag or an argument, which other users could see in the\n" +
			"process list and which shells keep in their history.",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			value, err := c.readSecret("value of secret "+name, fromFile)
			if err != nil {
				return err
			}
			if value == "" {
				return usagef("the value of secret %s is empty: give it on standard input or with --from-file", name)
			}
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			s, err := cl.SetSecret(cmd.Context(), f.project, name, value)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, s)
			}
			fmt.Fprintf(c.stdout, "Set secret %s in project %s\n", s.Name, f.project)
			return nil
		},
	}
	c.addClientFlags(cmd, &f, true)
	cmd.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file")
	return cmd
}

func (c *CLI) secretListCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List a project's secrets: names and times, never values",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			ss, err := cl.Secrets(cmd.Context(), f.project)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, api.Secrets{Secrets: ss})
			}
			tf := c.times()
			t := newTable(c.stdout, "NAME", "CREATED", "UPDATED")
			for _, s := range ss {
				t.row(s.Name, tf.format(s.CreatedAt), tf.format(s.UpdatedAt))
			}
			return t.flush()
		},
	}
	c.addClientFlags(cmd, &f, true)
	return cmd
}

func (c *CLI) secretRmCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Remove a secret",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			if err := cl.DeleteSecret(cmd.Context(), f.project, args[0]); err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, map[string]string{"project": f.project, "name": args[0], "deleted": "true"})
			}
			fmt.Fprintf(c.stdout, "Removed secret %s from project %s\n", args[0], f.project)
			return nil
		},
	}
	c.addClientFlags(cmd, &f, true)
	return cmd
}
