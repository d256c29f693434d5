// Package api holds the wire types of the Reeve server's HTTP API and its
// OpenAPI document. It has no behaviour: the server (internal/server) and
// the Go client (package client) both speak these types.
//
// Every route is under /api/v1 and takes and returns JSON. A request carries
// an API token as "Authorization: Bearer <token>". An error is answered with
// an HTTP status from one table (see StatusOf) and an ErrorBody:
//
//	{"error": {"code": "not_found", "message": "flow run \"x\" not found"}}
//
// Lists are paged with an opaque cursor: a list answer's next_cursor, given
// back as the cursor query parameter, reads the next page.
package api

import (
	"encoding/json"
	"time"

	"github.com/reevehq/reeve/internal/state"
)

// Prefix is the path prefix of every API route.
const Prefix = "/api/v1"

// MaxBodyBytes is the largest request body the server reads, except for
// flow registration and log batches (MaxLargeBodyBytes).
const (
	MaxBodyBytes      = 1 << 20
	MaxLargeBodyBytes = 16 << 20
)

// ErrorBody is the answer to a failed request.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a reeve error code ("invalid", "not_found", "conflict",
// "unauthorized", "forbidden", "unavailable", "internal") and a message a
// user can act on.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Project groups flows, runs and secrets.
type Project struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// CreateProject is the body of POST /projects.
type CreateProject struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Projects is a list of projects.
type Projects struct {
	Projects []Project `json:"projects"`
}

// The storage kinds: how an agent gets a flow's program. An agent says
// which it runs (RegisterAgent.StorageKinds).
const (
	StorageLocal  = "local"  // a program on the agent's machine, run as a process
	StorageDocker = "docker" // an image, run as a container
)

// StorageKinds are the known storage kinds.
var StorageKinds = []string{StorageLocal, StorageDocker}

// Storage says how an agent gets a flow's program.
type Storage struct {
	Kind  string `json:"kind"`            // StorageLocal or StorageDocker
	Path  string `json:"path,omitempty"`  // local: the program's absolute path
	Image string `json:"image,omitempty"` // docker: a digest-pinned image reference (name@sha256:...)
}

// RunConfig is how a flow's runs are executed.
type RunConfig struct {
	Executor string            `json:"executor,omitempty"` // "sequential" or "parallel"
	Workers  int               `json:"workers,omitempty"`
	CPU      string            `json:"cpu,omitempty"`    // e.g. "500m" or "2"
	Memory   string            `json:"memory,omitempty"` // e.g. "512Mi"
	Env      map[string]string `json:"env,omitempty"`
	// Platform is the platform runs need, "linux/ARCH[/VARIANT]" (like
	// linux/arm64), or "" for the agent's own. Runners pick the image's
	// variant for it; reeve deploy checks that the image has it.
	Platform string `json:"platform,omitempty"`
}

// RegisterFlow is the body of POST /flows: a flow spec to record in a
// project. An identical registration returns the existing version.
type RegisterFlow struct {
	Project   string          `json:"project"`
	Spec      json.RawMessage `json:"spec"` // an internal/spec document, as written by Flow.Save
	Storage   Storage         `json:"storage"`
	Labels    []string        `json:"labels,omitempty"` // added to the spec's labels
	RunConfig RunConfig       `json:"run_config,omitzero"`
}

// Registered is the answer to POST /flows.
type Registered struct {
	Flow    Flow        `json:"flow"`
	Version FlowVersion `json:"version"`
	Created bool        `json:"created"` // false when the spec was already the newest version
	// Warnings are things that will keep the flow's runs from running,
	// such as no online agent whose labels cover the flow's labels.
	Warnings []string `json:"warnings,omitempty"`
}

