// Package spec defines the serialized flow: a versioned JSON document that
// names tasks by their registered names and carries the edges, mapping,
// parameters, options, labels, result store, declared secrets and
// environment variables and schedule of a flow.
//
// The server, the image, the UI and the health check all speak this format.
// The package is pure data: it decodes, validates and hashes specs, and knows
// nothing of Go task functions. Rebuilding a runnable flow from a spec is
// reeve.LoadFlow, which resolves the task names against the binary's registry.
package spec

import (
	"encoding/json"
	_ "time/tzdata" // schedules name IANA zones; flow images built FROM scratch have no zoneinfo
)

// Version is the spec format version this package writes and reads.
const Version = 1

// Spec is one flow, serialized.
type Spec struct {
	// SpecVersion is the format version, Version when written. A document
	// without it is not a spec; a zero in a Spec built in code means Version.
	SpecVersion    int         `json:"spec_version"`
	Name           string      `json:"name"`
	Description    string      `json:"description,omitempty"`
	Labels         []string    `json:"labels,omitempty"` // sorted, unique
	Parameters     []Parameter `json:"parameters,omitempty"`
	Tasks          []Task      `json:"tasks"`                     // in binding order; inputs refer to earlier or later tasks by ID
	ReferenceTasks []string    `json:"reference_tasks,omitempty"` // task IDs; empty means the terminal tasks
	ResultStore    string      `json:"result_store,omitempty"`    // default result store URL for the flow
	Secrets        []Secret    `json:"secrets,omitempty"`
	Env            []EnvVar    `json:"env,omitempty"`
	Schedule       *Schedule   `json:"schedule,omitempty"`
}

// Parameter is a typed flow parameter.
type Parameter struct {
	Name string `json:"name"`
	// Type is the JSON type of the value: string, integer, number, boolean,
	// array or object.
	Type string `json:"type"`
	// GoType is the Go type the flow declared, e.g. "int" or "[]string".
	GoType   string          `json:"go_type"`
	Required bool            `json:"required,omitempty"` // true when there is no default
	Default  json.RawMessage `json:"default,omitempty"`  // JSON value; absent when Required
}

// Task is one bound task (a node of the flow graph).
type Task struct {
	ID      string   `json:"id"`   // unique in the flow, e.g. "extract" or "extract-2"
	Task    string   `json:"task"` // the registered task name
	Mapped  bool     `json:"mapped,omitempty"`
	Inputs  []Input  `json:"inputs,omitempty"` // positional arguments of the task function
	After   []string `json:"after,omitempty"`  // state-only upstream task IDs
	Options Options  `json:"options,omitzero"`
}

// Input kinds.
const (
	InputTask  = "task"  // the result of another task
	InputParam = "param" // a flow parameter
	InputConst = "const" // a constant JSON value
)

// Input is one argument of a task: where its value comes from.
type Input struct {
	Kind  string          `json:"kind"`            // InputTask, InputParam or InputConst
	Task  string          `json:"task,omitempty"`  // InputTask: the upstream task ID
	Param string          `json:"param,omitempty"` // InputParam: the parameter name
	Value json.RawMessage `json:"value,omitempty"` // InputConst: the value
	// Each marks a mapped argument: the task runs once per element of this
	// input (zipped with the other Each inputs). Only on mapped tasks.
	Each bool `json:"each,omitempty"`
}

// Options are the data options of a bound task. Code-valued options (state
// handlers, custom cache keys) belong to the registered task and are not
// serialized.
type Options struct {
	Retries            int      `json:"retries,omitempty"`
	RetryDelay         Duration `json:"retry_delay,omitempty"`
	Backoff            float64  `json:"backoff,omitempty"`         // multiplier per retry; 0 or 1 means constant delay
	MaxRetryDelay      Duration `json:"max_retry_delay,omitempty"` // cap on the backed-off delay; 0 means none
	Timeout            Duration `json:"timeout,omitempty"`
	Trigger            string   `json:"trigger,omitempty"` // built-in or registered trigger name; empty means all_successful
	SkipOnUpstreamSkip *bool    `json:"skip_on_upstream_skip,omitempty"`
	CacheFor           Duration `json:"cache_for,omitempty"`
	Checkpoint         bool     `json:"checkpoint,omitempty"`
	NoCheckpoint       bool     `json:"no_checkpoint,omitempty"` // never persist the result, not even in server runs (which persist every result by default)
	ResultStore        string   `json:"result_store,omitempty"`
	Serializer         string   `json:"serializer,omitempty"` // empty means json
	Tags               []string `json:"tags,omitempty"`
}

// Secret is a secret a flow declares it reads.
type Secret struct {
	Name string `json:"name"`
}

// EnvVar is an environment variable a flow declares it needs.
type EnvVar struct {
	Name string `json:"name"`
	// FromAgent marks a variable that the agent provides at run time, so an
	// image or a local health check need not have it set.
	FromAgent bool `json:"from_agent,omitempty"`
}

// Schedule says when the server creates runs of the flow.
type Schedule struct {
	// Cron is a five-field cron expression or a descriptor like @hourly, as
	// read by github.com/adhocore/gronx (which also accepts a leading
	// seconds field and a trailing year field).
	Cron     string `json:"cron"`
	Timezone string `json:"timezone,omitempty"` // IANA name; empty means UTC
}
