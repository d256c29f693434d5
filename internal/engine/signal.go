package engine

import (
	"errors"
	"time"

	"github.com/reevehq/reeve/internal/state"
)

// Signal is an error a task returns to choose its own next state: Skipped,
// Failed (with no retry) or Retrying.
type Signal struct {
	Kind    state.Kind // Skipped, Failed or Retrying
	Message string
	Delay   time.Duration // Retrying: wait this long (0: the task's retry delay)
}

func (s *Signal) Error() string {
	if s.Message == "" {
		return s.Kind.String()
	}
	return s.Message
}

// asSignal returns the signal in err's chain, if any.
func asSignal(err error) *Signal {
	var s *Signal
	if errors.As(err, &s) {
		return s
	}
	return nil
}
