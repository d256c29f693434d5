-- Secrets, API tokens, schedules and agents; flow runs learn which schedule
-- made them and which agent claimed them. It mirrors the SQLite store's
-- 00002.
--
-- As in 00001: times are timestamptz, NULL where a time may be absent; IDs
-- are UUIDv7 strings; IDs, names and keys are COLLATE "C". Labels are jsonb
-- arrays, so that ClaimFlowRun tests "the run's labels are a subset of the
-- agent's" with jsonb containment (@>).

-- +goose Up

-- A secret's value is encrypted before it reaches the store (see
-- internal/secret): the store keeps opaque bytes.
CREATE TABLE secrets (
    project_id text        COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name       text        COLLATE "C" NOT NULL,
    value      bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (project_id, name)
);

-- hash is the hex SHA-256 of a token's secret; the secret itself is never
-- stored. A run token (role 'run') belongs to a flow run and goes with it.
CREATE TABLE tokens (
    id          text        COLLATE "C" PRIMARY KEY,
    name        text        NOT NULL DEFAULT '',
    role        text        COLLATE "C" NOT NULL,
    hash        text        COLLATE "C" NOT NULL UNIQUE,
    flow_run_id text        COLLATE "C" REFERENCES flow_runs (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    revoked_at  timestamptz
);

CREATE INDEX tokens_flow_run ON tokens (flow_run_id);

-- A schedule has a cron expression (in timezone) or an interval in
-- microseconds from anchor, never both.
CREATE TABLE schedules (
    id          text        COLLATE "C" PRIMARY KEY,
    project_id  text        COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    flow_id     text        COLLATE "C" NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    cron        text        NOT NULL DEFAULT '',
    timezone    text        NOT NULL DEFAULT '',
    interval_us bigint      NOT NULL DEFAULT 0,
    anchor      timestamptz,
    params      json,
    paused      boolean     NOT NULL DEFAULT false,
    from_spec   boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE INDEX schedules_flow ON schedules (flow_id, created_at, id);
CREATE INDEX schedules_created ON schedules (created_at, id);

CREATE TABLE agents (
    id           text        COLLATE "C" PRIMARY KEY,
    name         text        COLLATE "C" NOT NULL UNIQUE,
    labels       jsonb       NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);

-- '' when no schedule made the run, or no agent claimed it. They are not
-- foreign keys: a run outlives the schedule that made it and the agent
-- that ran it. Adding a column with a constant default rewrites nothing.
ALTER TABLE flow_runs ADD COLUMN schedule_id text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE flow_runs ADD COLUMN agent_id text COLLATE "C" NOT NULL DEFAULT '';

-- ClaimFlowRun takes the due run that has waited longest: this index holds
-- only the runs waiting to be claimed, in the order they are claimed.
CREATE INDEX flow_runs_due ON flow_runs (scheduled_at, id) WHERE state = 'Scheduled';

-- Pausing or deleting a schedule deletes its runs that are still Scheduled.
CREATE INDEX flow_runs_schedule ON flow_runs (schedule_id, state) WHERE schedule_id <> '';
