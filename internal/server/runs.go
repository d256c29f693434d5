package server

import (
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/state"
	"github.com/reevehq/reeve/internal/store"
)

func (s *Server) createFlowRun(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	var req api.CreateFlowRun
	if err := decode(r, w, api.MaxBodyBytes, &req); err != nil {
		return nil, err
	}
	ctx := r.Context()
	var (
		f   store.Flow
		err error
	)
	switch {
	case req.FlowID != "" && (req.Flow != "" || req.Project != ""):
		return nil, invalid("name the flow by flow_id, or by project and flow, not both")
	case req.FlowID != "":
		f, err = s.store.GetFlowByID(ctx, req.FlowID)
	case req.Flow != "":
		proj := req.Project
		if proj == "" {
			proj = DefaultProject
		}
		f, err = s.store.GetFlow(ctx, proj, req.Flow)
	default:
		return nil, invalid("which flow? give flow_id, or flow (and project)")
	}
	if err != nil {
		return nil, err
	}
	var v store.FlowVersion
	if req.FlowVersionID != "" {
		v, err = s.store.GetFlowVersion(ctx, req.FlowVersionID)
		if err == nil && v.FlowID != f.ID {
			err = invalid("flow version %s is not a version of flow %q", v.ID, f.Name)
		}
	} else {
		v, err = s.newestVersion(ctx, f)
	}
	if err != nil {
		return nil, err
	}
	params, err := resolveParams(v, req.Params)
	if err != nil {
		return nil, err
	}
	if len(req.Name) > 256 || len(req.IdempotencyKey) > 256 {
		return nil, invalid("name and idempotency_key are at most 256 bytes long")
	}
	run, created, err := s.store.CreateFlowRun(ctx, store.FlowRun{
		FlowVersionID:  v.ID,
		Name:           req.Name,
		Params:         params,
		IdempotencyKey: req.IdempotencyKey,
		Labels:         v.Labels,
		ScheduledAt:    req.ScheduledAt,
	})
	if err != nil {
		return nil, err
	}
	out := api.CreatedFlowRun{FlowRun: apiFlowRun(run), Created: created}
	if !created {
		return withStatus{http.StatusOK, out}, nil
	}
	s.hub.notifyRuns()
	return withStatus{http.StatusCreated, out}, nil
}

// Bounds of a flow-run filter's query parameters.
const (
	maxFilterTerms = 20   // label and param parameters, each
	maxFilterText  = 1000 // bytes of q, of a label, of a param
)

// runFilter reads the flow-run filter of GET /flow_runs and GET
// /flow_runs/counts from r's query: a malformed parameter is ErrInvalid,
// an unknown project ErrNotFound.
func (s *Server) runFilter(r *http.Request) (store.FlowRunFilter, error) {
	q := newQuery(r)
	f := store.FlowRunFilter{
		FlowID:          q.str("flow_id"),
		AgentID:         q.str("agent_id"),
		States:          q.kinds("state"),
		CreatedAfter:    q.time("created_after"),
		CreatedBefore:   q.time("created_before"),
		ScheduledBefore: q.time("scheduled_before"),
		Labels:          q.v["label"],
		Text:            q.str("q"),
		Limit:           q.int("limit", 0),
		Cursor:          q.str("cursor"),
	}
	if q.err != nil {
		return f, q.err
	}
	if len(f.Text) > maxFilterText {
		return f, invalid("query parameter q is %d bytes long: search for at most %d", len(f.Text), maxFilterText)
	}
	if len(f.Labels) > maxFilterTerms {
		return f, invalid("%d label parameters: give at most %d", len(f.Labels), maxFilterTerms)
	}
	for _, l := range f.Labels {
		if l == "" || len(l) > maxFilterText {
			return f, invalid("query parameter label=%q: a label is 1 to %d bytes long", l, maxFilterText)
		}
	}
	params := q.v["param"]
	if len(params) > maxFilterTerms {
		return f, invalid("%d param parameters: give at most %d", len(params), maxFilterTerms)
	}
	for _, p := range params {
		name, value, ok := strings.Cut(p, "=")
		switch {
		case !ok || name == "":
			return f, invalid("query parameter param=%q is not name=value: give e.g. param=region=eu or param=n=3", p)
		case len(p) > maxFilterText:
			return f, invalid("query parameter param=%q is %d bytes long: at most %d", name+"=…", len(p), maxFilterText)
		}
		if f.Params == nil {
			f.Params = map[string]string{}
		}
		if prev, dup := f.Params[name]; dup && prev != value {
			return f, invalid("query parameters param=%s=%s and param=%s=%s: a parameter has one value; give it once", name, prev, name, value)
		}
		f.Params[name] = value
	}
	if name := q.str("project"); name != "" {
		p, err := s.store.GetProject(r.Context(), name)
		if err != nil {
			return f, err
		}
		f.ProjectID = p.ID
	}
	return f, nil
}

