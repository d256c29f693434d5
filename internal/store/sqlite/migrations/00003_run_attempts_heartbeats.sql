-- Run attempts, runner heartbeats and the lost-run path: a flow run counts
-- its claims (attempt; run tokens are fenced by it), keeps its current
-- attempt's last runner heartbeat, and counts the times RecoverFlowRun
-- re-queued it. It mirrors the PostgreSQL store's 00003.
--
-- As in 00001: times are INTEGER microseconds since the Unix epoch (UTC),
-- NULL where a time may be absent.

-- +goose Up
ALTER TABLE flow_runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE flow_runs ADD COLUMN heartbeat_at INTEGER;
ALTER TABLE flow_runs ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0;

-- The attempt of its flow run a run token was minted for.
ALTER TABLE tokens ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;

-- The server's monitor lists the runs that have a runner (Submitted,
-- Running, Cancelling) every few seconds. flow_runs_state_scheduled
-- (00001) finds them by state already; SQLite would not use a partial
-- index on those states for ListFlowRuns' "state IN (?, ?, ?)" (bound
-- values do not prove a partial index's condition), unlike PostgreSQL, so
-- this store adds none.

-- Listing the runs an agent claimed (FlowRunFilter.AgentID).
CREATE INDEX flow_runs_agent ON flow_runs (agent_id, created_at, id) WHERE agent_id <> '';
