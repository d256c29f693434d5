// Package errs holds Reeve's error codes and the *Error type. It is a leaf
// package so that both the SDK (package reeve) and the API client (package
// client, which the SDK's runner uses) can share them; package reeve
// re-exports everything here, and users should import it from there.
package errs

import (
	"errors"
	"fmt"
)

// Code classifies an error for callers across process boundaries: the
// server maps each code to one HTTP status, and the client maps it back, so
// errors.Is(err, reeve.ErrNotFound) works across the wire.
type Code string

// The error codes.
const (
	CodeInvalid      Code = "invalid"      // the request is wrong; the message says what to change
	CodeNotFound     Code = "not_found"    // the named thing does not exist
	CodeConflict     Code = "conflict"     // it exists already, or it changed since it was read
	CodeUnauthorized Code = "unauthorized" // no valid credentials
	CodeForbidden    Code = "forbidden"    // valid credentials that may not do this
	CodeUnavailable  Code = "unavailable"  // try again later
	CodeInternal     Code = "internal"     // a bug or an unexpected failure
)

// Sentinel errors, one per code, for errors.Is.
var (
	ErrInvalid      = &Error{Code: CodeInvalid, Message: "invalid request"}
	ErrNotFound     = &Error{Code: CodeNotFound, Message: "not found"}
	ErrConflict     = &Error{Code: CodeConflict, Message: "conflict"}
	ErrUnauthorized = &Error{Code: CodeUnauthorized, Message: "unauthorized"}
	ErrForbidden    = &Error{Code: CodeForbidden, Message: "forbidden"}
	ErrUnavailable  = &Error{Code: CodeUnavailable, Message: "unavailable"}
	ErrInternal     = &Error{Code: CodeInternal, Message: "internal error"}
)

// Error is an error with a code and a message a user can act on.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is match any *Error of the same code, so
// errors.Is(err, reeve.ErrNotFound) holds for every not-found error.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err: that of the first *Error in its chain,
// or CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
