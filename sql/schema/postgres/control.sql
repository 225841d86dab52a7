-- Unistore Bench control tables for PostgreSQL.
--
-- Tables are unqualified: run this file with search_path set to the control schema (default
-- `unistore`; `?schema=` in the store URL names another), like results.sql. `unistore-worker
-- setup --results URL` applies it. Idempotent, and it brings tables made by an older version up
-- to date (it only adds or renames what is missing).
--
-- The three backends' control tables have the same columns with the same meaning; the rules
-- (lifecycle, what an event does to the run, the next sequence number) live in unistore-core,
-- the backends only read and write rows. Correctness comes from the database: a run's row is
-- replaced by compare-and-set on `version` (UPDATE ... WHERE run_id = $1 AND version = $2) and
-- (run_id, seq) is the events' primary key, so concurrent writers on any host never lose an
-- update or reuse a sequence number.

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
    updated_at          TIMESTAMPTZ      NOT NULL,
    template_json       TEXT,
    results_url         TEXT,
    load_start_at       TIMESTAMPTZ,
    controller_beat_at  TIMESTAMPTZ,
    version             BIGINT           NOT NULL DEFAULT 0
);
-- Added after the first version: the effective template as JSON text (kept as written, so it
-- reads back byte for byte), the results store's URL (without secrets), the shared start instant
-- set by START, the controller's last sign of life, and the compare-and-set version.
ALTER TABLE run_status ADD COLUMN IF NOT EXISTS template_json      TEXT;
ALTER TABLE run_status ADD COLUMN IF NOT EXISTS results_url        TEXT;
ALTER TABLE run_status ADD COLUMN IF NOT EXISTS load_start_at      TIMESTAMPTZ;
ALTER TABLE run_status ADD COLUMN IF NOT EXISTS controller_beat_at TIMESTAMPTZ;
ALTER TABLE run_status ADD COLUMN IF NOT EXISTS version            BIGINT NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS run_status_created ON run_status (created_at DESC);

-- Append-only. scope is RUN, WORKER_GROUP or WORKER; scope_id the group or worker (NULL for
-- RUN); event_json the ControlEventKind document (type plus its fields).
CREATE TABLE IF NOT EXISTS run_control_events (
    run_id      UUID        NOT NULL,
    seq         BIGINT      NOT NULL,
    scope       TEXT        NOT NULL,
    scope_id    TEXT,
    event_type  TEXT        NOT NULL,
    event_json  JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Latest heartbeat per worker (replaced on every beat). state is the worker's own state
-- (CONNECTING, READY, RUNNING, STOPPING, FINISHED, FAILED, LOST).
CREATE TABLE IF NOT EXISTS worker_heartbeats (
    run_id          UUID        NOT NULL,
    worker_id       TEXT        NOT NULL,
    state           TEXT        NOT NULL,
    phase           TEXT        NOT NULL,
    connections     INTEGER     NOT NULL,
    ops             BIGINT      NOT NULL,
    errors          BIGINT      NOT NULL,
    last_error      TEXT,
    last_event_seq  BIGINT      NOT NULL,
    beat_at         TIMESTAMPTZ NOT NULL,
    host            TEXT        NOT NULL DEFAULT '',
    pid             BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, worker_id)
);

-- Older versions named the event document `payload` and kept the run's status in the
-- heartbeat (`status`); both are renamed, and such a status becomes the nearest worker state.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
               AND table_name = 'run_control_events' AND column_name = 'payload') THEN
        ALTER TABLE run_control_events RENAME COLUMN payload TO event_json;
    END IF;
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
               AND table_name = 'worker_heartbeats' AND column_name = 'status') THEN
        ALTER TABLE worker_heartbeats RENAME COLUMN status TO state;
        UPDATE worker_heartbeats SET state = CASE state
            WHEN 'PREPARED' THEN 'CONNECTING'
            WHEN 'RUNNING' THEN 'RUNNING'
            WHEN 'STOPPING' THEN 'STOPPING'
            WHEN 'CANCELLING' THEN 'STOPPING'
            WHEN 'FAILED' THEN 'FAILED'
            ELSE 'FINISHED' END;
    END IF;
END
$$;
ALTER TABLE worker_heartbeats ADD COLUMN IF NOT EXISTS host TEXT   NOT NULL DEFAULT '';
ALTER TABLE worker_heartbeats ADD COLUMN IF NOT EXISTS pid  BIGINT NOT NULL DEFAULT 0;
