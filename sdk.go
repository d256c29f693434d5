package reeve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/reevehq/reeve/internal/engine"
	"github.com/reevehq/reeve/internal/result"
	"github.com/reevehq/reeve/internal/state"
)

// Skip ends the calling task Skipped. Return it from the task function.
// Downstream tasks are skipped too, unless they opt out with
// SkipOnUpstreamSkip(false).
func Skip(msg string) error { return &engine.Signal{Kind: state.Skipped, Message: msg} }

// Fail ends the calling task Failed at once, with no retry.
func Fail(msg string) error { return &engine.Signal{Kind: state.Failed, Message: msg} }

// Retry asks for the calling task to run again after its retry delay,
// even when its retries are used up: the task decides, so make sure it
// stops asking.
func Retry(msg string) error { return &engine.Signal{Kind: state.Retrying, Message: msg} }

// RetryAfter is Retry with an explicit delay.
func RetryAfter(d time.Duration, msg string) error {
	return &engine.Signal{Kind: state.Retrying, Message: msg, Delay: d}
}

// Secret returns the value of a secret the flow declared with Secrets. Read
// secrets with it rather than os.Getenv: in local runs it comes from the
// REEVE_SECRET_<NAME> variable or the secrets file; in server runs, from the
// server. A missing secret is an error naming it; its value is redacted from
// the run's state messages and logs.
func Secret(ctx context.Context, name string) (string, error) { return engine.Secret(ctx, name) }

// Logger returns the logger of the task run that ctx belongs to: records
// carry the flow, flow run, task and task run, and are kept with the task
// run. Outside a task it returns slog.Default().
func Logger(ctx context.Context) *slog.Logger { return engine.Logger(ctx) }

// TaskInfo describes the running task run: flow, flow run, task, task run,
// map index and attempt.
type TaskInfo = engine.TaskInfo

// Info returns the task run that ctx belongs to, or false outside a task.
func Info(ctx context.Context) (TaskInfo, bool) { return engine.Info(ctx) }

// ResultSerializer turns task results into bytes and back, for result stores.
type ResultSerializer = result.Serializer

// RegisterSerializer makes a serializer available by name to the
// Serializer option.
func RegisterSerializer(s ResultSerializer) error { return result.RegisterSerializer(s) }

// paramText is a parameter value given as text on a command line: used as
// is for string parameters, parsed as JSON for the others.
type paramText string

// decodeAs converts a supplied value into type t: values of type t as they
// are, command-line text and JSON by decoding, anything else through JSON.
func decodeAs(t reflect.Type, v any) (any, error) {
	if v != nil && reflect.TypeOf(v) == t {
		return v, nil
	}
	ptr := reflect.New(t)
	var data []byte
	switch x := v.(type) {
	case paramText:
		if t.Kind() == reflect.String {
			ptr.Elem().SetString(string(x))
			return ptr.Elem().Interface(), nil
		}
		data = []byte(x)
	case json.RawMessage:
		data = x
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("cannot use %T as %v: %w", v, t, err)
		}
		data = b
	}
	if err := json.Unmarshal(data, ptr.Interface()); err != nil {
		if x, ok := v.(paramText); ok {
			return nil, fmt.Errorf("want %s (Go type %v), got %q; give JSON for non-string parameters", jsonType(t), t, string(x))
		}
		shown := string(data)
		if len(shown) > 60 {
			shown = shown[:57] + "..."
		}
		return nil, fmt.Errorf("cannot use %s as %v (%s)", shown, t, jsonProblem(err))
	}
	return ptr.Elem().Interface(), nil
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return "want " + te.Type.String() + ", got a JSON " + te.Value
	case errors.As(err, &se):
		return "not valid JSON: " + se.Error()
	}
	return err.Error()
}
