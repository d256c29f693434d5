-- The server's own result store: small task results (checkpoints and
-- cache entries) kept by key in a project, so that server runs retry,
-- restart and resume with no blob store to set up. Keys are shared by the
-- runs of a project, as cache entries must be. It mirrors the SQLite
-- store's 00004.
--
-- As in 00001: times are timestamptz; IDs and keys are COLLATE "C".

-- +goose Up
CREATE TABLE results (
    project_id text        COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key        text        COLLATE "C" NOT NULL,
    value      bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (project_id, key)
);