func (s *Server) listFlowRuns(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	f, err := s.runFilter(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	taskCounts := q.bool("task_counts")
	if q.err != nil {
		return nil, q.err
	}
	ctx := r.Context()
	runs, next, err := s.store.ListFlowRuns(ctx, f)
	if err != nil {
		return nil, err
	}
	out := api.FlowRuns{FlowRuns: mapSlice(runs, apiFlowRun), NextCursor: next}
	if taskCounts && len(runs) > 0 {
		// One query for the page (at most 1000 runs, as CountTaskRuns takes).
		counts, err := s.store.CountTaskRuns(ctx, mapSlice(runs, func(r store.FlowRun) string { return r.ID }))
		if err != nil {
			return nil, err
		}
		for i := range out.FlowRuns {
			out.FlowRuns[i].TaskCounts = counts[out.FlowRuns[i].ID]
		}
	}
	return out, nil
}

func (s *Server) countFlowRuns(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	f, err := s.runFilter(r)
	if err != nil {
		return nil, err
	}
	counts, err := s.store.CountFlowRunsMatching(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := api.FlowRunCounts{Counts: counts}
	for _, n := range counts {
		out.Total += n
	}
	return out, nil
}

func (s *Server) getFlowRun(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	ctx := r.Context()
	id := r.PathValue("id")
	run, err := s.store.GetFlowRun(ctx, id)
	if err != nil {
		return nil, err
	}
	trs, err := s.store.ListTaskRuns(ctx, id)
	if err != nil {
		return nil, err
	}
	hist, err := s.store.History(ctx, id, "")
	if err != nil {
		return nil, err
	}
	return api.FlowRunDetail{FlowRun: apiFlowRun(run), TaskRuns: mapSlice(trs, apiTaskRun), History: hist}, nil
}

// checkState checks a state a client sends.
func checkState(st state.State) error {
	if _, err := state.ParseKind(st.Kind.String()); err != nil {
		return invalid("state kind %s is not valid", st.Kind)
	}
	if len(st.Message) > 64<<10 {
		return invalid("state message is %d bytes long: keep it under 64 KiB", len(st.Message))
	}
	return nil
}

func (s *Server) setFlowRunState(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	var req api.SetState
	if err := decode(r, w, api.MaxBodyBytes, &req); err != nil {
		return nil, err
	}
	if err := checkState(req.State); err != nil {
		return nil, err
	}
	if req.ExpectVersion <= 0 {
		return nil, invalid("expect_version must be the flow run's state version you last read (≥ 1)")
	}
	ctx := r.Context()
	id := r.PathValue("id")
	run, err := s.store.GetFlowRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := c.fence(run); err != nil {
		return nil, err
	}
	if run.State.Kind.Finished() && run.Version == req.ExpectVersion {
		return nil, reeve.Errorf(reeve.CodeConflict, "flow run %s already finished (%s): its state cannot change; create a new run", id, run.State.Kind)
	}
	run, err = s.store.SetFlowRunState(ctx, id, req.ExpectVersion, req.State)
	if err != nil {
		return nil, err
	}
	s.stateChanged(run)
	return apiFlowRun(run), nil
}

// stateChanged wakes whoever waits on a flow run's state.
func (s *Server) stateChanged(run store.FlowRun) {
	s.hub.notifyLogs(run.ID)
	if run.State.Kind == state.Scheduled {
		s.hub.notifyRuns()
	}
}

func (s *Server) writeTaskRunStates(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	var req api.WriteTaskRunStates
	limit := max(int64(api.MaxLargeBodyBytes), int64(base64.StdEncoding.EncodedLen(s.maxResult))+1<<20)
	if err := decode(r, w, limit, &req); err != nil {
		return nil, err
	}
	if len(req.Writes) == 0 && len(req.Results) == 0 {
		return nil, invalid("writes is empty: send at least one task-run state")
	}
	if len(req.Writes) > 10000 {
		return nil, invalid("%d writes in one request: send at most 10000", len(req.Writes))
	}
	writes := make([]store.TaskRunWrite, len(req.Writes))
	for i, wr := range req.Writes {
		if err := checkState(wr.State); err != nil {
			return nil, invalid("writes[%d] (%s): %v", i, wr.Key, err)
		}
		writes[i] = store.TaskRunWrite{Key: wr.Key, Task: wr.Task, MapIndex: wr.MapIndex, Expect: wr.ExpectVersion, State: wr.State}
	}
	if c.run != nil {
		// Read the run again: the body (up to 16 MiB) took time to arrive,
		// and the run may have been re-queued meanwhile.
		run, err := s.store.GetFlowRun(r.Context(), c.run.ID)
		if err != nil {
			return nil, err
		}
		if err := c.fence(run); err != nil {
			return nil, err
		}
		c.run = &run
	}
	if err := s.putResults(r, c, req.Results); err != nil {
		return nil, err
	}
	if len(writes) == 0 {
		return api.TaskRuns{TaskRuns: []api.TaskRun{}}, nil
	}
	trs, err := s.store.WriteTaskRunStates(r.Context(), r.PathValue("id"), c.attempt(), writes)
	if err != nil {
		return nil, err
	}
	return api.TaskRuns{TaskRuns: mapSlice(trs, apiTaskRun)}, nil
}

func (s *Server) history(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	hist, err := s.store.History(r.Context(), r.PathValue("id"), r.URL.Query().Get("task_run_id"))
	if err != nil {
		return nil, err
	}
	return api.History{States: hist}, nil
}

func (s *Server) listTaskRuns(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	id := r.URL.Query().Get("flow_run_id")
	if id == "" {
		return nil, invalid("query parameter flow_run_id is required: task runs are listed per flow run")
	}
	trs, err := s.store.ListTaskRuns(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return api.TaskRuns{TaskRuns: mapSlice(trs, apiTaskRun)}, nil
}

func (s *Server) mintFlowRunToken(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	ctx := r.Context()
	run, err := s.store.GetFlowRun(ctx, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if run.State.Kind.Finished() {
		return nil, reeve.Errorf(reeve.CodeConflict, "flow run %s already finished (%s): it needs no token", run.ID, run.State.Kind)
	}
	return s.mintRunToken(ctx, run)
}

// due is when a run became claimable.
func due(run store.FlowRun) time.Time {
	if run.ScheduledAt.After(run.CreatedAt) {
		return run.ScheduledAt
	}
	return run.CreatedAt
}
