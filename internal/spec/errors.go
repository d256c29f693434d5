package spec

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched, with errors.Is, by every error that Decode, Validate
// and ReadDir return because a document is not a valid spec (as opposed to an
// I/O failure). Servers map it to their "invalid input" error code.
var ErrInvalid = errors.New("invalid flow spec")

// invalidError is an error about the content of a spec. Its message is the
// wrapped error's alone: it matches ErrInvalid without repeating its text.
type invalidError struct{ err error }

func (e *invalidError) Error() string        { return e.err.Error() }
func (e *invalidError) Unwrap() error        { return e.err }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// invalidf formats an error that matches ErrInvalid; %w verbs wrap as usual.
func invalidf(format string, args ...any) error {
	return &invalidError{fmt.Errorf(format, args...)}
}
