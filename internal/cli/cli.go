// Package cli is the reeve command: the server (reeve server) and the
// client commands that drive it (reeve login, project, flow, run, secret,
// token, agent).
//
// It is the only package that reads flags, REEVE_* environment variables
// and the client configuration file, and the only one that wires concrete
// adapters (the SQLite and PostgreSQL stores, the scheduler, the secret
// box) together. Every configuration flag has a REEVE_* variable, used when
// the flag is not given; docs/config.md lists them.
//
// Exit codes: 0 success, 1 the command failed, 2 bad command line or
// configuration (nothing was done).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes of the reeve command.
const (
	ExitOK     = 0 // the command succeeded
	ExitFailed = 1 // the command failed
	ExitUsage  = 2 // bad command line or configuration: nothing was done
)

// Options are what the command reads and writes besides its arguments.
// Zero fields mean the process's own: os.Stdin, os.Stdout, os.Stderr and
// os.LookupEnv.
type Options struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// LookupEnv reads an environment variable.
	LookupEnv func(name string) (string, bool)
	// Terminal says whether Stdout is a terminal (tables then show
	// relative times); nil means: Stdout is an *os.File on a terminal.
	Terminal func() bool
	// Listening, if set, is called with the server's address once
	// `reeve server` listens (tests use it to find a server started on
	// port 0).
	Listening func(addr string)
}

// CLI is the reeve command. Create it with New.
type CLI struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	lookupEnv func(string) (string, bool)
	terminal  func() bool
	listening func(addr string)
}

// New returns the command with opts.
func New(opts Options) *CLI {
	c := &CLI{
		stdin:     opts.Stdin,
		stdout:    opts.Stdout,
		stderr:    opts.Stderr,
		lookupEnv: opts.LookupEnv,
		terminal:  opts.Terminal,
		listening: opts.Listening,
	}
	if c.stdin == nil {
		c.stdin = os.Stdin
	}
	if c.stdout == nil {
		c.stdout = os.Stdout
	}
	if c.stderr == nil {
		c.stderr = os.Stderr
	}
	if c.lookupEnv == nil {
		c.lookupEnv = os.LookupEnv
	}
	if c.terminal == nil {
		out := c.stdout
		c.terminal = func() bool { return isTerminal(out) }
	}
	return c
}

// getenv returns an environment variable, "" when unset.
func (c *CLI) getenv(name string) string {
	v, _ := c.lookupEnv(name)
	return v
}

// usageError marks an error that means nothing was done because the
// command line or the configuration was wrong (exit 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// usagef returns a usage error.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitError ends the command with a code and no message of its own.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// Run runs the command with args (without the program name) and returns
// its exit code. Errors are printed as "reeve: <message>" on stderr.
func (c *CLI) Run(ctx context.Context, args []string) int {
	root := c.command()
	ran := false // whether a command's RunE started: errors before it are cobra's usage errors
	wrapRun(root, &ran)
	root.SetArgs(args)
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	var ee exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, new(usageError)) || !ran:
		msg := err.Error()
		if cmd != nil && !strings.Contains(msg, "--help") {
			msg += fmt.Sprintf(" (see %s --help)", cmd.CommandPath())
		}
		fmt.Fprintln(c.stderr, "reeve:", msg)
		return ExitUsage
	default:
		fmt.Fprintln(c.stderr, "reeve:", err)
		return ExitFailed
	}
}

// wrapRun makes every command's RunE record that it started.
func wrapRun(cmd *cobra.Command, ran *bool) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			*ran = true
			return run(cmd, args)
		}
	}
	for _, sub := range cmd.Commands() {
		wrapRun(sub, ran)
	}
}

func (c *CLI) command() *cobra.Command {
	root := &cobra.Command{
		Use:   "reeve",
		Short: "Run the Reeve server, and drive it: projects, flows, runs, secrets, tokens, agents",
		Long: "reeve runs the Reeve server (reeve server) and drives it over its API.\n\n" +
			"Client commands find the server and the API token in --server and --token, else in\n" +
			"REEVE_SERVER and REEVE_TOKEN, else in the file `reeve login` writes.\n\n" +
			"Exit codes: 0 success, 1 the command failed, 2 bad command line or configuration.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("name a command: server, login, project, flow, run, secret, token or agent")
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return c.applyEnv(cmd.Flags())
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{err}
	})
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		c.serverCommand(),
		c.loginCommand(),
		c.projectCommand(),
		c.flowCommand(),
		c.runCommand(),
		c.secretCommand(),
		c.tokenCommand(),
		c.agentCommand(),
		c.buildCommand(),
		c.deployCommand(),
		c.quickstartCommand(),
	)
	return root
}

// envAnnotation is the flag annotation naming a flag's REEVE_* variable.
const envAnnotation = "reeve_env"

// bindEnv gives the flag name of fs the environment variable env, used when
// the flag is not given.
func bindEnv(fs *pflag.FlagSet, name, env string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("cli: no flag --" + name)
	}
	_ = fs.SetAnnotation(name, envAnnotation, []string{env})
	f.Usage += " [" + env + "]"
}

// applyEnv sets every flag of fs that was not given and has a variable
// that is set, from the variable.
func (c *CLI) applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		env := f.Annotations[envAnnotation]
		if err != nil || f.Changed || len(env) == 0 {
			return
		}
		v, ok := c.lookupEnv(env[0])
		if !ok || v == "" {
			return
		}
		if e := f.Value.Set(v); e != nil {
			// The value is not quoted: REEVE_TOKEN and the database URL are secrets.
			err = usagef("%s (for --%s) is not valid: %v", env[0], f.Name, e)
		}
	})
	return err
}

// usageArgs makes cobra's argument checks usage errors (exit 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && termIsTerminal(int(f.Fd()))
}
