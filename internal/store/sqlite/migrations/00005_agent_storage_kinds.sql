-- The storage kinds an agent runs ("local", "docker"): ClaimFlowRun gives
-- an agent only runs whose flow version's storage kind is one of them, so
-- that a Docker agent never takes a local flow nor a process agent a
-- docker one. An empty array (agents registered before this migration, and
-- old agents that send none) means every kind. It mirrors the PostgreSQL
-- store's 00005.
--
-- As in 00001: JSON documents (here an array of strings, as labels are)
-- are TEXT.

-- +goose Up
ALTER TABLE agents ADD COLUMN storage_kinds TEXT NOT NULL DEFAULT '[]';
