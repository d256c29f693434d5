-- The server's own result store: small task results (checkpoints and
-- cache entries) kept by key in a project, so that server runs retry,
-- restart and resume with no blob store to set up. Keys are shared by the
-- runs of a project, as cache entries must be.
--
-- As in 00001: times are INTEGER microseconds since the Unix epoch (UTC).

-- +goose Up
CREATE TABLE results (
    project_id TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, key)
);
