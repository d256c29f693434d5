package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/scheduler"
	"github.com/reevehq/reeve/internal/spec"
	"github.com/reevehq/reeve/internal/store"
)

// handlers returns the handler of every route, by "METHOD path".
func (s *Server) handlers() map[string]handlerFunc {
	return map[string]handlerFunc{
		"GET /projects":        s.listProjects,
		"POST /projects":       s.createProject,
		"GET /projects/{name}": s.getProject,

		"POST /flows":             s.registerFlow,
		"GET /flows":              s.listFlows,
		"GET /flows/{id}":         s.getFlow,
		"GET /flow_versions/{id}": s.getFlowVersion,

		"POST /flow_runs":                      s.createFlowRun,
		"GET /flow_runs":                       s.listFlowRuns,
		"GET /flow_runs/counts":                s.countFlowRuns,
		"GET /flow_runs/{id}":                  s.getFlowRun,
		"POST /flow_runs/{id}/state":           s.setFlowRunState,
		"POST /flow_runs/{id}/cancel":          s.cancelFlowRun,
		"POST /flow_runs/{id}/restart":         s.restartFlowRun,
		"POST /flow_runs/{id}/heartbeat":       s.runHeartbeat,
		"POST /flow_runs/{id}/lost":            s.reportLost,
		"POST /flow_runs/{id}/task_run_states": s.writeTaskRunStates,
		"GET /flow_runs/{id}/history":          s.history,
		"POST /flow_runs/{id}/logs":            s.appendLogs,
		"GET /flow_runs/{id}/logs":             s.readLogs,
		"GET /flow_runs/{id}/secrets/{name}":   s.readRunSecret,
		"PUT /flow_runs/{id}/results/{key...}": s.putResult,
		"GET /flow_runs/{id}/results/{key...}": s.getResult,
		"POST /flow_runs/{id}/tokens":          s.mintFlowRunToken,
		"GET /task_runs":                       s.listTaskRuns,

		"GET /secrets":           s.listSecrets,
		"PUT /secrets/{name}":    s.setSecret,
		"DELETE /secrets/{name}": s.deleteSecret,

		"GET /tokens":         s.listTokens,
		"POST /tokens":        s.createToken,
		"DELETE /tokens/{id}": s.revokeToken,

		"GET /agents":                 s.listAgents,
		"POST /agents":                s.registerAgent,
		"POST /agents/{id}/heartbeat": s.heartbeat,
		"POST /agents/{id}/claim":     s.claim,

		"GET /schedules":              s.listSchedules,
		"POST /schedules":             s.createSchedule,
		"GET /schedules/{id}":         s.getSchedule,
		"POST /schedules/{id}/pause":  s.pauseSchedule,
		"POST /schedules/{id}/resume": s.resumeSchedule,
		"DELETE /schedules/{id}":      s.deleteSchedule,
	}
}

