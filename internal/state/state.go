// Package state defines the one state model of Reeve: the states a flow run
// or a task run moves through, with their messages, timestamps and results.
//
// The root package re-exports these types (reeve.State, reeve.Kind, ...) so
// users, the engine, the server and the UI all speak the same model. It is a
// leaf package: it imports nothing of Reeve.
package state

import (
	"encoding/json"
	"fmt"
	"time"
)

// Kind is the kind of a state. Its text form ("Success", "TimedOut", ...) is
// what specs, the API and the UI show.
type Kind uint8

// The kinds of state. A run starts Pending and ends in a finished kind.
const (
	Pending       Kind = iota // created, waiting for its upstream tasks
	Scheduled                 // waiting for its start time
	Submitted                 // claimed by an agent, not yet started (flow runs)
	Running                   // executing
	Retrying                  // failed an attempt, waiting to run again at StartAt
	Cancelling                // a cancel was asked for; the runner has not confirmed it yet (flow runs)
	Success                   // finished with a result
	Failed                    // finished with an error
	TimedOut                  // finished: the attempt exceeded its timeout (failed, retryable)
	TriggerFailed             // finished: its trigger was not met by its upstream states
	Skipped                   // finished: skipped by a signal or an upstream skip
	Cached                    // finished: reused a fresh result from the cache
	Mapped                    // finished: a mapped task whose children all succeeded
	Cancelled                 // finished: cancelled before or while running
	numKinds
)

var kindNames = [numKinds]string{
	Pending:       "Pending",
	Scheduled:     "Scheduled",
	Submitted:     "Submitted",
	Running:       "Running",
	Retrying:      "Retrying",
	Cancelling:    "Cancelling",
	Success:       "Success",
	Failed:        "Failed",
	TimedOut:      "TimedOut",
	TriggerFailed: "TriggerFailed",
	Skipped:       "Skipped",
	Cached:        "Cached",
	Mapped:        "Mapped",
	Cancelled:     "Cancelled",
}

// Kinds returns every kind, in the order above.
func Kinds() []Kind {
	out := make([]Kind, numKinds)
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}

// String returns the kind's name, e.g. "TimedOut".
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind is the inverse of Kind.String. It is case-sensitive.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown state %q: want one of Pending, Scheduled, Submitted, Running, Retrying, Cancelling, Success, Failed, TimedOut, TriggerFailed, Skipped, Cached, Mapped, Cancelled", s)
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) {
	if k >= numKinds {
		return nil, fmt.Errorf("invalid state kind %d", uint8(k))
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Finished reports whether the kind is terminal: nothing more will happen to
// a run in this state.
func (k Kind) Finished() bool { return k >= Success && k < numKinds }

// Successful reports whether the kind counts as success for triggers and for
// a flow's final state: Success, Cached, Skipped and Mapped.
func (k Kind) Successful() bool {
	return k == Success || k == Cached || k == Skipped || k == Mapped
}

// Failure reports whether the kind counts as failure: Failed, TimedOut and
// TriggerFailed. Cancelled is neither a success nor a failure.
func (k Kind) Failure() bool { return k == Failed || k == TimedOut || k == TriggerFailed }

// Result says where a task run's result is. Value is the in-memory value in
// the process that produced or loaded it; Store and Key locate the
// persisted copy when the result was checkpointed or cached.
type Result struct {
	Store      string `json:"store,omitempty"`      // result store URL, e.g. file:///var/reeve/results
	Key        string `json:"key,omitempty"`        // object key inside the store
	Serializer string `json:"serializer,omitempty"` // serializer name, e.g. "json"
	Value      any    `json:"-"`
}

// Persisted reports whether the result has a stored copy.
func (r *Result) Persisted() bool { return r != nil && r.Key != "" }

// Location returns "STORE#KEY" for display, or "" when not persisted.
func (r *Result) Location() string {
	if !r.Persisted() {
		return ""
	}
	return r.Store + "#" + r.Key
}

// State is one state of a flow run or task run.
type State struct {
	Kind    Kind      `json:"kind"`
	Message string    `json:"message,omitempty"`
	Time    time.Time `json:"time"`               // when the run entered this state
	StartAt time.Time `json:"start_at,omitzero"`  // Scheduled and Retrying: when it will run
	Attempt int       `json:"attempt,omitempty"`  // 1 for the first attempt of a task run
	Result  *Result   `json:"result,omitempty"`   // Success, Cached, Mapped: the result
	Counts  *Counts   `json:"children,omitempty"` // mapped task runs: children by kind
}

// Counts holds the number of child task runs of a mapped task in each kind.
type Counts [numKinds]int

// Total returns the number of children counted.
func (c *Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// String gives e.g. "8 Success, 2 Failed".
func (c *Counts) String() string {
	s := ""
	for k, v := range c {
		if v == 0 {
			continue
		}
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", v, Kind(k))
	}
	if s == "" {
		return "none"
	}
	return s
}

// MarshalJSON writes counts as an object of the non-zero kinds.
func (c Counts) MarshalJSON() ([]byte, error) {
	m := make(map[string]int)
	for k, v := range c {
		if v != 0 {
			m[Kind(k).String()] = v
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Counts) UnmarshalJSON(b []byte) error {
	var m map[string]int
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*c = Counts{}
	for name, v := range m {
		k, err := ParseKind(name)
		if err != nil {
			return err
		}
		c[k] = v
	}
	return nil
}

// String gives e.g. "Failed: boom".
func (s State) String() string {
	if s.Message == "" {
		return s.Kind.String()
	}
	return s.Kind.String() + ": " + s.Message
}
