package server

import (
	"github.com/reevehq/reeve/api"
	"github.com/reevehq/reeve/internal/store"
)

// Conversions from store records to wire types. Where the two have the
// same fields, a conversion does it (and stops compiling when they drift).

func apiProject(p store.Project) api.Project       { return api.Project(p) }
func apiFlow(f store.Flow) api.Flow                { return api.Flow(f) }
func apiTaskRun(t store.TaskRun) api.TaskRun       { return api.TaskRun(t) }
func apiAgent(a store.Agent) api.Agent             { return api.Agent(a) }
func apiStorage(s store.Storage) api.Storage       { return api.Storage(s) }
func apiRunConfig(c store.RunConfig) api.RunConfig { return api.RunConfig(c) }

// apiFlowRun copies every field of a flow run (api.FlowRun has TaskCounts
// besides, so no conversion does it; TestAPIFlowRunCopiesEveryField
// notices a field this misses).
func apiFlowRun(r store.FlowRun) api.FlowRun {
	return api.FlowRun{
		ID: r.ID, ProjectID: r.ProjectID, FlowID: r.FlowID, FlowVersionID: r.FlowVersionID, Name: r.Name,
		Params: r.Params, IdempotencyKey: r.IdempotencyKey, Labels: r.Labels, ScheduleID: r.ScheduleID,
		AgentID: r.AgentID, ScheduledAt: r.ScheduledAt, State: r.State, Version: r.Version, Attempt: r.Attempt,
		HeartbeatAt: r.HeartbeatAt, Recoveries: r.Recoveries, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

func apiFlowVersion(v store.FlowVersion) api.FlowVersion {
	return api.FlowVersion{
		ID: v.ID, FlowID: v.FlowID, Version: v.Version, SpecHash: v.SpecHash, Spec: v.Spec,
		Storage: apiStorage(v.Storage), Labels: v.Labels, RunConfig: apiRunConfig(v.RunConfig),
		Archived: v.Archived, CreatedAt: v.CreatedAt,
	}
}

func apiSecret(s store.Secret) api.Secret {
	return api.Secret{ProjectID: s.ProjectID, Name: s.Name, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

func apiToken(t store.Token) api.Token {
	return api.Token{ID: t.ID, Name: t.Name, Role: t.Role, FlowRunID: t.FlowRunID, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt}
}

func apiSchedule(sc store.Schedule) api.Schedule {
	return api.Schedule{
		ID: sc.ID, ProjectID: sc.ProjectID, FlowID: sc.FlowID, Cron: sc.Cron, Timezone: sc.Timezone,
		Interval: api.Duration(sc.Interval), Anchor: sc.Anchor, Params: sc.Params, Paused: sc.Paused,
		FromSpec: sc.FromSpec, CreatedAt: sc.CreatedAt, UpdatedAt: sc.UpdatedAt,
	}
}

// mapSlice converts every element of in.
func mapSlice[S, T any](in []S, f func(S) T) []T {
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}
