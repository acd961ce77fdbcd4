-- Gantry's schema: agents, versioned workflows, plans, runs, nodes, attempts.

CREATE TABLE agents (
    name        text PRIMARY KEY,
    spec        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE workflows (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    version     integer NOT NULL CHECK (version > 0),
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (name, version)
);

CREATE TABLE plans (
    hash  text PRIMARY KEY,
    plan  jsonb NOT NULL
);

CREATE TABLE runs (
    id                uuid PRIMARY KEY,
    workflow_id       bigint NOT NULL REFERENCES workflows (id),
    workflow_name     text NOT NULL,
    workflow_version  integer NOT NULL,
    plan_hash         text NOT NULL REFERENCES plans (hash),
    input             jsonb NOT NULL,
    status            text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    remaining         integer NOT NULL CHECK (remaining >= 0),
    failed            integer NOT NULL DEFAULT 0 CHECK (failed >= 0),
    idempotency_key   text UNIQUE,
    request_hash      text,
    traceparent       text,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at       timestamptz
);

-- Listing newest first, optionally filtered by workflow and/or status.
CREATE INDEX runs_created_idx ON runs (created_at DESC, id DESC);
CREATE INDEX runs_workflow_created_idx ON runs (workflow_name, created_at DESC, id DESC);
CREATE INDEX runs_status_created_idx ON runs (status, created_at DESC, id DESC);
CREATE INDEX runs_workflow_status_created_idx ON runs (workflow_name, status, created_at DESC, id DESC);

CREATE TABLE nodes (
    run_id            uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx               integer NOT NULL CHECK (idx >= 0),
    node_id           text NOT NULL,
    agent             text NOT NULL,
    queue             text NOT NULL,
    status            text NOT NULL CHECK (status IN ('pending', 'waiting_approval', 'queued', 'running',
                                                      'retrying', 'succeeded', 'failed', 'skipped', 'cancelled')),
    attempt           integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    tries             integer NOT NULL DEFAULT 0 CHECK (tries >= 0),
    waiting_on        integer NOT NULL DEFAULT 0 CHECK (waiting_on >= 0),
    pending_advance   boolean NOT NULL DEFAULT false,
    output            jsonb,
    error             text,
    queued_at         timestamptz,
    started_at        timestamptz,
    finished_at       timestamptz,
    retry_at          timestamptz,
    lease_owner       text,
    lease_expires_at  timestamptz,
    PRIMARY KEY (run_id, idx),
    UNIQUE (run_id, node_id)
);

CREATE INDEX nodes_pending_advance_idx ON nodes (run_id) WHERE pending_advance;
CREATE INDEX nodes_lease_idx ON nodes (lease_expires_at) WHERE status = 'running';
CREATE INDEX nodes_queued_idx ON nodes (queued_at) WHERE status = 'queued';
CREATE INDEX nodes_retry_idx ON nodes (retry_at) WHERE status = 'retrying';

CREATE TABLE attempts (
    run_id       uuid NOT NULL,
    idx          integer NOT NULL,
    attempt      integer NOT NULL CHECK (attempt > 0),
    worker       text NOT NULL,
    status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    retryable    boolean NOT NULL DEFAULT false,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    exit_code    integer,
    error        text,
    output       jsonb,
    log_tail     text,
    PRIMARY KEY (run_id, idx, attempt),
    FOREIGN KEY (run_id, idx) REFERENCES nodes (run_id, idx) ON DELETE CASCADE
);
