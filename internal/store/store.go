// Package store is the persistence seam of the Reeve server: the records it
// keeps (projects, flows and their versions, flow runs, task runs, their
// state histories and logs) and the Store interface that the embedded SQLite
// store (store/sqlite) and the PostgreSQL store (store/postgres) implement.
// One conformance suite, store/storetest, runs against both.
//
// Errors carry reeve error codes: a missing record is reeve.ErrNotFound, a
// duplicate or a stale state version is reeve.ErrConflict, a record that
// breaks a rule is reeve.ErrInvalid. Every method is safe for concurrent use,
// also by several server replicas on one database.
package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/reevehq/reeve/internal/state"
)

// Store keeps the server's records.
type Store interface {
	// CreateProject creates a project; a taken name is ErrConflict.
	CreateProject(ctx context.Context, p Project) (Project, error)
	// GetProject returns a project by name, or ErrNotFound.
	GetProject(ctx context.Context, name string) (Project, error)
	// ListProjects returns every project, by name.
	ListProjects(ctx context.Context) ([]Project, error)

	// RegisterFlow records a flow version in one transaction. The project
	// must exist (else ErrNotFound). When the flow's newest version has the
	// same spec hash, storage, labels and run configuration, it returns that
	// version and created=false; otherwise it creates the flow if needed,
	// adds the next version and archives the previous one, deleting the
	// previous versions' runs that a schedule made (ScheduleID set) and that
	// are still Scheduled, with their histories (the scheduler makes them
	// anew for the new version). Runs made by hand, and runs past
	// Scheduled, are kept.
	RegisterFlow(ctx context.Context, r Registration) (v FlowVersion, created bool, err error)
	// GetFlow returns a flow by project and name, or ErrNotFound.
	GetFlow(ctx context.Context, project, name string) (Flow, error)
	// GetFlowByID returns a flow by ID, or ErrNotFound.
	GetFlowByID(ctx context.Context, id string) (Flow, error)
	// ListFlows returns a project's flows, by name.
	ListFlows(ctx context.Context, project string) ([]Flow, error)
	// GetFlowVersion returns a flow version by ID, or ErrNotFound.
	GetFlowVersion(ctx context.Context, id string) (FlowVersion, error)
	// ListFlowVersions returns a flow's versions, newest first.
	ListFlowVersions(ctx context.Context, flowID string) ([]FlowVersion, error)

	// CreateFlowRun creates a flow run of a flow version, in state
	// r.State (a zero State means Scheduled) with state version 1;
	// ProjectID and FlowID come from the version, a zero ScheduledAt means
	// now, and Params must be a JSON object (else ErrInvalid). With an
	// idempotency key already used for the same flow (any version), it
	// returns the existing run and created=false, also under concurrency.
	// ScheduleID, when set, names the schedule that made the run (its
	// scheduler uses an idempotency key per schedule, version and time): an
	// unknown schedule is ErrNotFound, a schedule of another flow
	// ErrInvalid, and a paused schedule or an archived version ErrConflict,
	// so that no run slips in after SetSchedulePaused, DeleteSchedule or
	// RegisterFlow deleted the schedule's Scheduled runs. (A run with an
	// idempotency key already used is returned before these checks.)
	// AgentID is ignored.
	CreateFlowRun(ctx context.Context, r FlowRun) (run FlowRun, created bool, err error)
	// GetFlowRun returns a flow run by ID, or ErrNotFound.
	GetFlowRun(ctx context.Context, id string) (FlowRun, error)
	// ListFlowRuns returns the flow runs matching f, newest first, and the
	// cursor of the next page ("" on the last page). A malformed cursor or
	// a negative limit is ErrInvalid.
	ListFlowRuns(ctx context.Context, f FlowRunFilter) (runs []FlowRun, next string, err error)
	// CountFlowRuns returns how many flow runs there are of each state
	// kind (kinds with none are absent).
	CountFlowRuns(ctx context.Context) (map[state.Kind]int64, error)
	// CountFlowRunsMatching returns how many of the flow runs f selects
	// there are of each state kind (kinds with none are absent); f.Limit
	// and f.Cursor are ignored. It reads every run selected: with no
	// fields but States and the creation times, from an index only;
	// otherwise each run's row (and Labels, Params and Text scan the runs
	// the other fields select).
	CountFlowRunsMatching(ctx context.Context, f FlowRunFilter) (map[state.Kind]int64, error)
	// CountTaskRuns returns, for each of the flow runs (at most 1000), how
	// many of its task runs there are of each state kind, in one indexed
	// query: a run with no task runs, and an unknown run, are absent, as
	// are kinds with none. More than 1000 runs is ErrInvalid.
	CountTaskRuns(ctx context.Context, flowRunIDs []string) (map[string]map[state.Kind]int, error)
	// SetFlowRunState moves a flow run to s if its state version is still
	// expect, recording s in the run's history and returning the run with
	// its new version; a stale expect is ErrConflict and changes nothing.
	// Moving to Scheduled re-queues the run: AgentID becomes "", and a
	// non-zero s.StartAt becomes its ScheduledAt (a zero StartAt keeps
	// ScheduledAt as it is).
	SetFlowRunState(ctx context.Context, id string, expect int64, s state.State) (FlowRun, error)
	// HeartbeatFlowRun records that the runner of attempt of a flow run is
	// alive: HeartbeatAt becomes now (store clock); neither the state, nor
	// the version, nor UpdatedAt changes. An attempt that is not the run's current
	// Attempt is ErrConflict (the runner was superseded); an unknown run is
	// ErrNotFound. It returns the run.
	HeartbeatFlowRun(ctx context.Context, id string, attempt int) (FlowRun, error)
	// RecoverFlowRun takes the lost-run path for a flow run whose runner is
	// gone, in one transaction, if the run's state version is still expect
	// (else ErrConflict, changing nothing) and its state is Submitted,
	// Running or Cancelling (else ErrConflict):
	//
	//   - each of its task runs in state Running moves to Failed with the message
	//     "runner lost: " + reason, keeping its state's Attempt (version +1,
	//     recorded in its history);
	//   - a Cancelling run moves to Cancelled (message reason);
	//   - otherwise, with Recoveries < maxRecoveries, the run moves to
	//     Scheduled (message "re-queued (recovery N of M): " + reason, where
	//     N is Recoveries+1 and M is maxRecoveries), ScheduledAt now,
	//     AgentID "", Recoveries +1;
	//   - otherwise it moves to Failed with the message
	//     reason + "; gave up after M recoveries".
	//
	// State times are the store's clock; a negative maxRecoveries counts as
	// 0. Attempt does not change: the lost runner's attempt stays the
	// current one (its heartbeats and task-run writes are accepted) until
	// the run is claimed again. It returns the run as it now is.
	RecoverFlowRun(ctx context.Context, id string, expect int64, reason string, maxRecoveries int) (FlowRun, error)

	// WriteTaskRunStates applies writes in order, in one transaction: each
	// moves one task run of the flow run (created by a write with expect 0)
	// to its state and records it in the history. A write whose Expect is
	// not the task run's version (a missing task run has version 0) is
	// ErrConflict; an empty key, a negative Expect or an unknown kind is
	// ErrInvalid; an unknown flow run is ErrNotFound. An attempt > 0 that
	// is not the flow run's current Attempt is ErrConflict (the writer was
	// superseded); attempt 0 writes unfenced. If any write fails, none is
	// applied. It returns the task runs as written, in order.
	WriteTaskRunStates(ctx context.Context, flowRunID string, attempt int, writes []TaskRunWrite) ([]TaskRun, error)
	// ListTaskRuns returns a flow run's task runs, by key; an unknown flow
	// run is ErrNotFound (so are the calls below).
	ListTaskRuns(ctx context.Context, flowRunID string) ([]TaskRun, error)
	// History returns the states of a flow run (taskRunID "") or of one of
	// its task runs, oldest first.
	History(ctx context.Context, flowRunID, taskRunID string) ([]state.State, error)

	// AppendLogs stores log lines; their IDs are assigned in order.
	AppendLogs(ctx context.Context, lines []LogLine) error
	// ListLogs returns up to limit lines of a flow run (of one task run
	// when taskRunID is not "") with IDs greater than after, oldest first.
	// A limit ≤ 0 means 1000; at most 10,000 are returned.
	ListLogs(ctx context.Context, flowRunID, taskRunID string, after int64, limit int) ([]LogLine, error)

	// PutSecret creates or replaces the secret name of a project (else
	// ErrNotFound) with value, which is already encrypted: the store never
	// sees a clear-text value. A name that is not an identifier
	// ([A-Za-z_][A-Za-z0-9_]*, at most 128 bytes) is ErrInvalid.
	PutSecret(ctx context.Context, projectID, name string, value []byte) (Secret, error)
	// GetSecret returns a secret with its (encrypted) value, or ErrNotFound.
	GetSecret(ctx context.Context, projectID, name string) (Secret, error)
	// ListSecrets returns a project's secrets by name, without values; an
	// unknown project is ErrNotFound.
	ListSecrets(ctx context.Context, projectID string) ([]Secret, error)
	// DeleteSecret deletes a secret, or returns ErrNotFound.
	DeleteSecret(ctx context.Context, projectID, name string) error

	// CreateToken records an API token; the store assigns ID and CreatedAt
	// and ignores RevokedAt. t.Hash must be set and Role be one of the Role
	// constants (else ErrInvalid), and the hash unique (a taken hash is
	// ErrConflict). A run token (role "run") needs a FlowRunID, which must
	// exist (else ErrNotFound); a token of another role must have none
	// (else ErrInvalid). A run token is deleted with its flow run.
	CreateToken(ctx context.Context, t Token) (Token, error)
	// TokenByHash returns the token with this hash, revoked or not, or
	// ErrNotFound.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	// ListTokens returns the tokens that are not run tokens, oldest first.
	ListTokens(ctx context.Context) ([]Token, error)
	// RevokeToken marks a token revoked (again is a no-op), or returns
	// ErrNotFound.
	RevokeToken(ctx context.Context, id string) (Token, error)

	// CreateSchedule adds a schedule to a flow (else ErrNotFound). Exactly
	// one of Cron and Interval is set; Cron is valid for
	// github.com/adhocore/gronx; Interval is positive (kept to the
	// microsecond); Timezone is "" or an IANA name; Params is a JSON object
	// or empty; else ErrInvalid. A zero Anchor of an interval schedule
	// becomes now. The store assigns ID, ProjectID and the times; Paused
	// and FromSpec are kept as given.
	CreateSchedule(ctx context.Context, sc Schedule) (Schedule, error)
	// GetSchedule returns a schedule by ID, or ErrNotFound.
	GetSchedule(ctx context.Context, id string) (Schedule, error)
	// ListSchedules returns a flow's schedules (every schedule when flowID
	// is ""), oldest first; an unknown flow is ErrNotFound.
	ListSchedules(ctx context.Context, flowID string) ([]Schedule, error)
	// SetSchedulePaused pauses or resumes a schedule, or returns
	// ErrNotFound. Pausing deletes, in the same transaction, the schedule's
	// runs that are still Scheduled (also when it was paused already); it
	// returns the schedule and how many runs it deleted. UpdatedAt changes
	// only when Paused does.
	SetSchedulePaused(ctx context.Context, id string, paused bool) (Schedule, int, error)
	// DeleteSchedule deletes a schedule and its runs that are still
	// Scheduled, or returns ErrNotFound.
	DeleteSchedule(ctx context.Context, id string) error

	// RegisterAgent records an agent by name (an empty name, or an empty
	// storage kind, is ErrInvalid) with its labels and the storage kinds it
	// runs (none: every kind): a new name creates it, a known name updates
	// its labels and kinds and keeps its ID. Either way LastSeenAt is now.
	RegisterAgent(ctx context.Context, name string, labels, storageKinds []string) (Agent, error)
	// HeartbeatAgent sets an agent's LastSeenAt to now, or returns
	// ErrNotFound.
	HeartbeatAgent(ctx context.Context, id string) (Agent, error)
	// ListAgents returns every agent, by name.
	ListAgents(ctx context.Context) ([]Agent, error)
	// ClaimFlowRun atomically moves the due flow run that has waited
	// longest (state Scheduled, ScheduledAt <= now, its labels a subset of
	// the agent's labels, so a run without labels suits every agent, and
	// its flow version's storage kind one of the agent's StorageKinds, or
	// any kind when the agent has none; earliest ScheduledAt first, then
	// lowest ID) to Submitted for the
	// agent: it sets AgentID, adds 1 to the state version and records the
	// state (message `claimed by agent "NAME"`, time of the store's clock)
	// in the history; it also adds 1 to Attempt and clears HeartbeatAt. A zero now means the store's clock. Exactly one of
	// several concurrent claimers gets a run, also across server replicas.
	// With no run to claim it returns ErrNotFound; an unknown agent is
	// ErrNotFound too.
	ClaimFlowRun(ctx context.Context, agentID string, now time.Time) (FlowRun, error)

	// Close releases the store's connections.
	Close() error

	// PutResult creates or replaces the result under key in a project's
	// result store (the server's own, for small results) and returns when
	// it was written. An unknown project is ErrNotFound; a key that
	// CheckResultKey refuses is ErrInvalid. A nil value is stored empty.
	PutResult(ctx context.Context, projectID, key string, value []byte) (updatedAt time.Time, err error)
	// GetResult returns the result under key in a project's result store
	// and when it was last written, or ErrNotFound (also for an unknown
	// project); a key that CheckResultKey refuses is ErrInvalid. The value
	// is never nil.
	GetResult(ctx context.Context, projectID, key string) (value []byte, updatedAt time.Time, err error)
}

