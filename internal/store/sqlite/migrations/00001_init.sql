-- The first schema of the embedded SQLite store.
--
-- Migrations are forward-only: a released file is never edited; a change is
-- a new file with the next number. Times are INTEGER microseconds since the
-- Unix epoch (UTC), the precision PostgreSQL keeps. IDs are UUIDv7 strings.
-- JSON documents (specs, labels, parameters, states) are TEXT.

-- +goose Up
CREATE TABLE projects (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    description TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

CREATE TABLE flows (
    id             TEXT    PRIMARY KEY,
    project_id     TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    latest_version INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE flow_versions (
    id         TEXT    PRIMARY KEY,
    flow_id    TEXT    NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    spec_hash  TEXT    NOT NULL,
    spec       TEXT    NOT NULL,
    storage    TEXT    NOT NULL,
    labels     TEXT    NOT NULL DEFAULT '[]',
    run_config TEXT    NOT NULL DEFAULT '{}',
    archived   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (flow_id, version)
);

CREATE TABLE flow_runs (
    id              TEXT    PRIMARY KEY,
    project_id      TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    flow_id         TEXT    NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    flow_version_id TEXT    NOT NULL REFERENCES flow_versions (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL DEFAULT '',
    params          TEXT,
    idempotency_key TEXT    NOT NULL DEFAULT '',
    labels          TEXT    NOT NULL DEFAULT '[]',
    scheduled_at    INTEGER NOT NULL,
    state           TEXT    NOT NULL, -- the kind, e.g. 'Running', for filtering
    state_json      TEXT    NOT NULL, -- the whole state.State
    version         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE UNIQUE INDEX flow_runs_idempotency_key ON flow_runs (flow_id, idempotency_key)
    WHERE idempotency_key <> '';
CREATE INDEX flow_runs_created ON flow_runs (created_at, id);
CREATE INDEX flow_runs_project_created ON flow_runs (project_id, created_at, id);
CREATE INDEX flow_runs_flow_created ON flow_runs (flow_id, created_at, id);
CREATE INDEX flow_runs_state_scheduled ON flow_runs (state, scheduled_at);

CREATE TABLE task_runs (
    id          TEXT    PRIMARY KEY,
    flow_run_id TEXT    NOT NULL REFERENCES flow_runs (id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    task        TEXT    NOT NULL,
    map_index   INTEGER NOT NULL DEFAULT 0,
    state       TEXT    NOT NULL,
    state_json  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (flow_run_id, key)
);

-- The history of every flow run (task_run_id NULL) and task run: seq is the
-- run's state version that the state gave it.
CREATE TABLE states (
    id          INTEGER PRIMARY KEY,
    flow_run_id TEXT    NOT NULL REFERENCES flow_runs (id) ON DELETE CASCADE,
    task_run_id TEXT             REFERENCES task_runs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    state       TEXT    NOT NULL,
    state_json  TEXT    NOT NULL,
    time        INTEGER NOT NULL
);

CREATE INDEX states_run_seq ON states (flow_run_id, task_run_id, seq);

-- AUTOINCREMENT: a log line's ID is never reused, so "after ID" paging is safe.
CREATE TABLE logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_run_id TEXT    NOT NULL REFERENCES flow_runs (id) ON DELETE CASCADE,
    task_run_id TEXT             REFERENCES task_runs (id) ON DELETE CASCADE,
    time        INTEGER NOT NULL,
    level       TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    attrs       TEXT
);

CREATE INDEX logs_flow_run ON logs (flow_run_id, id);
CREATE INDEX logs_task_run ON logs (task_run_id, id);
