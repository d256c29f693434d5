package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/reevehq/reeve/client"
)

func (c *CLI) loginCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Check an API token against a server and save both for the other commands",
		Long: "Check an API token against the server, then save the server's URL and the token in the\n" +
			"client configuration file (readable by you only), where the other commands find them.\n" +
			"The token is read from --token, else from standard input (typed without echo on a terminal).",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := c.configPath(&f)
			if err != nil {
				return err
			}
			cfg, err := readConfig(path)
			if err != nil {
				return err
			}
			server := f.server
			if server == "" {
				server = cfg.Server
			}
			if server == "" {
				server = defaultServer
			}
			token := f.token
			if token == "" {
				if token, err = c.readSecret("API token for "+server, ""); err != nil {
					return err
				}
				token = strings.TrimSpace(token)
			}
			if token == "" {
				return usagef("no API token: give --token, or pipe it in")
			}
			cl, err := client.New(server, token, client.WithUserAgent("reeve-cli"))
			if err != nil {
				return usageError{err}
			}
			projects, err := cl.Projects(cmd.Context())
			if err != nil {
				return fmt.Errorf("login to %s: %w", cl.URL(), err)
			}
			if err := writeConfig(path, fileConfig{Server: cl.URL(), Token: token}); err != nil {
				return err
			}
			if f.json {
				return printJSON(c.stdout, map[string]any{"server": cl.URL(), "config": path, "projects": projects})
			}
			fmt.Fprintf(c.stdout, "Logged in to %s (%s). Saved to %s\n", cl.URL(), plural(len(projects), "project"), path)
			return nil
		},
	}
	addConnFlags(cmd.Flags(), &f)
	cmd.Flags().BoolVar(&f.json, "json", false, "print the server, the configuration file and the projects the token sees as JSON")
	return cmd
}

// readSecret reads a secret value: from file if given, else from standard
// input: typed without echo after a prompt on a terminal, else read whole
// (one trailing line break removed).
func (c *CLI) readSecret(prompt, file string) (string, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", prompt, err)
		}
		return string(data), nil
	}
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(c.stderr, "%s (input hidden): ", prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		if err != nil {
			return "", fmt.Errorf("read %s from the terminal: %w", prompt, err)
		}
		return string(b), nil
	}
	data, err := io.ReadAll(bufio.NewReader(c.stdin))
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s from standard input: %w", prompt, err)
	}
	s := string(data)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	return s, nil
}
