package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/reevehq/reeve/client"
)

// defaultServer is the server client commands call when none is
// configured: the address `reeve server` listens on by default.
const defaultServer = "http://127.0.0.1:4200"

// fileConfig is the client configuration file `reeve login` writes.
type fileConfig struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// clientFlags are the flags every client command has.
type clientFlags struct {
	server  string
	token   string
	config  string
	project string
	json    bool
}

// addClientFlags adds the connection flags (and --json) to cmd. Set
// project to add --project too.
func (c *CLI) addClientFlags(cmd *cobra.Command, f *clientFlags, project bool) {
	fl := cmd.Flags()
	addConnFlags(fl, f)
	if project {
		fl.StringVarP(&f.project, "project", "p", "default", "the project")
		bindEnv(fl, "project", "REEVE_PROJECT")
	}
	fl.BoolVar(&f.json, "json", false, "print the API's JSON instead of a table")
}

func addConnFlags(fl *pflag.FlagSet, f *clientFlags) {
	fl.StringVar(&f.server, "server", "", "the server's URL (default: the one reeve login saved, else "+defaultServer+")")
	fl.StringVar(&f.token, "token", "", "an API token (default: the one reeve login saved)")
	fl.StringVar(&f.config, "config", "", "the client configuration file (default: reeve/config.json in the user's configuration directory)")
	bindEnv(fl, "server", "REEVE_SERVER")
	bindEnv(fl, "token", "REEVE_TOKEN")
	bindEnv(fl, "config", "REEVE_CONFIG")
}

// userConfigDir is os.UserConfigDir, reading the environment through c.
func (c *CLI) userConfigDir() (string, error) {
	switch runtime.GOOS {
	case "darwin", "windows", "ios", "plan9":
		return os.UserConfigDir()
	}
	if x := c.getenv("XDG_CONFIG_HOME"); filepath.IsAbs(x) {
		return x, nil
	}
	home := c.getenv("HOME")
	if home == "" {
		return "", errors.New("neither $XDG_CONFIG_HOME nor $HOME is set")
	}
	return filepath.Join(home, ".config"), nil
}

// configPath returns the client configuration file's path.
func (c *CLI) configPath(f *clientFlags) (string, error) {
	if f.config != "" {
		return f.config, nil
	}
	dir, err := c.userConfigDir()
	if err != nil {
		return "", usagef("no configuration directory (%v): give --config (REEVE_CONFIG)", err)
	}
	return filepath.Join(dir, "reeve", "config.json"), nil
}

// readConfig reads the configuration file; a missing one is empty.
func readConfig(path string) (fileConfig, error) {
	var cfg fileConfig
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("read the configuration file: %w", err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("configuration file %s is not valid JSON (%v): fix it, or delete it and run reeve login", path, err)
	}
	return cfg, nil
}

// writeConfig writes the configuration file, readable by its owner only,
// whole or not at all.
func writeConfig(path string, cfg fileConfig) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create the configuration directory: %w", err)
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return fmt.Errorf("write the configuration file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("write the configuration file: %w", err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write the configuration file: %w", err)
	}
	return nil
}

// connect returns a client of the server f names (flags, else REEVE_*
// variables, else the configuration file).
func (c *CLI) connect(f *clientFlags) (*client.Client, error) {
	server, token := f.server, f.token
	if server == "" || token == "" {
		path, err := c.configPath(f)
		if err != nil {
			return nil, err
		}
		cfg, err := readConfig(path)
		if err != nil {
			return nil, err
		}
		if server == "" {
			server = cfg.Server
		}
		if token == "" {
			token = cfg.Token
		}
	}
	if server == "" {
		server = defaultServer
	}
	if token == "" {
		return nil, usagef("no API token: run `reeve login`, or give --token (REEVE_TOKEN)")
	}
	cl, err := client.New(server, token, client.WithUserAgent("reeve-cli"))
	if err != nil {
		return nil, usageError{err}
	}
	return cl, nil
}
