package store

// Dialect-independent checks and encodings shared by the SQLite and
// PostgreSQL stores: they validate and normalise records before they are
// written, so both stores accept, reject and report the same inputs alike.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/state"
)

// invalid returns an invalid-request error.
func invalid(format string, args ...any) error {
	return reeve.Errorf(reeve.CodeInvalid, format, args...)
}

// Micro returns t in UTC, truncated to microseconds, the precision both
// stores keep; the zero time stays zero.
func Micro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Microsecond).UTC()
}

// EncodeState normalises st as the stores keep it (times in UTC to the
// microsecond; a zero Time becomes now(), which is called only then) and
// returns it with its JSON text. A state of an unknown kind is ErrInvalid.
func EncodeState(st state.State, now func() time.Time) (state.State, string, error) {
	if st.Kind >= state.Kind(len(state.Kinds())) {
		return st, "", invalid("state kind %d is not a kind of state", uint8(st.Kind))
	}
	if st.Time.IsZero() {
		st.Time = now()
	}
	st.Time = Micro(st.Time)
	st.StartAt = Micro(st.StartAt)
	b, err := json.Marshal(st)
	if err != nil {
		return st, "", invalid("state %s: %v", st.Kind, err)
	}
	return st, string(b), nil
}

// DecodeState reads a state as EncodeState wrote it.
func DecodeState(js string) (state.State, error) {
	var st state.State
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		return state.State{}, fmt.Errorf("decode state: %w", err)
	}
	return st, nil
}

// IsZeroState reports whether no state was given.
func IsZeroState(st state.State) bool {
	return st.Kind == state.Pending && st.Message == "" && st.Time.IsZero() && st.StartAt.IsZero() &&
		st.Attempt == 0 && st.Result == nil && st.Counts == nil
}

// CompactParams checks that a flow run's params, if any, is a JSON object
// and returns it compacted; ok is false when there are none. Parameters
// that are not a JSON object are ErrInvalid.
func CompactParams(params json.RawMessage) (text string, ok bool, err error) {
	if len(bytes.TrimSpace(params)) == 0 {
		return "", false, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, params); err != nil || buf.Bytes()[0] != '{' {
		return "", false, invalid("the flow run's parameters are not a JSON object")
	}
	return buf.String(), true, nil
}

// RegistrationColumns is a Registration's columns as the stores keep them:
// JSON texts of its storage, labels, run configuration and (compacted) spec.
type RegistrationColumns struct {
	Storage, Labels, RunConfig, Spec string
}

// CheckRegistration checks a flow registration (a project and flow name, a
// spec hash, a JSON spec; else ErrInvalid) and returns its columns.
func CheckRegistration(r Registration) (RegistrationColumns, error) {
	if r.Project == "" || r.Flow == "" {
		return RegistrationColumns{}, invalid("a flow registration needs a project and a flow name")
	}
	if r.SpecHash == "" {
		return RegistrationColumns{}, invalid("flow %q: a flow registration needs the spec's hash", r.Flow)
	}
	var spec bytes.Buffer
	if len(r.Spec) == 0 || json.Compact(&spec, r.Spec) != nil {
		return RegistrationColumns{}, invalid("flow %q: the spec is not a JSON document", r.Flow)
	}
	storage, err := json.Marshal(r.Storage)
	if err != nil {
		return RegistrationColumns{}, invalid("flow %q: storage: %v", r.Flow, err)
	}
	labels, err := EncodeLabels(r.Labels)
	if err != nil {
		return RegistrationColumns{}, invalid("flow %q: labels: %v", r.Flow, err)
	}
	runConfig, err := json.Marshal(r.RunConfig)
	if err != nil {
		return RegistrationColumns{}, invalid("flow %q: run config: %v", r.Flow, err)
	}
	return RegistrationColumns{Storage: string(storage), Labels: labels, RunConfig: string(runConfig), Spec: spec.String()}, nil
}

// EncodeLabels returns labels as a JSON array, [] for none.
func EncodeLabels(labels []string) (string, error) {
	if labels == nil {
		labels = []string{}
	}
	b, err := json.Marshal(labels)
	return string(b), err
}

// RunCursor is the position after the last row of a page of flow runs. Its
// text form is the same in both stores.
type RunCursor struct {
	Created int64 // microseconds since the Unix epoch
	ID      string
}

// EncodeCursor returns the text form of c.
func EncodeCursor(c RunCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.Created, 10) + "," + c.ID))
}

// DecodeCursor parses a cursor EncodeCursor returned; anything else is
// ErrInvalid.
func DecodeCursor(s string) (RunCursor, error) {
	bad := invalid("malformed cursor %q: pass the cursor of the previous page unchanged, or none for the first page", s)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return RunCursor{}, bad
	}
	created, id, ok := strings.Cut(string(b), ",")
	if !ok || id == "" {
		return RunCursor{}, bad
	}
	n, err := strconv.ParseInt(created, 10, 64)
	if err != nil {
		return RunCursor{}, bad
	}
	return RunCursor{Created: n, ID: id}, nil
}

// CheckTaskRunWrite checks write i of a batch given to WriteTaskRunStates
// (a task run key, an Expect of 0 or more; else ErrInvalid) and encodes its
// state as EncodeState does, calling now only for a state without a time.
func CheckTaskRunWrite(i int, w TaskRunWrite, now func() time.Time) (state.State, string, error) {
	if w.Key == "" {
		return state.State{}, "", invalid("write %d has no task run key", i)
	}
	if w.Expect < 0 {
		return state.State{}, "", invalid("write %d to task run %q expects version %d: a version is 0 (create) or more", i, w.Key, w.Expect)
	}
	st, js, err := EncodeState(w.State, now)
	if err != nil {
		return state.State{}, "", fmt.Errorf("task run %q: %w", w.Key, err)
	}
	return st, js, nil
}
