-- The first schema of the PostgreSQL store. It mirrors the SQLite store's
-- (store/sqlite/migrations), so both behave the same.
--
-- Migrations are forward-only: a released file is never edited; a change is
-- a new file with the next number, and none has a Down section. Times are
-- timestamptz (microseconds). IDs are UUIDv7 strings. IDs, names and keys
-- sort and compare bytewise (COLLATE "C"), as in SQLite, whatever the
-- database's default collation. Documents handed back as given (specs, parameters, log
-- attributes) and states are json, kept as written; labels, storage and run
-- configuration, which queries will look into, are jsonb.

-- +goose Up
CREATE TABLE projects (
    id          text        COLLATE "C" PRIMARY KEY,
    name        text        COLLATE "C" NOT NULL UNIQUE,
    description text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL
);

CREATE TABLE flows (
    id             text        COLLATE "C" PRIMARY KEY,
    project_id     text        COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name           text        COLLATE "C" NOT NULL,
    latest_version integer     NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE flow_versions (
    id         text        COLLATE "C" PRIMARY KEY,
    flow_id    text        COLLATE "C" NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    version    integer     NOT NULL,
    spec_hash  text        NOT NULL,
    spec       json        NOT NULL,
    storage    jsonb       NOT NULL,
    labels     jsonb       NOT NULL DEFAULT '[]',
    run_config jsonb       NOT NULL DEFAULT '{}',
    archived   boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    UNIQUE (flow_id, version)
);

CREATE TABLE flow_runs (
    id              text        COLLATE "C" PRIMARY KEY,
    project_id      text        COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    flow_id         text        COLLATE "C" NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    flow_version_id text        COLLATE "C" NOT NULL REFERENCES flow_versions (id) ON DELETE CASCADE,
    name            text        NOT NULL DEFAULT '',
    params          json,
    idempotency_key text        COLLATE "C" NOT NULL DEFAULT '',
    labels          jsonb       NOT NULL DEFAULT '[]',
    scheduled_at    timestamptz NOT NULL,
    state           text        COLLATE "C" NOT NULL, -- the kind, e.g. 'Running', for filtering
    state_json      json        NOT NULL, -- the whole state.State
    version         bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

CREATE UNIQUE INDEX flow_runs_idempotency_key ON flow_runs (flow_id, idempotency_key)
    WHERE idempotency_key <> '';
CREATE INDEX flow_runs_created ON flow_runs (created_at, id);
CREATE INDEX flow_runs_project_created ON flow_runs (project_id, created_at, id);
CREATE INDEX flow_runs_flow_created ON flow_runs (flow_id, created_at, id);
CREATE INDEX flow_runs_state_scheduled ON flow_runs (state, scheduled_at);

-- A task run is updated a few times in its life (Pending, Running, Success):
-- the free half of each page lets those updates stay on the page (HOT), with
-- no new index entries, as no indexed column changes.
CREATE TABLE task_runs (
    id          text        COLLATE "C" PRIMARY KEY,
    flow_run_id text        COLLATE "C" NOT NULL REFERENCES flow_runs (id) ON DELETE CASCADE,
    key         text        COLLATE "C" NOT NULL,
    task        text        COLLATE "C" NOT NULL,
    map_index   bigint      NOT NULL DEFAULT 0,
    state       text        COLLATE "C" NOT NULL,
    state_json  json        NOT NULL,
    version     bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    UNIQUE (flow_run_id, key)
) WITH (fillfactor = 50);

-- The history of every flow run (task_run_id NULL) and task run: seq is the
-- run's state version that the state gave it.
--
-- It has no foreign keys, unlike SQLite's: it is the busiest table, written
-- only in the transactions that write its runs, and a per-row key check
-- costs a third of the batched task-state writes. Whatever deletes a flow
-- run must delete its states too.
CREATE TABLE states (
    id          bigserial   PRIMARY KEY,
    flow_run_id text        COLLATE "C" NOT NULL,
    task_run_id text        COLLATE "C",
    seq         bigint      NOT NULL,
    state       text        COLLATE "C" NOT NULL,
    state_json  json        NOT NULL,
    time        timestamptz NOT NULL
);

CREATE INDEX states_run_seq ON states (flow_run_id, task_run_id, seq);

-- A sequence never hands out an ID twice, so "after ID" paging is safe;
-- AppendLogs serialises the appends of each flow run so that a reader never
-- sees a line commit after a later one of the same run.
CREATE TABLE logs (
    id          bigserial   PRIMARY KEY,
    flow_run_id text        COLLATE "C" NOT NULL REFERENCES flow_runs (id) ON DELETE CASCADE,
    task_run_id text        COLLATE "C"          REFERENCES task_runs (id) ON DELETE CASCADE,
    time        timestamptz NOT NULL,
    level       text        COLLATE "C" NOT NULL,
    message     text        NOT NULL,
    attrs       json
);

CREATE INDEX logs_flow_run ON logs (flow_run_id, id);
CREATE INDEX logs_task_run ON logs (task_run_id, id);