// Flow is a registered flow.
type Flow struct {
	ID            string    `json:"id"`
	ProjectID     string    `json:"project_id"`
	Name          string    `json:"name"`
	LatestVersion int       `json:"latest_version"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Flows is a list of flows.
type Flows struct {
	Flows []Flow `json:"flows"`
}

// FlowVersion is one version of a flow.
type FlowVersion struct {
	ID        string          `json:"id"`
	FlowID    string          `json:"flow_id"`
	Version   int             `json:"version"`
	SpecHash  string          `json:"spec_hash"`
	Spec      json.RawMessage `json:"spec"`
	Storage   Storage         `json:"storage"`
	Labels    []string        `json:"labels"`
	RunConfig RunConfig       `json:"run_config"`
	Archived  bool            `json:"archived"`
	CreatedAt time.Time       `json:"created_at"`
}

// FlowDetail is the answer to GET /flows/{id}: the flow, its versions
// (newest first) and its schedules.
type FlowDetail struct {
	Flow      Flow          `json:"flow"`
	Versions  []FlowVersion `json:"versions"`
	Schedules []Schedule    `json:"schedules"`
}

// CreateFlowRun is the body of POST /flow_runs. The flow is named by
// FlowID, or by Project and Flow; the run is of its newest version unless
// FlowVersionID is given.
type CreateFlowRun struct {
	FlowID         string          `json:"flow_id,omitempty"`
	Project        string          `json:"project,omitempty"`
	Flow           string          `json:"flow,omitempty"`
	FlowVersionID  string          `json:"flow_version_id,omitempty"`
	Name           string          `json:"name,omitempty"`
	Params         json.RawMessage `json:"params,omitempty"`          // a JSON object, checked against the spec's parameters
	ScheduledAt    time.Time       `json:"scheduled_at,omitzero"`     // zero: now
	IdempotencyKey string          `json:"idempotency_key,omitempty"` // a repeated create with the same key returns the same run
}

// FlowRun is one run of a flow version.
type FlowRun struct {
	ID             string          `json:"id"`
	ProjectID      string          `json:"project_id"`
	FlowID         string          `json:"flow_id"`
	FlowVersionID  string          `json:"flow_version_id"`
	Name           string          `json:"name,omitempty"`
	Params         json.RawMessage `json:"params,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Labels         []string        `json:"labels,omitempty"`
	ScheduleID     string          `json:"schedule_id,omitempty"`
	AgentID        string          `json:"agent_id,omitempty"`
	ScheduledAt    time.Time       `json:"scheduled_at"`
	State          state.State     `json:"state"`
	Version        int64           `json:"version"` // state version: give it back as expect_version
	// Attempt counts the claims of the run: each agent claim starts a new
	// attempt, and a run token works only for the attempt it was minted
	// for, so a runner that was declared lost can never write over the
	// attempt that replaced it.
	Attempt     int       `json:"attempt"`
	HeartbeatAt time.Time `json:"heartbeat_at,omitzero"` // the current attempt's runner's last heartbeat
	Recoveries  int       `json:"recoveries,omitempty"`  // times the lost-run path re-queued the run
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// TaskCounts is how many of the run's task runs there are of each
	// state kind (kinds with none are absent), in lists asked for with
	// task_counts=true only.
	TaskCounts map[state.Kind]int `json:"task_counts,omitempty"`
}

// FlowRunCounts is the answer to GET /flow_runs/counts: how many of the
// flow runs a filter selects there are of each state kind (kinds with none
// are absent), and their total.
type FlowRunCounts struct {
	Counts map[state.Kind]int64 `json:"counts"`
	Total  int64                `json:"total"`
}

// Created is the answer to a create that may find an existing record
// (POST /flow_runs with an idempotency key).
type CreatedFlowRun struct {
	FlowRun FlowRun `json:"flow_run"`
	Created bool    `json:"created"`
}

