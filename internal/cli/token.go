package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/server"
)

func (c *CLI) tokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens (admin tokens only)",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  groupRun,
	}
	cmd.AddCommand(c.tokenCreateCommand(), c.tokenListCommand(), c.tokenRevokeCommand(), c.tokenGenerateCommand())
	return cmd
}

func (c *CLI) tokenCreateCommand() *cobra.Command {
	var (
		f       clientFlags
		role    string
		expires time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create NAME --role admin|developer|agent",
		Short: "Create an API token and print its secret, once",
		Long: "Create an API token. Roles: admin (everything), developer (register flows, create and\n" +
			"cancel runs, set secrets, read everything but tokens), agent (claim and run flow runs).\n" +
			"The token's secret is printed once: the server keeps only a hash of it.",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch role {
			case api.RoleAdmin, api.RoleDeveloper, api.RoleAgent:
			case "":
				return usagef("give the token's role: --role admin, developer or agent")
			default:
				return usagef("--role %q is not a role: use admin, developer or agent", role)
			}
			if expires < 0 {
				return usagef("--expires %v is negative", expires)
			}
			req := api.CreateToken{Name: args[0], Role: role}
			if expires > 0 {
				req.ExpiresAt = time.Now().Add(expires).UTC()
			}
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			nt, err := cl.CreateToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, nt)
			}
			fmt.Fprintf(c.stderr, "Created %s token %q (%s). Its secret is shown now and never again:\n", nt.Token.Role, nt.Token.Name, nt.Token.ID)
			fmt.Fprintln(c.stdout, nt.Secret)
			return nil
		},
	}
	c.addClientFlags(cmd, &f, false)
	cmd.Flags().StringVar(&role, "role", "", "the token's role: admin, developer or agent")
	cmd.Flags().DurationVar(&expires, "expires", 0, "the token expires after this long, e.g. 720h (default never)")
	return cmd
}

func (c *CLI) tokenListCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List API tokens (their secrets are never shown)",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			ts, err := cl.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, api.Tokens{Tokens: ts})
			}
			tf := c.times()
			t := newTable(c.stdout, "NAME", "ROLE", "STATUS", "CREATED", "EXPIRES", "ID")
			now := time.Now()
			for _, tok := range ts {
				status := "active"
				switch {
				case !tok.RevokedAt.IsZero():
					status = "revoked " + tf.format(tok.RevokedAt)
				case !tok.ExpiresAt.IsZero() && !now.Before(tok.ExpiresAt):
					status = "expired"
				}
				t.row(tok.Name, tok.Role, status, tf.format(tok.CreatedAt), tf.format(tok.ExpiresAt), tok.ID)
			}
			return t.flush()
		},
	}
	c.addClientFlags(cmd, &f, false)
	return cmd
}

func (c *CLI) tokenRevokeCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API token: it stops working at once",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := c.connect(&f)
			if err != nil {
				return err
			}
			tok, err := cl.RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, tok)
			}
			fmt.Fprintf(c.stdout, "Revoked %s token %q (%s)\n", tok.Role, tok.Name, tok.ID)
			return nil
		},
	}
	c.addClientFlags(cmd, &f, false)
	return cmd
}

func (c *CLI) tokenGenerateCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Print a new random token secret, for REEVE_ADMIN_TOKEN (no server is called)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret := server.NewTokenSecret()
			if asJSON {
				return printJSON(c.stdout, map[string]string{"secret": secret})
			}
			_, err := fmt.Fprintln(c.stdout, secret)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the secret as JSON")
	return cmd
}
