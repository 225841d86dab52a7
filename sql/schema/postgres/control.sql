-- Unistore Bench control tables for PostgreSQL.
--
-- Tables are unqualified: run this file with search_path set to the control schema (default
-- `unistore`; `?schema=` in the store URL names another), like results.sql. Idempotent.
--
-- Correctness comes from the database: RUN_STATUS rows are locked (SELECT ... FOR UPDATE)
-- while an event is appended or the status changes, and (run_id, seq) is a primary key, so
-- concurrent writers on any host never lose an update or reuse a sequence number.

CREATE TABLE IF NOT EXISTS run_status (
    run_id              UUID             NOT NULL PRIMARY KEY,
    template_name       TEXT             NOT NULL,
    status              TEXT             NOT NULL,
    phase               TEXT             NOT NULL,
    reason              TEXT,
    worker_count        INTEGER          NOT NULL,
    target_connections  INTEGER          NOT NULL,
    target_qps          DOUBLE PRECISION,
    last_event_seq      BIGINT           NOT NULL DEFAULT 0,
    created_at          TIMESTAMPTZ      NOT NULL,
    updated_at          TIMESTAMPTZ      NOT NULL
);

-- Append-only; `payload` is the ControlEventKind document (type plus its fields).
CREATE TABLE IF NOT EXISTS run_control_events (
    run_id      UUID        NOT NULL,
    seq         BIGINT      NOT NULL,
    scope       TEXT        NOT NULL,
    scope_id    TEXT,
    event_type  TEXT        NOT NULL,
    payload     JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Latest heartbeat per worker (replaced on every beat).
CREATE TABLE IF NOT EXISTS worker_heartbeats (
    run_id          UUID        NOT NULL,
    worker_id       TEXT        NOT NULL,
    status          TEXT        NOT NULL,
    phase           TEXT        NOT NULL,
    connections     INTEGER     NOT NULL,
    ops             BIGINT      NOT NULL,
    errors          BIGINT      NOT NULL,
    last_error      TEXT,
    last_event_seq  BIGINT      NOT NULL,
    beat_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, worker_id)
);
