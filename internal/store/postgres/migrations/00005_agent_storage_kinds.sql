-- The storage kinds an agent runs ("local", "docker"): ClaimFlowRun gives
-- an agent only runs whose flow version's storage kind is one of them, so
-- that a Docker agent never takes a local flow nor a process agent a
-- docker one. An empty array (agents registered before this migration, and
-- old agents that send none) means every kind. It mirrors the SQLite
-- store's 00005.
--
-- As labels are (00002), the kinds are a jsonb array, so that the claim
-- tests "the agent runs the version's storage kind" with jsonb containment
-- (@>). Adding a column with a constant default rewrites nothing.

-- +goose Up
ALTER TABLE agents ADD COLUMN storage_kinds jsonb NOT NULL DEFAULT '[]';
