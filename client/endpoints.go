package client

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/errs"
	"github.com/reevehq/reeve/internal/state"
)

// One method per route of api.Routes, in its order.

// Projects lists the projects.
func (c *Client) Projects(ctx context.Context) ([]api.Project, error) {
	var out api.Projects
	if err := c.do(ctx, http.MethodGet, "/projects", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	return out.Projects, nil
}

// CreateProject creates a project (admin tokens only). A project of that
// name already is reeve.ErrConflict.
func (c *Client) CreateProject(ctx context.Context, req api.CreateProject) (*api.Project, error) {
	var out api.Project
	if err := c.do(ctx, http.MethodPost, "/projects", nil, req, &out); err != nil {
		return nil, fmt.Errorf("create project %q: %w", req.Name, err)
	}
	return &out, nil
}

// Project returns the named project.
func (c *Client) Project(ctx context.Context, name string) (*api.Project, error) {
	var out api.Project
	if err := c.do(ctx, http.MethodGet, "/projects/"+escape(name), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get project %q: %w", name, err)
	}
	return &out, nil
}

// RegisterFlow records a flow spec as its flow's next version; a spec
// equal to the newest version's returns that version (Created false).
func (c *Client) RegisterFlow(ctx context.Context, req api.RegisterFlow) (*api.Registered, error) {
	var out api.Registered
	if err := c.do(ctx, http.MethodPost, "/flows", nil, req, &out); err != nil {
		return nil, fmt.Errorf("register flow: %w", err)
	}
	return &out, nil
}

// Flows lists the flows of a project ("" is the default project), or
// with a name, only the flow of that name.
func (c *Client) Flows(ctx context.Context, project, name string) ([]api.Flow, error) {
	q := url.Values{}
	setNonEmpty(q, "project", project)
	setNonEmpty(q, "name", name)
	var out api.Flows
	if err := c.do(ctx, http.MethodGet, "/flows", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list flows: %w", err)
	}
	return out.Flows, nil
}

// Flow returns a flow with its versions (newest first) and schedules.
func (c *Client) Flow(ctx context.Context, id string) (*api.FlowDetail, error) {
	var out api.FlowDetail
	if err := c.do(ctx, http.MethodGet, "/flows/"+escape(id), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get flow %s: %w", id, err)
	}
	return &out, nil
}

// FlowVersion returns a flow version, with its spec.
func (c *Client) FlowVersion(ctx context.Context, id string) (*api.FlowVersion, error) {
	var out api.FlowVersion
	if err := c.do(ctx, http.MethodGet, "/flow_versions/"+escape(id), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get flow version %s: %w", id, err)
	}
	return &out, nil
}

// CreateFlowRun creates a flow run. With an idempotency key that an
// earlier run has, it returns that run (Created false).
func (c *Client) CreateFlowRun(ctx context.Context, req api.CreateFlowRun) (*api.CreatedFlowRun, error) {
	var out api.CreatedFlowRun
	if err := c.do(ctx, http.MethodPost, "/flow_runs", nil, req, &out); err != nil {
		return nil, fmt.Errorf("create a run of flow %s: %w", flowName(req), err)
	}
	return &out, nil
}

// flowName names the flow of a CreateFlowRun for an error message.
func flowName(req api.CreateFlowRun) string {
	switch {
	case req.FlowID != "":
		return req.FlowID
	case req.Project != "":
		return strconv.Quote(req.Project + "/" + req.Flow)
	}
	return strconv.Quote(req.Flow)
}

// FlowRunFilter selects the flow runs FlowRuns lists. Zero fields match
// every run.
type FlowRunFilter struct {
	Project       string       // project name
	FlowID        string       // flow ID
	AgentID       string       // only runs claimed by this agent
	States        []state.Kind // any of these state kinds
	CreatedAfter  time.Time    // inclusive
	CreatedBefore time.Time    // exclusive
	// ScheduledBefore selects runs whose ScheduledAt is before it
	// (exclusive); with States Scheduled, the runs due by then.
	ScheduledBefore time.Time
	Labels          []string // runs with every one of these labels
	// Params selects runs by parameter value: name → a string's text, or
	// another value's JSON text ("3", "true"); runs matching every one.
	Params map[string]string
	Text   string // runs whose ID, name or state message holds it, ignoring case
	// TaskCounts asks FlowRuns for each run's task-run counts by state
	// kind (api.FlowRun.TaskCounts). FlowRunCounts ignores it.
	TaskCounts bool
	Limit      int    // page size: 0 means the server's default (100), at most 1000
	Cursor     string // the NextCursor of the previous page
}

func (f FlowRunFilter) query() url.Values {
	q := url.Values{}
	setNonEmpty(q, "project", f.Project)
	setNonEmpty(q, "flow_id", f.FlowID)
	setNonEmpty(q, "agent_id", f.AgentID)
	if len(f.States) > 0 {
		kinds := make([]string, len(f.States))
		for i, k := range f.States {
			kinds[i] = k.String()
		}
		q.Set("state", strings.Join(kinds, ","))
	}
	if !f.CreatedAfter.IsZero() {
		q.Set("created_after", f.CreatedAfter.Format(time.RFC3339Nano))
	}
	if !f.CreatedBefore.IsZero() {
		q.Set("created_before", f.CreatedBefore.Format(time.RFC3339Nano))
	}
	if !f.ScheduledBefore.IsZero() {
		q.Set("scheduled_before", f.ScheduledBefore.Format(time.RFC3339Nano))
	}
	for _, l := range f.Labels {
		q.Add("label", l)
	}
	names := slices.Sorted(maps.Keys(f.Params))
	for _, name := range names {
		q.Add("param", name+"="+f.Params[name])
	}
	setNonEmpty(q, "q", f.Text)
	if f.TaskCounts {
		q.Set("task_counts", "true")
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	setNonEmpty(q, "cursor", f.Cursor)
	return q
}

// FlowRuns returns one page of the flow runs f selects, newest first. The
// page's NextCursor, given as f.Cursor, reads the next; it is empty on the
// last page.
func (c *Client) FlowRuns(ctx context.Context, f FlowRunFilter) (*api.FlowRuns, error) {
	var out api.FlowRuns
	if err := c.do(ctx, http.MethodGet, "/flow_runs", f.query(), nil, &out); err != nil {
		return nil, fmt.Errorf("list flow runs: %w", err)
	}
	return &out, nil
}

// AllFlowRuns iterates over every flow run f selects, newest first,
// reading page after page from f.Cursor on. An error ends the iteration.
//
//	for run, err := range c.AllFlowRuns(ctx, client.FlowRunFilter{Project: "etl"}) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(run.ID, run.State.Kind)
//	}
func (c *Client) AllFlowRuns(ctx context.Context, f FlowRunFilter) iter.Seq2[api.FlowRun, error] {
	return func(yield func(api.FlowRun, error) bool) {
		for {
			page, err := c.FlowRuns(ctx, f)
			if err != nil {
				yield(api.FlowRun{}, err)
				return
			}
			for _, run := range page.FlowRuns {
				if !yield(run, nil) {
					return
				}
			}
			if page.NextCursor == "" || page.NextCursor == f.Cursor {
				return
			}
			f.Cursor = page.NextCursor
		}
	}
}

// FlowRunCounts returns how many of the flow runs f selects there are of
// each state kind, and their total; f's Limit, Cursor and TaskCounts are
// ignored.
func (c *Client) FlowRunCounts(ctx context.Context, f FlowRunFilter) (api.FlowRunCounts, error) {
	q := f.query()
	q.Del("limit")
	q.Del("cursor")
	q.Del("task_counts")
	var out api.FlowRunCounts
	if err := c.do(ctx, http.MethodGet, "/flow_runs/counts", q, nil, &out); err != nil {
		return api.FlowRunCounts{}, fmt.Errorf("count flow runs: %w", err)
	}
	return out, nil
}

// FlowRun returns a flow run with its task runs and its state history.
func (c *Client) FlowRun(ctx context.Context, id string) (*api.FlowRunDetail, error) {
	var out api.FlowRunDetail
	if err := c.do(ctx, http.MethodGet, "/flow_runs/"+escape(id), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get flow run %s: %w", id, err)
	}
	return &out, nil
}

// SetFlowRunState moves a flow run to req.State if its state version is
// still req.ExpectVersion; a stale version is reeve.ErrConflict (another
// runner moved it: this one should stop).
func (c *Client) SetFlowRunState(ctx context.Context, id string, req api.SetState) (*api.FlowRun, error) {
	var out api.FlowRun
	if err := c.do(ctx, http.MethodPost, "/flow_runs/"+escape(id)+"/state", nil, req, &out); err != nil {
		return nil, fmt.Errorf("set the state of flow run %s to %s: %w", id, req.State.Kind, err)
	}
	return &out, nil
}

// CancelFlowRun cancels a flow run that has not finished; a finished one
// is reeve.ErrConflict.
func (c *Client) CancelFlowRun(ctx context.Context, id string) (*api.FlowRun, error) {
	var out api.FlowRun
	if err := c.do(ctx, http.MethodPost, "/flow_runs/"+escape(id)+"/cancel", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("cancel flow run %s: %w", id, err)
	}
	return &out, nil
}

// RestartFlowRun runs a finished, unsuccessful flow run again: it is
// Scheduled anew, and its runner re-runs only the failed and unfinished
// task runs, reusing the persisted results of the finished ones. A run
// that has not finished, or that succeeded, is reeve.ErrConflict.
func (c *Client) RestartFlowRun(ctx context.Context, id string) (*api.FlowRun, error) {
	var out api.FlowRun
	if err := c.do(ctx, http.MethodPost, "/flow_runs/"+escape(id)+"/restart", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("restart flow run %s: %w", id, err)
	}
	return &out, nil
}

// RunHeartbeat tells the server the runner of a flow run is alive; the
// client must hold the run's token. The answer says whether to cancel and
// when to beat again. reeve.ErrConflict means the token's attempt was
// superseded (the run was declared lost and re-queued): stop at once.
func (c *Client) RunHeartbeat(ctx context.Context, flowRunID string) (*api.RunHeartbeat, error) {
	var out api.RunHeartbeat
	if err := c.do(ctx, http.MethodPost, "/flow_runs/"+escape(flowRunID)+"/heartbeat", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("heartbeat of flow run %s: %w", flowRunID, err)
	}
	return &out, nil
}

// ReportLost tells the server that the runner of an attempt of a flow run
// ended without finishing it; the server re-queues or fails the run. A
// stale attempt, or a run that is not Submitted, Running or Cancelling, is
// reeve.ErrConflict.
func (c *Client) ReportLost(ctx context.Context, flowRunID string, req api.ReportLost) (*api.FlowRun, error) {
	var out api.FlowRun
	if err := c.do(ctx, http.MethodPost, "/flow_runs/"+escape(flowRunID)+"/lost", nil, req, &out); err != nil {
		return nil, fmt.Errorf("report the runner of flow run %s lost: %w", flowRunID, err)
	}
	return &out, nil
}

// WriteTaskRunStates applies writes to a flow run's task runs in order,
// all or none, and returns the task runs as written.
func (c *Client) WriteTaskRunStates(ctx context.Context, flowRunID string, writes []api.TaskRunWrite) ([]api.TaskRun, error) {
	return c.WriteTaskRunBatch(ctx, flowRunID, api.WriteTaskRunStates{Writes: writes})
}

// WriteTaskRunBatch stores req's results in the server's result store and
// then applies its writes, in order, all or none; it returns the task runs
// as written.
func (c *Client) WriteTaskRunBatch(ctx context.Context, flowRunID string, req api.WriteTaskRunStates) ([]api.TaskRun, error) {
	var out api.TaskRuns
	if err := c.do(ctx, http.MethodPost, "/flow_runs/"+escape(flowRunID)+"/task_run_states", nil, req, &out); err != nil {
		return nil, fmt.Errorf("write task run states of flow run %s: %w", flowRunID, err)
	}
	return out.TaskRuns, nil
}

// History returns the states of a flow run, or with a task run ID, of
// that task run, oldest first.
func (c *Client) History(ctx context.Context, flowRunID, taskRunID string) ([]state.State, error) {
	q := url.Values{}
	setNonEmpty(q, "task_run_id", taskRunID)
	var out api.History
	if err := c.do(ctx, http.MethodGet, "/flow_runs/"+escape(flowRunID)+"/history", q, nil, &out); err != nil {
		return nil, fmt.Errorf("read the history of flow run %s: %w", flowRunID, err)
	}
	return out.States, nil
}

// AppendLogs appends log lines to a flow run.
func (c *Client) AppendLogs(ctx context.Context, flowRunID string, lines []api.LogLine) error {
	if err := c.do(ctx, http.MethodPost, "/flow_runs/"+escape(flowRunID)+"/logs", nil, api.AppendLogs{Logs: lines}, nil); err != nil {
		return fmt.Errorf("append logs to flow run %s: %w", flowRunID, err)
	}
	return nil
}

// LogQuery selects the log lines of a flow run that Logs and FollowLogs
// read. Zero fields select every line.
type LogQuery struct {
	TaskRunID string // only this task run's lines
	After     int64  // only lines with a greater ID: the NextAfter of the previous page
	Limit     int    // Logs: page size; 0 means the server's default (1000), at most 10000
}

// Logs returns one page of a flow run's log lines, oldest first. Its
// NextAfter, given as q.After, reads on.
func (c *Client) Logs(ctx context.Context, flowRunID string, q LogQuery) (*api.Logs, error) {
	v := q.values()
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out api.Logs
	if err := c.do(ctx, http.MethodGet, "/flow_runs/"+escape(flowRunID)+"/logs", v, nil, &out); err != nil {
		return nil, fmt.Errorf("read the logs of flow run %s: %w", flowRunID, err)
	}
	return &out, nil
}

func (q LogQuery) values() url.Values {
	v := url.Values{}
	setNonEmpty(v, "task_run_id", q.TaskRunID)
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	return v
}

// RunSecret returns the value of a secret that a flow run's flow declares.
// Only the run's own run token may read it.
func (c *Client) RunSecret(ctx context.Context, flowRunID, name string) (string, error) {
	var out api.SecretValue
	if err := c.do(ctx, http.MethodGet, "/flow_runs/"+escape(flowRunID)+"/secrets/"+escape(name), nil, nil, &out); err != nil {
		return "", fmt.Errorf("read secret %q of flow run %s: %w", name, flowRunID, err)
	}
	return out.Value, nil
}

// PutResult writes value under key in the server's own result store, in
// the project of the flow run (the runs of a project share keys). Only the
// run's own run token (and admin tokens) may. A value over the server's
// limit (1 MB unless configured otherwise) is reeve.ErrInvalid, with a
// message that says to give the flow a blob store.
func (c *Client) PutResult(ctx context.Context, flowRunID, key string, value []byte) error {
	p, err := resultPath(flowRunID, key)
	if err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	if value == nil {
		value = []byte{}
	}
	if err := c.do(ctx, http.MethodPut, p, nil, api.Result{Value: value}, nil); err != nil {
		return fmt.Errorf("write result %q of flow run %s: %w", key, flowRunID, err)
	}
	return nil
}

// GetResult reads the value under key in the server's own result store, in
// the project of the flow run, and when it was last written. A missing key
// is reeve.ErrNotFound.
func (c *Client) GetResult(ctx context.Context, flowRunID, key string) ([]byte, time.Time, error) {
	p, err := resultPath(flowRunID, key)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read result: %w", err)
	}
	var out api.Result
	if err := c.do(ctx, http.MethodGet, p, nil, nil, &out); err != nil {
		return nil, time.Time{}, fmt.Errorf("read result %q of flow run %s: %w", key, flowRunID, err)
	}
	if out.Value == nil {
		out.Value = []byte{}
	}
	return out.Value, out.UpdatedAt, nil
}

// resultPath returns the path of a result, each segment of the key
// escaped. Empty, "." and ".." segments are refused here: the server's
// router would rewrite the path (a redirect) before any check of the key.
func resultPath(flowRunID, key string) (string, error) {
	if key == "" {
		return "", errs.Errorf(errs.CodeInvalid, "the result key is empty: give one such as \"flow/run/task.json\"")
	}
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		switch seg {
		case "", ".", "..":
			return "", errs.Errorf(errs.CodeInvalid, "result key %q is not valid: it has an empty, \".\" or \"..\" segment; keys are relative slash-separated paths such as \"flow/run/task.json\"", key)
		}
		segs[i] = escape(seg)
	}
	return "/flow_runs/" + escape(flowRunID) + "/results/" + strings.Join(segs, "/"), nil
}

