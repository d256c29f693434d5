package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/spec"
)

// statusOf is THE table from error code to HTTP status. The client maps the
// code in the body back to a reeve error, so errors.Is works across the wire.
var statusOf = map[reeve.ErrorCode]int{
	reeve.CodeInvalid:      http.StatusBadRequest,
	reeve.CodeNotFound:     http.StatusNotFound,
	reeve.CodeConflict:     http.StatusConflict,
	reeve.CodeUnauthorized: http.StatusUnauthorized,
	reeve.CodeForbidden:    http.StatusForbidden,
	reeve.CodeUnavailable:  http.StatusServiceUnavailable,
	reeve.CodeInternal:     http.StatusInternalServerError,
}

// codeOf returns the reeve code of err; spec errors are invalid requests.
func codeOf(err error) reeve.ErrorCode {
	if errors.Is(err, spec.ErrInvalid) {
		return reeve.CodeInvalid
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return reeve.CodeInvalid
	}
	return reeve.CodeOf(err)
}

// writeError answers err as an api.ErrorBody with its status. Internal
// errors are logged and answered with a generic message, so no detail of
// the server (or a secret) leaks to the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := codeOf(err)
	msg := err.Error()
	if code == reeve.CodeInternal {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error: the server logged the details"
	}
	if code == reeve.CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="reeve"`)
	}
	writeJSON(w, statusOf[code], api.ErrorBody{Error: api.ErrorDetail{Code: string(code), Message: msg}})
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status == http.StatusNoContent || v == nil {
		return
	}
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// invalid returns an invalid-request error.
func invalid(format string, args ...any) error {
	return reeve.Errorf(reeve.CodeInvalid, format, args...)
}

// decode reads r's body into v strictly: at most limit bytes, one JSON
// value, no unknown fields. Its errors say what was wrong, where.
func decode(r *http.Request, w http.ResponseWriter, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return invalid("request body must be JSON (Content-Type: application/json), not %q", ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return decodeError(err, limit)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var (
			typeErr *json.UnmarshalTypeError
			syntax  *json.SyntaxError
		)
		named := errors.As(err, &syntax) || errors.As(err, &typeErr) && typeErr.Field != ""
		err = decodeError(err, limit)
		if !named {
			if name := failingField(body, v); name != "" {
				err = invalid("field %q: %s", name, strings.TrimPrefix(err.Error(), "request body: "))
			}
		}
		return err
	}
	if dec.More() {
		return invalid("request body has more than one JSON value: send one object")
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return decodeError(err, limit)
		}
		return invalid("request body has data after the JSON object: send one object")
	}
	return nil
}

// failingField finds the top-level field of body that does not decode into
// its field of the struct v points to, for errors that the JSON decoder
// reports without a field (those of UnmarshalJSON/UnmarshalText methods).
func failingField(body []byte, v any) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return ""
	}
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return ""
	}
	t = t.Elem()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		raw, ok := fields[name]
		if !ok || name == "" || name == "-" {
			continue
		}
		if json.Unmarshal(raw, reflect.New(f.Type).Interface()) != nil {
			return name
		}
	}
	return ""
}

// decodeError turns a JSON decoding error into a message that names the
// problem and, where known, the field.
func decodeError(err error, limit int64) error {
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		tooBig    *http.MaxBytesError
		unmarshal *json.InvalidUnmarshalError
	)
	switch {
	case errors.Is(err, io.EOF):
		return invalid("request body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("request body is not valid JSON: it ends too early")
	case errors.As(err, &syntax):
		return invalid("request body is not valid JSON: %v (at byte %d)", syntax, syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return invalid("field %q must be %s, not JSON %s", typeErr.Field, typeName(typeErr.Type.String()), typeErr.Value)
		}
		return invalid("request body must be a JSON object, not %s", typeErr.Value)
	case errors.As(err, &tooBig):
		return invalid("request body is larger than %d bytes: send less", limit)
	case errors.As(err, &unmarshal):
		return fmt.Errorf("decode request: %w", err)
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return invalid("request body has unknown field %s: remove it (check its spelling)", name)
	}
	// Errors of UnmarshalJSON/UnmarshalText methods (times, durations, states).
	return invalid("request body: %s", strings.TrimPrefix(msg, "json: "))
}

// typeName says a Go type the way a JSON user reads it.
func typeName(t string) string {
	switch {
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), t == "float64", t == "api.Duration":
		if t == "api.Duration" {
			return `a duration string such as "15m"`
		}
		return "a number"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "api."), strings.HasPrefix(t, "state."):
		return "an object"
	case t == "time.Time":
		return "an RFC 3339 time string"
	}
	return t
}
