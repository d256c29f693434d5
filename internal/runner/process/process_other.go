//go:build !unix

package process

import (
	"context"
	"errors"

	"github.com/reevehq/reeve/internal/runner"
)

// Runner would start flow programs as child processes; it needs a Unix
// system (process groups, /proc).
type Runner struct{}

var _ runner.Runner = (*Runner)(nil)

var errOS = errors.New("the process runner runs on Linux and other Unix systems only")

// New returns an error: this system is not supported.
func New(cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return nil, errOS
}

// Start returns an error: this system is not supported.
func (r *Runner) Start(ctx context.Context, spec runner.Spec) (runner.Handle, error) {
	return nil, errOS
}

// Recover returns runner.ErrGone: this system is not supported.
func (r *Runner) Recover(ctx context.Context, saved runner.Saved, out func(runner.Line)) (runner.Handle, error) {
	return nil, runner.ErrGone
}
