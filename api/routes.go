package api

import "slices"

// Route is one route of the API: what it takes, what it answers and which
// token roles may call it. The server serves exactly these routes and
// checks the roles; the OpenAPI document is generated from this table.
type Route struct {
	Method  string
	Path    string // under Prefix, with {name} path parameters; a last {name...} takes the rest of the path
	Summary string
	// Roles may call the route. A run token may call a route marked
	// RunScoped only for its own flow run (the {id} path parameter; under
	// /flow_versions, its run's flow version).
	Roles     []string
	RunScoped bool
	Query     []QueryParam
	Request   any  // a zero value of the body type, or nil
	Response  any  // a zero value of the answer type, or nil for 204
	Status    int  // the success status; 0 means 200
	Large     bool // the body may be up to MaxLargeBodyBytes
	Stream    bool // may answer text/event-stream
}

// QueryParam is a query parameter of a route.
type QueryParam struct {
	Name, Description string
}

var (
	all       = []string{RoleAdmin, RoleDeveloper, RoleAgent}
	writers   = []string{RoleAdmin, RoleDeveloper}
	adminOnly = []string{RoleAdmin}
	agents    = []string{RoleAdmin, RoleAgent}
)

var pageQuery = []QueryParam{
	{"limit", "page size (default 100, at most 1000)"},
	{"cursor", "the next_cursor of the previous page"},
}

// runFilterQuery is the filter of GET /flow_runs and GET /flow_runs/counts.
var runFilterQuery = []QueryParam{
	{"project", "project name"}, {"flow_id", "flow ID"}, {"agent_id", "only runs claimed by this agent"}, {"state", "state kinds, comma-separated"},
	{"created_after", "RFC 3339 time, inclusive"}, {"created_before", "RFC 3339 time, exclusive"},
	{"scheduled_before", "RFC 3339 time, exclusive: only runs scheduled to start before it (with state=Scheduled: the runs due by then)"},
	{"label", "only runs with this label (repeat it: runs with every one)"},
	{"param", "name=value: only runs whose parameter name is value, a string's text or another value's JSON text, e.g. n=3 (repeat it: every one)"},
	{"q", "only runs whose ID, name or state message holds this text, ignoring case (of letters beyond ASCII too, except on a PostgreSQL without ICU, which folds them as the database's collation does)"},
}

