-- The UI's runs list and dashboard: flow runs of some states, newest
-- first (ListFlowRuns with States), and counted by state in a time window
-- (CountFlowRunsMatching), read from this index alone. It mirrors the
-- SQLite store's 00006. (flow_runs_active, 00003, holds the runs with a
-- runner only; the monitor keeps using it.)
--
-- The migration runs in a transaction, so the index is not built
-- CONCURRENTLY: writes to flow_runs wait while it is built.
--
-- Task counts per run (CountTaskRuns) use task_runs' (flow_run_id, key)
-- index: an index on their state would end the HOT updates of task-state
-- writes (00001).

-- +goose Up
CREATE INDEX flow_runs_state_created ON flow_runs (state, created_at, id);