// created answers with 201, or 200 when an existing record was returned.
type withStatus struct {
	status int
	body   any
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	ps, err := s.store.ListProjects(r.Context())
	if err != nil {
		return nil, err
	}
	return api.Projects{Projects: mapSlice(ps, apiProject)}, nil
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

func (s *Server) createProject(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	var req api.CreateProject
	if err := decode(r, w, api.MaxBodyBytes, &req); err != nil {
		return nil, err
	}
	if !namePattern.MatchString(req.Name) {
		return nil, invalid("project name %q is not valid: use 1 to 63 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit", req.Name)
	}
	if len(req.Description) > 4096 {
		return nil, invalid("project description is %d bytes long: keep it under 4096", len(req.Description))
	}
	p, err := s.store.CreateProject(r.Context(), store.Project{Name: req.Name, Description: req.Description})
	if err != nil {
		return nil, err
	}
	return apiProject(p), nil
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	p, err := s.store.GetProject(r.Context(), r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	return apiProject(p), nil
}

// project returns the named project, or the default one for "".
func (s *Server) project(ctx context.Context, name string) (store.Project, error) {
	if name == "" {
		name = DefaultProject
	}
	return s.store.GetProject(ctx, name)
}

var (
	digestImage = regexp.MustCompile(`^[^@\s]+@sha256:[0-9a-f]{64}$`)
	cpuPattern  = regexp.MustCompile(`^([0-9]+m|[0-9]+(\.[0-9]+)?)$`)
	memPattern  = regexp.MustCompile(`^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$`)
	envPattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	platPattern = regexp.MustCompile(`^linux/[a-z0-9]+(/v[0-9]+)?$`)
)

// checkStorage checks where an agent gets a flow's program.
func checkStorage(st api.Storage) error {
	switch st.Kind {
	case api.StorageLocal:
		if !strings.HasPrefix(st.Path, "/") {
			return invalid("storage: a local flow needs the absolute path of its program, not %q", st.Path)
		}
		if st.Image != "" {
			return invalid("storage: a local flow has no image: remove it, or use kind docker")
		}
	case api.StorageDocker:
		if !digestImage.MatchString(st.Image) {
			return invalid("storage: a docker flow needs an image pinned by digest (name@sha256:<64 hex>), not %q: reeve deploy registers the pushed digest", st.Image)
		}
		if st.Path != "" {
			return invalid("storage: a docker flow has no path: remove it")
		}
	default:
		return invalid("storage kind %q is not valid: use local or docker", st.Kind)
	}
	return nil
}

// checkRunConfig checks how a flow's runs are executed.
func checkRunConfig(rc api.RunConfig) error {
	switch {
	case rc.Executor != "" && rc.Executor != "sequential" && rc.Executor != "parallel":
		return invalid("run_config.executor %q is not valid: use sequential or parallel", rc.Executor)
	case rc.Workers < 0 || rc.Workers > 10000:
		return invalid("run_config.workers %d is out of range: use 0 (the default) to 10000", rc.Workers)
	case rc.CPU != "" && !cpuPattern.MatchString(rc.CPU):
		return invalid("run_config.cpu %q is not valid: use cores (\"2\", \"0.5\") or millicores (\"500m\")", rc.CPU)
	case rc.Memory != "" && !memPattern.MatchString(rc.Memory):
		return invalid("run_config.memory %q is not valid: use bytes with an optional suffix Ki, Mi, Gi (\"512Mi\")", rc.Memory)
	case rc.Platform != "" && !platPattern.MatchString(rc.Platform):
		return invalid("run_config.platform %q is not valid: use linux/ARCH[/VARIANT], like linux/amd64, linux/arm64 or linux/arm/v7", rc.Platform)
	}
	for name := range rc.Env {
		if !envPattern.MatchString(name) {
			return invalid("run_config.env: %q is not an environment variable name", name)
		}
	}
	return nil
}

func (s *Server) registerFlow(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	var req api.RegisterFlow
	if err := decode(r, w, api.MaxLargeBodyBytes, &req); err != nil {
		return nil, err
	}
	if len(req.Spec) == 0 || string(req.Spec) == "null" {
		return nil, invalid("spec is missing: send the flow's spec (reeve save writes it)")
	}
	sp, err := spec.Decode(req.Spec)
	if err != nil {
		return nil, err
	}
	if err := sp.Validate(); err != nil {
		return nil, err
	}
	if err := checkStorage(req.Storage); err != nil {
		return nil, err
	}
	if err := checkRunConfig(req.RunConfig); err != nil {
		return nil, err
	}
	if sp.Schedule != nil {
		for _, p := range sp.Parameters {
			if p.Required {
				return nil, invalid("flow %q has a schedule, but its parameter %q is required and has no default, so scheduled runs could not start: give the parameter a default, or remove the schedule", sp.Name, p.Name)
			}
		}
	}
	labels := append(slices.Clone(sp.Labels), req.Labels...)
	for _, l := range labels {
		if l == "" || len(l) > 128 || strings.ContainsAny(l, " \t\n,") {
			return nil, invalid("label %q is not valid: use 1 to 128 characters without spaces or commas", l)
		}
	}
	slices.Sort(labels)
	labels = slices.Compact(labels)
	encoded, err := spec.Encode(sp)
	if err != nil {
		return nil, invalid("spec: %v", err)
	}
	ctx := r.Context()
	proj, err := s.project(ctx, req.Project)
	if err != nil {
		return nil, err
	}
	v, created, err := s.store.RegisterFlow(ctx, store.Registration{
		Project:   proj.Name,
		Flow:      sp.Name,
		SpecHash:  sp.Hash(),
		Spec:      encoded,
		Storage:   store.Storage(req.Storage),
		Labels:    labels,
		RunConfig: store.RunConfig(req.RunConfig),
	})
	if err != nil {
		return nil, err
	}
	f, err := s.store.GetFlow(ctx, proj.Name, sp.Name)
	if err != nil {
		return nil, err
	}
	if created {
		if err := s.syncSpecSchedule(ctx, f, sp); err != nil {
			return nil, err
		}
		s.kick()
		s.log.InfoContext(ctx, "flow registered", "project", proj.Name, "flow", sp.Name, "version", v.Version)
	}
	out := api.Registered{Flow: apiFlow(f), Version: apiFlowVersion(v), Created: created}
	agents, err := s.store.ListAgents(ctx)
	if err != nil {
		return nil, err
	}
	if why := scheduler.Stranded(agents, v.Labels, v.Storage.Kind, s.now()); why != "" {
		out.Warnings = append(out.Warnings, fmt.Sprintf("runs of flow %q will wait: %s", sp.Name, why))
	}
	if created {
		return withStatus{http.StatusCreated, out}, nil
	}
	return out, nil
}

// syncSpecSchedule makes the flow's spec-made schedule match the spec: it
// keeps an equal one, and replaces or deletes one that differs.
func (s *Server) syncSpecSchedule(ctx context.Context, f store.Flow, sp *spec.Spec) error {
	scheds, err := s.store.ListSchedules(ctx, f.ID)
	if err != nil {
		return err
	}
	keep := false
	for _, sc := range scheds {
		if !sc.FromSpec {
			continue
		}
		if sp.Schedule != nil && !keep && sc.Cron == sp.Schedule.Cron && sc.Timezone == sp.Schedule.Timezone {
			keep = true
			continue
		}
		if err := s.store.DeleteSchedule(ctx, sc.ID); err != nil {
			return fmt.Errorf("replace the schedule of flow %q: %w", f.Name, err)
		}
	}
	if sp.Schedule != nil && !keep {
		if _, err := s.store.CreateSchedule(ctx, store.Schedule{FlowID: f.ID, Cron: sp.Schedule.Cron, Timezone: sp.Schedule.Timezone, FromSpec: true}); err != nil {
			return fmt.Errorf("create the schedule of flow %q: %w", f.Name, err)
		}
	}
	return nil
}

func (s *Server) listFlows(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	q := newQuery(r)
	name := q.str("name")
	proj, err := s.project(r.Context(), q.str("project"))
	if err != nil {
		return nil, err
	}
	fs, err := s.store.ListFlows(r.Context(), proj.Name)
	if err != nil {
		return nil, err
	}
	if name != "" {
		fs = slices.DeleteFunc(fs, func(f store.Flow) bool { return f.Name != name })
	}
	return api.Flows{Flows: mapSlice(fs, apiFlow)}, nil
}

func (s *Server) getFlow(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	ctx := r.Context()
	f, err := s.store.GetFlowByID(ctx, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	vs, err := s.store.ListFlowVersions(ctx, f.ID)
	if err != nil {
		return nil, err
	}
	scheds, err := s.store.ListSchedules(ctx, f.ID)
	if err != nil {
		return nil, err
	}
	return api.FlowDetail{Flow: apiFlow(f), Versions: mapSlice(vs, apiFlowVersion), Schedules: mapSlice(scheds, s.scheduleWithNext)}, nil
}

func (s *Server) getFlowVersion(w http.ResponseWriter, r *http.Request, c *caller) (any, error) {
	v, err := s.store.GetFlowVersion(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return apiFlowVersion(v), nil
}

// newestVersion returns a flow's newest version.
func (s *Server) newestVersion(ctx context.Context, f store.Flow) (store.FlowVersion, error) {
	vs, err := s.store.ListFlowVersions(ctx, f.ID)
	if err != nil {
		return store.FlowVersion{}, err
	}
	if len(vs) == 0 {
		return store.FlowVersion{}, reeve.Errorf(reeve.CodeNotFound, "flow %q has no versions: register it", f.Name)
	}
	return vs[0], nil
}

// resolveParams checks params against a flow version's spec and returns
// every parameter's value as a JSON object.
func resolveParams(v store.FlowVersion, params json.RawMessage) (json.RawMessage, error) {
	sp, err := spec.Decode(v.Spec)
	if err != nil {
		return nil, fmt.Errorf("flow version %s has a spec the server cannot read: %w", v.ID, err)
	}
	vals, err := sp.ResolveParams(params)
	if err != nil {
		return nil, err
	}
	return json.Marshal(vals)
}