// MintRunToken creates a token scoped to one flow run, for the program
// that runs it.
func (c *Client) MintRunToken(ctx context.Context, flowRunID string) (*api.NewToken, error) {
	var out api.NewToken
	if err := c.do(ctx, http.MethodPost, "/flow_runs/"+escape(flowRunID)+"/tokens", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("mint a token for flow run %s: %w", flowRunID, err)
	}
	return &out, nil
}

// TaskRuns lists a flow run's task runs, by key.
func (c *Client) TaskRuns(ctx context.Context, flowRunID string) ([]api.TaskRun, error) {
	if flowRunID == "" {
		return nil, errs.Errorf(errs.CodeInvalid, "list task runs: no flow run ID: give one")
	}
	var out api.TaskRuns
	if err := c.do(ctx, http.MethodGet, "/task_runs", url.Values{"flow_run_id": {flowRunID}}, nil, &out); err != nil {
		return nil, fmt.Errorf("list the task runs of flow run %s: %w", flowRunID, err)
	}
	return out.TaskRuns, nil
}

// Secrets lists the secrets of a project ("" is the default project):
// names and times, never values.
func (c *Client) Secrets(ctx context.Context, project string) ([]api.Secret, error) {
	q := url.Values{}
	setNonEmpty(q, "project", project)
	var out api.Secrets
	if err := c.do(ctx, http.MethodGet, "/secrets", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return out.Secrets, nil
}

// SetSecret sets a secret of a project ("" is the default project).
func (c *Client) SetSecret(ctx context.Context, project, name, value string) (*api.Secret, error) {
	var out api.Secret
	if err := c.do(ctx, http.MethodPut, "/secrets/"+escape(name), nil, api.SetSecret{Project: project, Value: value}, &out); err != nil {
		return nil, fmt.Errorf("set secret %q: %w", name, err)
	}
	return &out, nil
}

// DeleteSecret deletes a secret of a project ("" is the default project).
func (c *Client) DeleteSecret(ctx context.Context, project, name string) error {
	q := url.Values{}
	setNonEmpty(q, "project", project)
	if err := c.do(ctx, http.MethodDelete, "/secrets/"+escape(name), q, nil, nil); err != nil {
		return fmt.Errorf("delete secret %q: %w", name, err)
	}
	return nil
}

// Tokens lists the API tokens (not run tokens).
func (c *Client) Tokens(ctx context.Context) ([]api.Token, error) {
	var out api.Tokens
	if err := c.do(ctx, http.MethodGet, "/tokens", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out.Tokens, nil
}

// CreateToken creates an API token. Its secret is in the answer, once.
func (c *Client) CreateToken(ctx context.Context, req api.CreateToken) (*api.NewToken, error) {
	var out api.NewToken
	if err := c.do(ctx, http.MethodPost, "/tokens", nil, req, &out); err != nil {
		return nil, fmt.Errorf("create token %q: %w", req.Name, err)
	}
	return &out, nil
}

// RevokeToken revokes an API token.
func (c *Client) RevokeToken(ctx context.Context, id string) (*api.Token, error) {
	var out api.Token
	if err := c.do(ctx, http.MethodDelete, "/tokens/"+escape(id), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("revoke token %s: %w", id, err)
	}
	return &out, nil
}

// Agents lists the registered agents.
func (c *Client) Agents(ctx context.Context) ([]api.Agent, error) {
	var out api.Agents
	if err := c.do(ctx, http.MethodGet, "/agents", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return out.Agents, nil
}

// RegisterAgent registers an agent, or updates the agent of that name.
func (c *Client) RegisterAgent(ctx context.Context, req api.RegisterAgent) (*api.Agent, error) {
	var out api.Agent
	if err := c.do(ctx, http.MethodPost, "/agents", nil, req, &out); err != nil {
		return nil, fmt.Errorf("register agent %q: %w", req.Name, err)
	}
	return &out, nil
}

// Heartbeat tells the server an agent is alive.
func (c *Client) Heartbeat(ctx context.Context, agentID string) (*api.Agent, error) {
	var out api.Agent
	if err := c.do(ctx, http.MethodPost, "/agents/"+escape(agentID)+"/heartbeat", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("heartbeat of agent %s: %w", agentID, err)
	}
	return &out, nil
}

// defaultClaimWait is how long the server waits for a run when a claim
// names no wait.
const defaultClaimWait = 30 * time.Second

// Claim waits up to wait (0: the server's default, 30s; the server caps it,
// at 60s by default) for a due flow run the agent's labels cover and
// claims it. With nothing to claim before the wait ends it returns a nil
// claim and no error. The call may take as long as the wait plus the
// client's timeout.
func (c *Client) Claim(ctx context.Context, agentID string, wait time.Duration) (*api.Claim, error) {
	q := url.Values{}
	if wait != 0 {
		q.Set("wait", wait.String())
	} else {
		wait = defaultClaimWait
	}
	timeout := c.timeout
	if timeout > 0 {
		timeout += max(wait, 0)
	}
	var out *api.Claim // stays nil on 204 No Content
	if err := c.call(ctx, timeout, http.MethodPost, api.Prefix+"/agents/"+escape(agentID)+"/claim", q, nil, &out); err != nil {
		return nil, fmt.Errorf("claim a flow run for agent %s: %w", agentID, err)
	}
	return out, nil
}

// Schedules lists the schedules, or with a flow ID, that flow's.
func (c *Client) Schedules(ctx context.Context, flowID string) ([]api.Schedule, error) {
	q := url.Values{}
	setNonEmpty(q, "flow_id", flowID)
	var out api.Schedules
	if err := c.do(ctx, http.MethodGet, "/schedules", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return out.Schedules, nil
}

// CreateSchedule adds a schedule to a flow.
func (c *Client) CreateSchedule(ctx context.Context, req api.CreateSchedule) (*api.Schedule, error) {
	var out api.Schedule
	if err := c.do(ctx, http.MethodPost, "/schedules", nil, req, &out); err != nil {
		return nil, fmt.Errorf("create a schedule of flow %s: %w", req.FlowID, err)
	}
	return &out, nil
}

// Schedule returns a schedule with its next run times.
func (c *Client) Schedule(ctx context.Context, id string) (*api.Schedule, error) {
	var out api.Schedule
	if err := c.do(ctx, http.MethodGet, "/schedules/"+escape(id), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get schedule %s: %w", id, err)
	}
	return &out, nil
}

// PauseSchedule pauses a schedule, deleting its runs that have not started.
func (c *Client) PauseSchedule(ctx context.Context, id string) (*api.Schedule, error) {
	var out api.Schedule
	if err := c.do(ctx, http.MethodPost, "/schedules/"+escape(id)+"/pause", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("pause schedule %s: %w", id, err)
	}
	return &out, nil
}

// ResumeSchedule resumes a paused schedule.
func (c *Client) ResumeSchedule(ctx context.Context, id string) (*api.Schedule, error) {
	var out api.Schedule
	if err := c.do(ctx, http.MethodPost, "/schedules/"+escape(id)+"/resume", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("resume schedule %s: %w", id, err)
	}
	return &out, nil
}

// DeleteSchedule deletes a schedule and its runs that have not started.
func (c *Client) DeleteSchedule(ctx context.Context, id string) error {
	if err := c.do(ctx, http.MethodDelete, "/schedules/"+escape(id), nil, nil, nil); err != nil {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	return nil
}

// Healthz checks that the server answers (GET /healthz).
func (c *Client) Healthz(ctx context.Context) error {
	if err := c.call(ctx, c.timeout, http.MethodGet, "/healthz", nil, nil, nil); err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	return nil
}

// Ready checks that the server is ready to serve: that its store answers
// (GET /readyz). A server that is not is reeve.ErrUnavailable.
func (c *Client) Ready(ctx context.Context) error {
	if err := c.call(ctx, c.timeout, http.MethodGet, "/readyz", nil, nil, nil); err != nil {
		return fmt.Errorf("readiness check: %w", err)
	}
	return nil
}

// setNonEmpty sets a query parameter that has a value.
func setNonEmpty(q url.Values, name, value string) {
	if value != "" {
		q.Set(name, value)
	}
}
