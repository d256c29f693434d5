// Package process is the runner that starts flow programs as child
// processes of the agent, on the agent's machine (storage kind "local").
//
// A program runs as `PROGRAM execute` in a process group of its own, so
// that a signal to the agent (Ctrl-C in its terminal) does not reach it and
// Stop can signal the program and whatever it started. Its stdout and
// stderr go to files in the runner's directory, which the runner reads line
// by line: a program keeps running, and keeps writing its output, when the
// agent stops or restarts (with pipes it would die of SIGPIPE at its next
// line). The files are deleted once the program has exited and its output
// has been read.
//
// Recover finds a program again after the agent restarted by its process
// ID and start time (the start time, from /proc/PID/stat, guards against a
// reused process ID; without /proc no program is recovered). A recovered
// program is not the new agent's child: the runner sees it end by polling,
// but not its exit status.
package process

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Kind is the runner's kind, in Saved records.
const Kind = "process"

// Config configures the runner.
type Config struct {
	// Dir holds the output files of the running programs (required; it is
	// created with mode 0700). Keep it on the machine's local disk, and
	// the same across agent restarts.
	Dir string
	// Env is the environment programs start with, before the run
	// configuration's variables and the contract's. Nil means the agent's
	// own environment without its REEVE_* variables (the agent's token
	// must not leak into flow programs).
	Env []string
	// PollInterval is how often the output files are read and a recovered
	// program is checked; 0 means 100ms.
	PollInterval time.Duration
}

// Validate checks the configuration, naming the offending field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("process runner: Config.Dir is empty: give the directory for the programs' output files")
	case !filepath.IsAbs(c.Dir):
		return fmt.Errorf("process runner: Config.Dir %q is not an absolute path", c.Dir)
	case c.PollInterval < 0:
		return fmt.Errorf("process runner: Config.PollInterval %v is negative", c.PollInterval)
	}
	return nil
}
