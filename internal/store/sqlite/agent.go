package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/reevehq/reeve"
	"github.com/reevehq/reeve/internal/store"
)

const agentCols = `id, name, labels, storage_kinds, created_at, last_seen_at`

func scanAgent(sc interface{ Scan(...any) error }) (store.Agent, error) {
	var (
		a             store.Agent
		labels, kinds string
		created, seen int64
	)
	if err := sc.Scan(&a.ID, &a.Name, &labels, &kinds, &created, &seen); err != nil {
		return store.Agent{}, err
	}
	if err := json.Unmarshal([]byte(labels), &a.Labels); err != nil {
		return store.Agent{}, fmt.Errorf("agent %s: labels: %w", a.ID, err)
	}
	if a.Labels == nil {
		a.Labels = []string{}
	}
	if err := json.Unmarshal([]byte(kinds), &a.StorageKinds); err != nil {
		return store.Agent{}, fmt.Errorf("agent %s: storage kinds: %w", a.ID, err)
	}
	if a.StorageKinds == nil {
		a.StorageKinds = []string{}
	}
	a.CreatedAt, a.LastSeenAt = fromMicros(created), fromMicros(seen)
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
	now := micros(s.clock())
	a, err := scanAgent(s.write.QueryRowContext(ctx,
		`INSERT INTO agents (`+agentCols+`) VALUES (?, ?, ?, ?, ?, ?)
		 ON CONFLICT (name) DO UPDATE SET labels = excluded.labels, storage_kinds = excluded.storage_kinds,
			last_seen_at = excluded.last_seen_at
		 RETURNING `+agentCols,
		id, name, js, kinds, now, now))
	if err != nil {
		return store.Agent{}, fmt.Errorf("register agent %q: %w", name, dbErr(err))
	}
	return a, nil
}

// HeartbeatAgent sets an agent's LastSeenAt to now, or returns ErrNotFound.
func (s *Store) HeartbeatAgent(ctx context.Context, id string) (store.Agent, error) {
	a, err := scanAgent(s.write.QueryRowContext(ctx,
		`UPDATE agents SET last_seen_at = ? WHERE id = ? RETURNING `+agentCols, micros(s.clock()), id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Agent{}, fmt.Errorf("heartbeat agent: %w", notFound("agent", id))
	}
	if err != nil {
		return store.Agent{}, fmt.Errorf("heartbeat agent %q: %w", id, dbErr(err))
	}
	return a, nil
}

// ListAgents returns every agent, by name.
func (s *Store) ListAgents(ctx context.Context) ([]store.Agent, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+agentCols+` FROM agents ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", dbErr(err))
	}
	out, err := collect(rows, scanAgent)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", dbErr(err))
	}
	return out, nil
}

// claimSQL picks the due run that has waited longest among those whose
// labels the agent's labels (a JSON array, ?2) cover, no label of the run
// missing from the agent's, and whose flow version's storage kind is one
// of the agent's kinds (a JSON array, ?3; [] takes every kind). The
// partial index flow_runs_due gives the order, so the first run that suits
// ends the scan; the kind is looked up per candidate, by the version's
// primary key. Without statistics SQLite would rather take
// flow_runs_state_scheduled and sort every due run, hence INDEXED BY.
const claimSQL = `SELECT id FROM flow_runs AS r INDEXED BY flow_runs_due
	WHERE r.state = 'Scheduled' AND r.scheduled_at <= ?1
	  AND NOT EXISTS (
		SELECT 1 FROM json_each(r.labels) AS l
		WHERE l.value NOT IN (SELECT a.value FROM json_each(?2) AS a))
	  AND (json_array_length(?3) = 0 OR
		(SELECT json_extract(v.storage, '$.kind') FROM flow_versions AS v WHERE v.id = r.flow_version_id)
			IN (SELECT k.value FROM json_each(?3) AS k))
	ORDER BY r.scheduled_at, r.id
	LIMIT 1`

// ClaimFlowRun moves the due flow run that has waited longest, of those
// the agent's labels cover and of a storage kind it runs, to Submitted for
// the agent; see store.Store. The write transaction (BEGIN IMMEDIATE) makes the pick and the move one
// step, also for other processes on the database file.
func (s *Store) ClaimFlowRun(ctx context.Context, agentID string, now time.Time) (store.FlowRun, error) {
	if now.IsZero() {
		now = s.now()
	}
	due := micros(now)
	var out store.FlowRun
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var name, labels, kinds string
		err := tx.QueryRowContext(ctx, `SELECT name, labels, storage_kinds FROM agents WHERE id = ?`, agentID).Scan(&name, &labels, &kinds)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("agent", agentID)
		}
		if err != nil {
			return dbErr(err)
		}
		var id string
		err = tx.QueryRowContext(ctx, claimSQL, due, labels, kinds).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return reeve.Errorf(reeve.CodeNotFound, "no flow run is due for agent %q (labels %s, storage kinds %s)", name, labels, kinds)
		}
		if err != nil {
			return dbErr(err)
		}
		ts := s.clock()
		st, stJSON, err := store.ClaimState(name, func() time.Time { return ts })
		if err != nil {
			return err
		}
		out, err = scanFlowRun(tx.QueryRowContext(ctx,
			`UPDATE flow_runs SET state = ?, state_json = ?, version = version + 1, agent_id = ?, updated_at = ?,
				attempt = attempt + 1, heartbeat_at = NULL
			 WHERE id = ? RETURNING `+flowRunCols,
			st.Kind.String(), stJSON, agentID, micros(ts), id))
		if err != nil {
			return dbErr(err)
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO states (flow_run_id, task_run_id, seq, state, state_json, time) VALUES (?, NULL, ?, ?, ?, ?)`,
			id, out.Version, st.Kind.String(), stJSON, micros(st.Time))
		return dbErr(err)
	})
	if err != nil {
		return store.FlowRun{}, fmt.Errorf("claim a flow run for agent %q: %w", agentID, err)
	}
	return out, nil
}