// Routes is every route of the API.
var Routes = []Route{
	{Method: "GET", Path: "/projects", Summary: "List projects", Roles: all, Response: Projects{}},
	{Method: "POST", Path: "/projects", Summary: "Create a project", Roles: adminOnly, Request: CreateProject{}, Response: Project{}, Status: 201},
	{Method: "GET", Path: "/projects/{name}", Summary: "Show a project", Roles: all, Response: Project{}},

	{Method: "POST", Path: "/flows", Summary: "Register a flow spec as a flow's next version (an identical spec is a no-op)", Roles: writers, Request: RegisterFlow{}, Response: Registered{}, Large: true},
	{Method: "GET", Path: "/flows", Summary: "List a project's flows", Roles: all, Query: []QueryParam{{"project", "project name (default \"default\")"}, {"name", "only the flow of this name"}}, Response: Flows{}},
	{Method: "GET", Path: "/flows/{id}", Summary: "Show a flow with its versions and schedules", Roles: all, Response: FlowDetail{}},
	{Method: "GET", Path: "/flow_versions/{id}", Summary: "Show a flow version (a run token: the version of its own run)", Roles: all, RunScoped: true, Response: FlowVersion{}},

	{Method: "POST", Path: "/flow_runs", Summary: "Create a flow run", Roles: writers, Request: CreateFlowRun{}, Response: CreatedFlowRun{}, Status: 201},
	{Method: "GET", Path: "/flow_runs", Summary: "List flow runs, newest first", Roles: all, Query: slices.Concat(runFilterQuery,
		[]QueryParam{{"task_counts", "true: each run carries its task runs' counts by state kind"}}, pageQuery), Response: FlowRuns{}},
	{Method: "GET", Path: "/flow_runs/counts", Summary: "Count the flow runs a filter selects, by state kind", Roles: all, Query: runFilterQuery, Response: FlowRunCounts{}},
	{Method: "GET", Path: "/flow_runs/{id}", Summary: "Show a flow run with its task runs and state history", Roles: all, RunScoped: true, Response: FlowRunDetail{}},
	{Method: "POST", Path: "/flow_runs/{id}/state", Summary: "Set a flow run's state (409 when expect_version is stale)", Roles: agents, RunScoped: true, Request: SetState{}, Response: FlowRun{}},
	{Method: "POST", Path: "/flow_runs/{id}/cancel", Summary: "Cancel a flow run: one not started yet ends Cancelled, one with a runner becomes Cancelling until the runner confirms", Roles: writers, Response: FlowRun{}},
	{Method: "POST", Path: "/flow_runs/{id}/restart", Summary: "Run a finished, unsuccessful flow run again: only its failed and unfinished task runs run, finished ones are reused", Roles: writers, Response: FlowRun{}},
	{Method: "POST", Path: "/flow_runs/{id}/heartbeat", Summary: "A runner's heartbeat (run tokens only; 409 when the token's attempt was superseded); answers whether to cancel", RunScoped: true, Response: RunHeartbeat{}},
	{Method: "POST", Path: "/flow_runs/{id}/lost", Summary: "An agent reports that an attempt's runner ended without finishing the run: the run is re-queued or failed", Roles: agents, Request: ReportLost{}, Response: FlowRun{}},
	{Method: "POST", Path: "/flow_runs/{id}/task_run_states", Summary: "Write task-run states in order, in one transaction", Roles: adminOnly, RunScoped: true, Request: WriteTaskRunStates{}, Response: TaskRuns{}, Large: true},
	{Method: "GET", Path: "/flow_runs/{id}/history", Summary: "A flow run's (or with task_run_id, a task run's) states, oldest first", Roles: all, RunScoped: true, Query: []QueryParam{{"task_run_id", "a task run of the flow run"}}, Response: History{}},
	{Method: "POST", Path: "/flow_runs/{id}/logs", Summary: "Append log lines to a flow run", Roles: adminOnly, RunScoped: true, Request: AppendLogs{}, Status: 204, Large: true},
	{Method: "GET", Path: "/flow_runs/{id}/logs", Summary: "Read a flow run's log lines; with follow=true (or Accept: text/event-stream) as server-sent events until the run finishes", Roles: all, Query: []QueryParam{
		{"task_run_id", "only this task run's lines"}, {"after", "only lines with a greater ID"}, {"limit", "page size (default 1000, at most 10000)"}, {"follow", "stream as server-sent events"},
	}, Response: Logs{}, Stream: true},
	{Method: "GET", Path: "/flow_runs/{id}/secrets/{name}", Summary: "Read a secret the run's flow declares (run tokens only)", RunScoped: true, Response: SecretValue{}},
	{Method: "PUT", Path: "/flow_runs/{id}/results/{key...}", Summary: "Write a result to the server's result store, keyed in the run's project (small results only: a larger one needs a blob store)", Roles: adminOnly, RunScoped: true, Request: Result{}, Response: Result{}, Large: true},
	{Method: "GET", Path: "/flow_runs/{id}/results/{key...}", Summary: "Read a result from the server's result store, keyed in the run's project", Roles: adminOnly, RunScoped: true, Response: Result{}},
	{Method: "POST", Path: "/flow_runs/{id}/tokens", Summary: "Mint a token scoped to a flow run", Roles: agents, Response: NewToken{}, Status: 201},
	{Method: "GET", Path: "/task_runs", Summary: "List a flow run's task runs, by key", Roles: all, Query: []QueryParam{{"flow_run_id", "the flow run (required)"}}, Response: TaskRuns{}},

	{Method: "GET", Path: "/secrets", Summary: "List a project's secrets (names and times, never values)", Roles: writers, Query: []QueryParam{{"project", "project name (default \"default\")"}}, Response: Secrets{}},
	{Method: "PUT", Path: "/secrets/{name}", Summary: "Set a secret", Roles: writers, Request: SetSecret{}, Response: Secret{}},
	{Method: "DELETE", Path: "/secrets/{name}", Summary: "Delete a secret", Roles: writers, Query: []QueryParam{{"project", "project name (default \"default\")"}}, Status: 204},

	{Method: "GET", Path: "/tokens", Summary: "List API tokens (not run tokens)", Roles: adminOnly, Response: Tokens{}},
	{Method: "POST", Path: "/tokens", Summary: "Create an API token; its secret is shown once", Roles: adminOnly, Request: CreateToken{}, Response: NewToken{}, Status: 201},
	{Method: "DELETE", Path: "/tokens/{id}", Summary: "Revoke an API token", Roles: adminOnly, Response: Token{}},

	{Method: "GET", Path: "/agents", Summary: "List agents", Roles: all, Response: Agents{}},
	{Method: "POST", Path: "/agents", Summary: "Register an agent (again with the same name updates it)", Roles: agents, Request: RegisterAgent{}, Response: Agent{}},
	{Method: "POST", Path: "/agents/{id}/heartbeat", Summary: "Tell the server an agent is alive", Roles: agents, Response: Agent{}},
	{Method: "POST", Path: "/agents/{id}/claim", Summary: "Wait up to wait (default 30s, at most 60s) for a due run the agent's labels cover, and claim it (204 when none)", Roles: agents, Query: []QueryParam{{"wait", "how long to wait, e.g. 30s"}}, Response: Claim{}},

	{Method: "GET", Path: "/schedules", Summary: "List schedules", Roles: all, Query: []QueryParam{{"flow_id", "only this flow's schedules"}}, Response: Schedules{}},
	{Method: "POST", Path: "/schedules", Summary: "Add a schedule to a flow", Roles: writers, Request: CreateSchedule{}, Response: Schedule{}, Status: 201},
	{Method: "GET", Path: "/schedules/{id}", Summary: "Show a schedule with its next run times", Roles: all, Response: Schedule{}},
	{Method: "POST", Path: "/schedules/{id}/pause", Summary: "Pause a schedule, deleting its runs that have not started", Roles: writers, Response: Schedule{}},
	{Method: "POST", Path: "/schedules/{id}/resume", Summary: "Resume a paused schedule", Roles: writers, Response: Schedule{}},
	{Method: "DELETE", Path: "/schedules/{id}", Summary: "Delete a schedule and its runs that have not started", Roles: writers, Status: 204},
}
