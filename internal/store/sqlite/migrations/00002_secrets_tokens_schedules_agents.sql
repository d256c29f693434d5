-- Secrets, API tokens, schedules and agents; flow runs learn which schedule
-- made them and which agent claimed them.
--
-- As in 00001: times are INTEGER microseconds since the Unix epoch (UTC),
-- NULL where a time may be absent; IDs are UUIDv7 strings; JSON is TEXT.

-- +goose Up

-- A secret's value is encrypted before it reaches the store (see
-- internal/secret): the store keeps opaque bytes.
CREATE TABLE secrets (
    project_id TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, name)
);

-- hash is the hex SHA-256 of a token's secret; the secret itself is never
-- stored. A run token (role 'run') belongs to a flow run and goes with it.
CREATE TABLE tokens (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL DEFAULT '',
    role        TEXT    NOT NULL,
    hash        TEXT    NOT NULL UNIQUE,
    flow_run_id TEXT             REFERENCES flow_runs (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);

CREATE INDEX tokens_flow_run ON tokens (flow_run_id);

-- A schedule has a cron expression (in timezone) or an interval in
-- microseconds from anchor, never both.
CREATE TABLE schedules (
    id          TEXT    PRIMARY KEY,
    project_id  TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    flow_id     TEXT    NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    cron        TEXT    NOT NULL DEFAULT '',
    timezone    TEXT    NOT NULL DEFAULT '',
    interval_us INTEGER NOT NULL DEFAULT 0,
    anchor      INTEGER,
    params      TEXT,
    paused      INTEGER NOT NULL DEFAULT 0,
    from_spec   INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE INDEX schedules_flow ON schedules (flow_id, created_at, id);
CREATE INDEX schedules_created ON schedules (created_at, id);

CREATE TABLE agents (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    labels       TEXT    NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);

-- '' when no schedule made the run, or no agent claimed it. They are not
-- foreign keys: a run outlives the schedule that made it and the agent
-- that ran it.
ALTER TABLE flow_runs ADD COLUMN schedule_id TEXT NOT NULL DEFAULT '';
ALTER TABLE flow_runs ADD COLUMN agent_id TEXT NOT NULL DEFAULT '';

-- ClaimFlowRun takes the due run that has waited longest: this index holds
-- only the runs waiting to be claimed, in the order they are claimed.
CREATE INDEX flow_runs_due ON flow_runs (scheduled_at, id) WHERE state = 'Scheduled';

-- Pausing or deleting a schedule deletes its runs that are still Scheduled.
CREATE INDEX flow_runs_schedule ON flow_runs (schedule_id, state) WHERE schedule_id <> '';
