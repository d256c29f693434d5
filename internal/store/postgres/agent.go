package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

const agentCols = `id, name, labels, storage_kinds, created_at, last_seen_at`

func scanAgent(row pgx.Row) (store.Agent, error) {
	var a store.Agent
	if err := row.Scan(&a.ID, &a.Name, &a.Labels, &a.StorageKinds, &a.CreatedAt, &a.LastSeenAt); err != nil {
		return store.Agent{}, err
	}
	if a.Labels == nil {
		a.Labels = []string{} // as SQLite gives them: a JSON [] decodes to an empty slice
	}
	if a.StorageKinds == nil {
		a.StorageKinds = []string{}
	}
	a.CreatedAt, a.LastSeenAt = a.CreatedAt.UTC(), a.LastSeenAt.UTC()
	return a, nil
}

// RegisterAgent records an agent by name; see store.Store.
func (s *Store) RegisterAgent(ctx context.Context, name string, labels, storageKinds []string) (store.Agent, error) {
	js, kinds, err := store.CheckAgent(name, labels, storageKinds)
	if err != nil {
		return store.Agent{}, fmt.Errorf("register agent: %w", err)
	}
	id, err := newID()
	if err != nil {
		return store.Agent{}, fmt.Errorf("register agent %q: %w", name, err)
	}
	a, err := scanAgent(s.pool.QueryRow(ctx,
		`INSERT INTO agents (`+agentCols+`) VALUES ($1, $2, $3, $4, $5, $5)
		 ON CONFLICT (name) DO UPDATE SET labels = excluded.labels, storage_kinds = excluded.storage_kinds,
			last_seen_at = excluded.last_seen_at
		 RETURNING `+agentCols,
		id, name, js, kinds, s.clock()))
	if err != nil {
		return store.Agent{}, fmt.Errorf("register agent %q: %w", name, dbErr(err))
	}
	return a, nil
}

// HeartbeatAgent sets an agent's LastSeenAt to now, or returns ErrNotFound.
func (s *Store) HeartbeatAgent(ctx context.Context, id string) (store.Agent, error) {
	a, err := scanAgent(s.pool.QueryRow(ctx,
		`UPDATE agents SET last_seen_at = $1 WHERE id = $2 RETURNING `+agentCols, s.clock(), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Agent{}, fmt.Errorf("heartbeat agent: %w", notFound("agent", id))
	}
	if err != nil {
		return store.Agent{}, fmt.Errorf("heartbeat agent %q: %w", id, dbErr(err))
	}
	return a, nil
}

// ListAgents returns every agent, by name.
func (s *Store) ListAgents(ctx context.Context) ([]store.Agent, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+agentCols+` FROM agents ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", dbErr(err))
	}
	out, err := collect(rows, scanAgent)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", dbErr(err))
	}
	return out, nil
}

// claimSQL moves the due run that has waited longest among those whose
// labels the agent's ($2, a jsonb array) contain and whose flow version's
// storage kind is one of the agent's kinds ($8, a jsonb array; [] takes
// every kind) to Submitted, and records
// the state in the history, in one statement. FOR UPDATE SKIP LOCKED makes
// concurrent claimers, on any replica, pass over the run another one is
// taking instead of waiting for it; a run another claimer took since the
// statement began fails the state test when it is locked, and the next one
// is tried. The partial index flow_runs_due gives the order; it applies
// because the state is written out rather than bound. The kind is looked
// up per candidate by the version's primary key (a scalar subquery: an
// EXISTS under the OR was planned as a hashed subplan that scanned every
// version on each claim); FOR UPDATE locks only the flow_runs row, not the
// version it reads.
const claimSQL = `WITH next AS (
		SELECT id FROM flow_runs
		WHERE state = 'Scheduled' AND scheduled_at <= $1 AND $2::jsonb @> labels
		  AND (jsonb_array_length($8::jsonb) = 0 OR $8::jsonb @> jsonb_build_array(
			(SELECT v.storage->'kind' FROM flow_versions AS v WHERE v.id = flow_runs.flow_version_id)))
		ORDER BY scheduled_at, id
		LIMIT 1
		FOR UPDATE SKIP LOCKED
	), run AS (
		UPDATE flow_runs SET state = $3, state_json = $4, version = version + 1, agent_id = $5, updated_at = $6,
			attempt = attempt + 1, heartbeat_at = NULL
		WHERE id = (SELECT id FROM next)
		RETURNING ` + flowRunCols + `
	), history AS (
		INSERT INTO states (flow_run_id, task_run_id, seq, state, state_json, time)
		SELECT id, NULL, version, $3, $4, $7 FROM run
	)
	SELECT * FROM run`

// ClaimFlowRun moves the due flow run that has waited longest, of those
// the agent's labels cover and of a storage kind it runs, to Submitted for
// the agent; see store.Store.
func (s *Store) ClaimFlowRun(ctx context.Context, agentID string, now time.Time) (store.FlowRun, error) {
	if now.IsZero() {
		now = s.now()
	}
	var name, labels, kinds string
	err := s.pool.QueryRow(ctx, `SELECT name, labels::text, storage_kinds::text FROM agents WHERE id = $1`, agentID).Scan(&name, &labels, &kinds)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.FlowRun{}, fmt.Errorf("claim a flow run: %w", notFound("agent", agentID))
	}
	if err != nil {
		return store.FlowRun{}, fmt.Errorf("claim a flow run for agent %q: %w", agentID, dbErr(err))
	}
	ts := s.clock()
	st, stJSON, err := store.ClaimState(name, func() time.Time { return ts })
	if err != nil {
		return store.FlowRun{}, fmt.Errorf("claim a flow run for agent %q: %w", name, err)
	}
	out, err := scanFlowRun(s.pool.QueryRow(ctx, claimSQL,
		now, labels, st.Kind.String(), stJSON, agentID, ts, st.Time, kinds))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.FlowRun{}, fmt.Errorf("claim a flow run: %w",
			reeve.Errorf(reeve.CodeNotFound, "no flow run is due for agent %q (labels %s, storage kinds %s)", name, labels, kinds))
	}
	if err != nil {
		return store.FlowRun{}, fmt.Errorf("claim a flow run for agent %q: %w", name, dbErr(err))
	}
	return out, nil
}