// FlowRuns is a page of flow runs, newest first.
type FlowRuns struct {
	FlowRuns   []FlowRun `json:"flow_runs"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// FlowRunDetail is the answer to GET /flow_runs/{id}: the run, its task
// runs (by key) and its state history (oldest first).
type FlowRunDetail struct {
	FlowRun  FlowRun       `json:"flow_run"`
	TaskRuns []TaskRun     `json:"task_runs"`
	History  []state.State `json:"history"`
}

// SetState is the body of POST /flow_runs/{id}/state: move the run to State
// if its state version is still ExpectVersion (else 409 Conflict).
type SetState struct {
	State         state.State `json:"state"`
	ExpectVersion int64       `json:"expect_version"`
}

// RunHeartbeat is the answer to POST /flow_runs/{id}/heartbeat, which a
// runner calls with its run token at least every Interval while it runs.
// A runner whose token's attempt is no longer the run's current attempt
// gets 409 Conflict instead and must stop without writing anything more.
type RunHeartbeat struct {
	FlowRun  FlowRun  `json:"flow_run"`
	Cancel   bool     `json:"cancel"`   // a user cancelled the run: cancel the tasks and end the run Cancelled
	Interval Duration `json:"interval"` // heartbeat again within this
	// MaxResultBytes is the largest result the server's result store
	// takes: the runner refuses a larger one itself, before sending it.
	MaxResultBytes int `json:"max_result_bytes,omitempty"`
}

// ReportLost is the body of POST /flow_runs/{id}/lost: an agent saw the
// runner of an attempt end without finishing the run (it crashed, was
// killed, or never started). The server then takes the lost-run path: the
// attempt's running task runs fail with "runner lost", and the run is
// re-queued while it has recoveries left, else Failed with Reason.
type ReportLost struct {
	Attempt int    `json:"attempt"` // the attempt the agent started; a stale one is 409 Conflict
	Reason  string `json:"reason"`  // what the agent saw, e.g. "the flow program exited with status 2"
}

// TaskRun is one task run of a flow run.
type TaskRun struct {
	ID        string      `json:"id"`
	FlowRunID string      `json:"flow_run_id"`
	Key       string      `json:"key"` // e.g. "extract" or "transform[3]"
	Task      string      `json:"task"`
	MapIndex  int         `json:"map_index"`
	State     state.State `json:"state"`
	Version   int64       `json:"version"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// TaskRuns is a list of task runs.
type TaskRuns struct {
	TaskRuns []TaskRun `json:"task_runs"`
}

// TaskRunWrite moves one task run to a state. ExpectVersion is the version
// the writer last saw; 0 creates the task run.
type TaskRunWrite struct {
	Key           string      `json:"key"`
	Task          string      `json:"task"`
	MapIndex      int         `json:"map_index,omitempty"`
	ExpectVersion int64       `json:"expect_version"`
	State         state.State `json:"state"`
}

// WriteTaskRunStates is the body of POST /flow_runs/{id}/task_run_states:
// writes applied in order, in one transaction, all or none. Writes with a
// run token are fenced: when the token's attempt is no longer the run's
// current attempt, the answer is 409 Conflict and nothing is written.
//
// Results are stored in the server's result store (in the run's project)
// before the writes, so that a state that names a result (Success with
// Result.Store "reeve://server") never reaches the server before the
// result itself: runners send small results along with the states that
// name them instead of one request per result. Writes may be empty when
// Results are not.
type WriteTaskRunStates struct {
	Writes  []TaskRunWrite `json:"writes"`
	Results []ResultPut    `json:"results,omitempty"`
}

// ResultPut is a result to store under a key of the run's project.
type ResultPut struct {
	Key   string `json:"key"`
	Value []byte `json:"value"` // base64 in JSON
}

// History is a list of states, oldest first.
type History struct {
	States []state.State `json:"states"`
}

// LogLine is one log record of a flow run.
type LogLine struct {
	ID        int64           `json:"id,omitempty"` // assigned by the server
	TaskRunID string          `json:"task_run_id,omitempty"`
	Time      time.Time       `json:"time"`
	Level     string          `json:"level"` // DEBUG, INFO, WARN or ERROR
	Message   string          `json:"message"`
	Attrs     json.RawMessage `json:"attrs,omitempty"` // a JSON object
}

// AppendLogs is the body of POST /flow_runs/{id}/logs.
type AppendLogs struct {
	Logs []LogLine `json:"logs"`
}

// Logs is a page of log lines, oldest first; NextAfter is the after query
// parameter that reads on.
type Logs struct {
	Logs      []LogLine `json:"logs"`
	NextAfter int64     `json:"next_after"`
}

// SetSecret is the body of PUT /secrets/{name}.
type SetSecret struct {
	Project string `json:"project"`
	Value   string `json:"value"`
}

// Secret is a secret's name and times; the API never returns its value to
// a user.
type Secret struct {
	ProjectID string    `json:"project_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Secrets is a list of secrets.
type Secrets struct {
	Secrets []Secret `json:"secrets"`
}

// SecretValue is the answer to GET /flow_runs/{id}/secrets/{name}, which
// only that run's token may call, for a secret its flow declares.
type SecretValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Result is a task result in the server's own result store: the body of
// PUT /flow_runs/{id}/results/{key...} (UpdatedAt is ignored there) and
// the answer of GET. Results are kept by key in the run's project, so the
// runs of a project share them (cache entries, a restarted run's
// checkpoints). The store takes small results only (1 MB each by
// default); larger ones belong in a blob store.
type Result struct {
	Value     []byte    `json:"value"`               // base64 in JSON
	UpdatedAt time.Time `json:"updated_at,omitzero"` // when it was last written
}

// DefaultMaxResultBytes is the largest result the server's result store
// takes unless the server is configured otherwise.
const DefaultMaxResultBytes = 1 << 20

// Token roles.
const (
	RoleAdmin     = "admin"     // everything
	RoleDeveloper = "developer" // register flows, create and cancel runs, set secrets, read everything but tokens
	RoleAgent     = "agent"     // register, heartbeat, claim runs, mint run tokens
	RoleRun       = "run"       // one flow run: its states, logs and declared secrets
)

// CreateToken is the body of POST /tokens.
type CreateToken struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`                // admin, developer or agent
	ExpiresAt time.Time `json:"expires_at,omitzero"` // zero: never
}

// Token is an API token's record; its secret is shown once, at creation.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	FlowRunID string    `json:"flow_run_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// NewToken is the answer to creating a token: the record and, once only,
// the secret to send as "Authorization: Bearer <secret>".
type NewToken struct {
	Token  Token  `json:"token"`
	Secret string `json:"secret"`
}

// Tokens is a list of tokens.
type Tokens struct {
	Tokens []Token `json:"tokens"`
}

// RegisterAgent is the body of POST /agents.
type RegisterAgent struct {
	Name   string   `json:"name"`
	Labels []string `json:"labels,omitempty"`
	// StorageKinds are the storage kinds the agent runs (StorageLocal,
	// StorageDocker): it is given only runs of flows stored so. None means
	// every kind, as for agents from before kinds existed.
	StorageKinds []string `json:"storage_kinds,omitempty"`
}

// Agent is a registered agent.
type Agent struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Labels []string `json:"labels"`
	// StorageKinds are the storage kinds the agent runs; none: every kind.
	StorageKinds []string  `json:"storage_kinds,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	LastSeenAt   time.Time `json:"last_seen_at"`
}

// Agents is a list of agents.
type Agents struct {
	Agents []Agent `json:"agents"`
}

// Claim is the answer to POST /agents/{id}/claim when a run was claimed:
// the run (now Submitted), its flow version (spec, storage, run
// configuration) and a token scoped to the run. With nothing to claim
// before the wait ends the answer is 204 No Content.
type Claim struct {
	FlowRun     FlowRun     `json:"flow_run"`
	FlowVersion FlowVersion `json:"flow_version"`
	Token       string      `json:"token"`
}

// CreateSchedule is the body of POST /schedules: exactly one of Cron and
// Interval.
type CreateSchedule struct {
	FlowID   string          `json:"flow_id"`
	Cron     string          `json:"cron,omitempty"`
	Timezone string          `json:"timezone,omitempty"` // IANA name; "" is UTC
	Interval Duration        `json:"interval,omitempty"` // e.g. "15m"
	Anchor   time.Time       `json:"anchor,omitzero"`    // interval schedules: when the first run is due; zero is now
	Params   json.RawMessage `json:"params,omitempty"`   // parameter values over the spec's defaults
}

// Schedule makes runs of a flow.
type Schedule struct {
	ID        string          `json:"id"`
	ProjectID string          `json:"project_id"`
	FlowID    string          `json:"flow_id"`
	Cron      string          `json:"cron,omitempty"`
	Timezone  string          `json:"timezone,omitempty"`
	Interval  Duration        `json:"interval,omitempty"`
	Anchor    time.Time       `json:"anchor,omitzero"`
	Params    json.RawMessage `json:"params,omitempty"`
	Paused    bool            `json:"paused"`
	FromSpec  bool            `json:"from_spec"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	NextRuns  []time.Time     `json:"next_runs,omitempty"`
}

// Schedules is a list of schedules.
type Schedules struct {
	Schedules []Schedule `json:"schedules"`
}

// Duration is a time.Duration written as a Go duration string ("1h30m").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