// Project groups flows, runs and secrets.
type Project struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Flow is a registered flow: a name in a project, with versions.
type Flow struct {
	ID            string    `json:"id"`
	ProjectID     string    `json:"project_id"`
	Name          string    `json:"name"`
	LatestVersion int       `json:"latest_version"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Storage says how an agent gets a flow's program.
type Storage struct {
	Kind  string `json:"kind"`            // "local" or "docker"
	Path  string `json:"path,omitempty"`  // local: the program's path
	Image string `json:"image,omitempty"` // docker: a digest-pinned image reference
}

// RunConfig is how a flow's runs are executed.
type RunConfig struct {
	Executor string            `json:"executor,omitempty"`
	Workers  int               `json:"workers,omitempty"`
	CPU      string            `json:"cpu,omitempty"`    // e.g. "500m" or "2"
	Memory   string            `json:"memory,omitempty"` // e.g. "512Mi"
	Env      map[string]string `json:"env,omitempty"`
	// Platform is the platform runs need, "linux/ARCH[/VARIANT]" (like
	// linux/arm64), or "" for the agent's own. Runners pick the image's
	// variant for it; reeve deploy checks that the image has it.
	Platform string `json:"platform,omitempty"`
}

// Registration is a flow version to record.
type Registration struct {
	Project   string
	Flow      string
	SpecHash  string
	Spec      json.RawMessage
	Storage   Storage
	Labels    []string
	RunConfig RunConfig
}

// FlowVersion is one version of a flow's spec with its storage, labels and
// run configuration. Only the newest version of a flow is not archived.
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

// FlowRun is one run of a flow version.
type FlowRun struct {
	ID             string          `json:"id"`
	ProjectID      string          `json:"project_id"`
	FlowID         string          `json:"flow_id"`
	FlowVersionID  string          `json:"flow_version_id"`
	Name           string          `json:"name,omitempty"`
	Params         json.RawMessage `json:"params,omitempty"` // a JSON object
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Labels         []string        `json:"labels,omitempty"`
	ScheduleID     string          `json:"schedule_id,omitempty"` // the schedule that made it, if any
	AgentID        string          `json:"agent_id,omitempty"`    // the agent that claimed it, if any
	ScheduledAt    time.Time       `json:"scheduled_at"`          // when it may start
	State          state.State     `json:"state"`
	Version        int64           `json:"version"`               // state version: +1 on every state change
	Attempt        int             `json:"attempt"`               // +1 on every claim; run tokens are fenced by it
	HeartbeatAt    time.Time       `json:"heartbeat_at,omitzero"` // the current attempt's last runner heartbeat
	Recoveries     int             `json:"recoveries,omitempty"`  // times RecoverFlowRun re-queued the run
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
}

// FlowRunFilter selects flow runs. Zero fields match everything.
//
// ProjectID, FlowID, AgentID, States and the creation times are backed by
// indexes, so that a page of the newest runs so selected is found without
// scanning the table. Labels, Params and Text are tested on each run
// that the other fields select: with none of those, they scan the runs
// newest first until a page is full (or every run was read).
type FlowRunFilter struct {
	ProjectID     string
	FlowID        string
	AgentID       string // the agent that claimed the runs
	States        []state.Kind
	CreatedAfter  time.Time // inclusive
	CreatedBefore time.Time // exclusive
	// ScheduledBefore selects the runs whose ScheduledAt is before it
	// (exclusive): with States Scheduled, the runs due by then, whatever
	// runs were created after them (backed by the index on state and
	// scheduled_at).
	ScheduledBefore time.Time
	// Labels selects the runs carrying every one of these labels (scans).
	Labels []string
	// Params selects the runs whose parameter name (a key) has the value:
	// a JSON string matches its text, any other JSON value its JSON text
	// ("3", "true", "null", `["a","b"]`). A run lacking the parameter does
	// not match. Scans.
	Params map[string]string
	// Text selects the runs whose ID, name or state message holds Text.
	// Both sides are folded by the same function, so text in the case it
	// is stored in always matches (non-ASCII too: "Über" finds
	// "Über-load"), and ASCII letters match in any case. Beyond ASCII:
	// SQLite folds as Go's strings.ToLower ("über" finds "Über-load";
	// fold.go); PostgreSQL as lower() under the ICU root collation where
	// the server has ICU and the database is UTF8 (the same result for
	// such letters), else under the database's collation, which folds only
	// ASCII under the C locale (there "über" does not find "Über-load").
	// Neither does full Unicode case folding ("ß" is not "ss"). Scans.
	Text   string
	Limit  int    // page size; 0 means 100, at most 1000
	Cursor string // from the previous page
}

// TaskRun is one task run of a flow run, keyed by its task run key
// ("extract", "transform[3]").
type TaskRun struct {
	ID        string      `json:"id"`
	FlowRunID string      `json:"flow_run_id"`
	Key       string      `json:"key"`
	Task      string      `json:"task"` // the bound task's ID in the flow
	MapIndex  int         `json:"map_index"`
	State     state.State `json:"state"`
	Version   int64       `json:"version"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// TaskRunWrite moves a task run to a state. Expect is the version the
// writer last saw: 0 creates the task run.
type TaskRunWrite struct {
	Key      string
	Task     string
	MapIndex int
	Expect   int64
	State    state.State
}

// LogLine is one log record of a flow run.
type LogLine struct {
	ID        int64           `json:"id"` // assigned by the store, increasing
	FlowRunID string          `json:"flow_run_id"`
	TaskRunID string          `json:"task_run_id,omitempty"`
	Time      time.Time       `json:"time"`
	Level     string          `json:"level"`
	Message   string          `json:"message"`
	Attrs     json.RawMessage `json:"attrs,omitempty"`
}

// Secret is a named secret of a project. Value is encrypted (see
// internal/secret); ListSecrets leaves it nil.
type Secret struct {
	ProjectID string    `json:"project_id"`
	Name      string    `json:"name"`
	Value     []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Token roles.
const (
	RoleAdmin     = "admin"     // everything
	RoleDeveloper = "developer" // register flows, create and cancel runs, set secrets
	RoleAgent     = "agent"     // claim runs, mint run tokens, heartbeat
	RoleRun       = "run"       // one flow run: its states, logs and declared secrets
)

// Token is an API token. The store keeps only a hash of its secret part.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Hash      string    `json:"-"`                     // hex SHA-256 of the token's secret
	FlowRunID string    `json:"flow_run_id,omitempty"` // run tokens: the run
	Attempt   int       `json:"attempt,omitempty"`     // run tokens: the run's attempt they were minted for
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // zero: never
	RevokedAt time.Time `json:"revoked_at,omitzero"` // zero: not revoked
}

// Schedule makes runs of a flow: on a cron expression in a time zone, or
// every Interval from Anchor. Params are parameter values for its runs
// (over the spec's defaults).
type Schedule struct {
	ID        string          `json:"id"`
	ProjectID string          `json:"project_id"`
	FlowID    string          `json:"flow_id"`
	Cron      string          `json:"cron,omitempty"`
	Timezone  string          `json:"timezone,omitempty"` // IANA name; "" is UTC
	Interval  time.Duration   `json:"interval,omitempty"`
	Anchor    time.Time       `json:"anchor,omitzero"`
	Params    json.RawMessage `json:"params,omitempty"`
	Paused    bool            `json:"paused"`
	FromSpec  bool            `json:"from_spec"` // made from the flow spec's schedule at registration
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// Agent is a registered agent: it claims runs whose labels its labels
// cover and whose flow version's storage kind it runs.
type Agent struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Labels []string `json:"labels"`
	// StorageKinds are the storage kinds ("local", "docker") the agent
	// runs; empty means every kind (agents from before kinds existed).
	StorageKinds []string  `json:"storage_kinds"`
	CreatedAt    time.Time `json:"created_at"`
	LastSeenAt   time.Time `json:"last_seen_at"`
}
