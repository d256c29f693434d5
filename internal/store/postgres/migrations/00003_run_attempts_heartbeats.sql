-- Run attempts, runner heartbeats and the lost-run path: a flow run counts
-- its claims (attempt; run tokens are fenced by it), keeps its current
-- attempt's last runner heartbeat, and counts the times RecoverFlowRun
-- re-queued it. It mirrors the SQLite store's 00003.
--
-- As in 00001: times are timestamptz, NULL where a time may be absent.
-- Adding a column with a constant default, or none, rewrites nothing.

-- +goose Up
ALTER TABLE flow_runs ADD COLUMN attempt integer NOT NULL DEFAULT 0;
ALTER TABLE flow_runs ADD COLUMN heartbeat_at timestamptz;
ALTER TABLE flow_runs ADD COLUMN recoveries integer NOT NULL DEFAULT 0;

-- The attempt of its flow run a run token was minted for.
ALTER TABLE tokens ADD COLUMN attempt integer NOT NULL DEFAULT 0;

-- A running run's heartbeat updates its row every few seconds. No index
-- covers heartbeat_at, so the update can stay on the row's page (HOT) when
-- the page has room: leave room on the pages written from now on.
ALTER TABLE flow_runs SET (fillfactor = 80);

-- The server's monitor lists the runs that have a runner (Submitted,
-- Running, Cancelling) every few seconds: this index holds only those, so
-- finding them does not grow with the finished runs of the past.
CREATE INDEX flow_runs_active ON flow_runs (state, created_at, id)
    WHERE state IN ('Submitted', 'Running', 'Cancelling');

-- Listing the runs an agent claimed (FlowRunFilter.AgentID).
CREATE INDEX flow_runs_agent ON flow_runs (agent_id, created_at, id) WHERE agent_id <> '';
