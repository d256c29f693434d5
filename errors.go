package reeve

import "github.com/reevehq/reeve/internal/errs"

// ErrorCode classifies an error for callers across process boundaries: the
// server maps each code to one HTTP status, and the client maps it back, so
// errors.Is(err, reeve.ErrNotFound) works across the wire.
type ErrorCode = errs.Code

// The error codes.
const (
	CodeInvalid      = errs.CodeInvalid      // the request is wrong; the message says what to change
	CodeNotFound     = errs.CodeNotFound     // the named thing does not exist
	CodeConflict     = errs.CodeConflict     // it exists already, or it changed since it was read
	CodeUnauthorized = errs.CodeUnauthorized // no valid credentials
	CodeForbidden    = errs.CodeForbidden    // valid credentials that may not do this
	CodeUnavailable  = errs.CodeUnavailable  // try again later
	CodeInternal     = errs.CodeInternal     // a bug or an unexpected failure
)

// Sentinel errors, one per code, for errors.Is.
var (
	ErrInvalid      = errs.ErrInvalid
	ErrNotFound     = errs.ErrNotFound
	ErrConflict     = errs.ErrConflict
	ErrUnauthorized = errs.ErrUnauthorized
	ErrForbidden    = errs.ErrForbidden
	ErrUnavailable  = errs.ErrUnavailable
	ErrInternal     = errs.ErrInternal
)

// Error is an error with a code and a message a user can act on. Its Is
// method makes errors.Is match any *Error of the same code, so
// errors.Is(err, reeve.ErrNotFound) holds for every not-found error.
type Error = errs.Error

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code ErrorCode, format string, args ...any) error {
	return errs.Errorf(code, format, args...)
}

// CodeOf returns the code of err: that of the first *Error in its chain,
// or CodeInternal.
func CodeOf(err error) ErrorCode { return errs.CodeOf(err) }
