-- The UI's runs list and dashboard: flow runs of some states, newest
-- first (ListFlowRuns with States), and counted by state in a time window
-- (CountFlowRunsMatching), read from this index alone. It mirrors the
-- PostgreSQL store's 00006.
--
-- Task counts per run (CountTaskRuns) use task_runs' (flow_run_id, key)
-- index: an index on their state would cost every task-state write.

-- +goose Up
CREATE INDEX flow_runs_state_created ON flow_runs (state, created_at, id);
