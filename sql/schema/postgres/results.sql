-- Unistore Bench results tables for PostgreSQL.
--
-- Tables are unqualified: run this file with search_path set to the results schema
-- (default `unistore`; `?schema=` in the store URL names another). The setup command
-- (`unistore_adapters::postgres::apply_schema`) creates the schema and runs this file; by hand:
--   psql "$URL" -c 'CREATE SCHEMA IF NOT EXISTS unistore'
--   PGOPTIONS='-c search_path=unistore' psql "$URL" -f sql/schema/postgres/results.sql
-- Idempotent. Nothing here is ever run implicitly by the stores.

-- Templates, as JSON documents, by id.
CREATE TABLE IF NOT EXISTS test_templates (
    template_id   TEXT        NOT NULL PRIMARY KEY,
    name          TEXT        NOT NULL,
    template      JSONB       NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- One row per run (worker_id = '') and per worker child run. The columns repeat the headline
-- figures of the summary for SQL queries; `summary` is the complete RunSummary document.
CREATE TABLE IF NOT EXISTS test_results (
    run_id                  UUID             NOT NULL,
    worker_id               TEXT             NOT NULL DEFAULT '',
    template_name           TEXT             NOT NULL,
    target_kind             TEXT             NOT NULL,
    table_name              TEXT             NOT NULL,
    table_type              TEXT             NOT NULL,
    load_mode               TEXT             NOT NULL,
    status                  TEXT             NOT NULL,
    connections             INTEGER          NOT NULL,
    started_at              TIMESTAMPTZ      NOT NULL,
    measurement_started_at  TIMESTAMPTZ      NOT NULL,
    measurement_ended_at    TIMESTAMPTZ      NOT NULL,
    duration_s              DOUBLE PRECISION NOT NULL,
    ops                     BIGINT           NOT NULL,
    errors                  BIGINT           NOT NULL,
    qps                     DOUBLE PRECISION NOT NULL,
    p50_ms                  DOUBLE PRECISION NOT NULL,
    p95_ms                  DOUBLE PRECISION NOT NULL,
    p99_ms                  DOUBLE PRECISION NOT NULL,
    slo_passed              BOOLEAN          NOT NULL,
    summary                 JSONB            NOT NULL,
    server_stats            JSONB,
    written_at              TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, worker_id)
);
CREATE INDEX IF NOT EXISTS test_results_started_at ON test_results (started_at DESC);

-- Added after the first release (this file adds them to older stores: rerun it, or the setup
-- command). The row is written when the load starts (status RUNNING, the effective template,
-- the target without secrets, the planned end) and completed by the summary; status, reason
-- and verdict are authoritative over the copies inside `summary`.
ALTER TABLE test_results ADD COLUMN IF NOT EXISTS template_id    TEXT;
ALTER TABLE test_results ADD COLUMN IF NOT EXISTS template       JSONB;
ALTER TABLE test_results ADD COLUMN IF NOT EXISTS target         TEXT;
ALTER TABLE test_results ADD COLUMN IF NOT EXISTS planned_end_at TIMESTAMPTZ;
ALTER TABLE test_results ADD COLUMN IF NOT EXISTS ended_at       TIMESTAMPTZ;
ALTER TABLE test_results ADD COLUMN IF NOT EXISTS reason         TEXT;
ALTER TABLE test_results ADD COLUMN IF NOT EXISTS verdict        TEXT;
ALTER TABLE test_results ADD COLUMN IF NOT EXISTS slo_violations JSONB;
ALTER TABLE test_results ADD COLUMN IF NOT EXISTS target_qps     DOUBLE PRECISION;
ALTER TABLE test_results ADD COLUMN IF NOT EXISTS target_reached BOOLEAN;
CREATE INDEX IF NOT EXISTS test_results_running ON test_results (status) WHERE status = 'RUNNING';

-- Templates are versioned, never overwritten (added after the first release, like the columns
-- above). test_templates holds the current version of each id (`version`; `updated_at` = when
-- that version was stored); test_template_versions holds every version, the current one
-- included. A save whose content equals the current version changes nothing; any other content
-- becomes version current + 1 in one transaction that locks the id's current row, and the
-- primary key below refuses a second first version, so concurrent savers never give two
-- contents one version. Templates saved before versions existed become version 1 of their id.
-- test_results.template_version is the version of the run's template (NULL when unknown).
ALTER TABLE test_templates ADD COLUMN IF NOT EXISTS version INTEGER NOT NULL DEFAULT 1;
CREATE TABLE IF NOT EXISTS test_template_versions (
    template_id   TEXT        NOT NULL,
    version       INTEGER     NOT NULL,
    name          TEXT        NOT NULL,
    template      JSONB       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (template_id, version)
);
INSERT INTO test_template_versions (template_id, version, name, template, created_at)
    SELECT template_id, version, name, template, updated_at FROM test_templates
    ON CONFLICT (template_id, version) DO NOTHING;
ALTER TABLE test_results ADD COLUMN IF NOT EXISTS template_version INTEGER;

-- Interval snapshots of every worker (about one per second). `snapshot` is the complete
-- MetricSnapshot document, with serialized histograms for exact merging.
CREATE TABLE IF NOT EXISTS worker_metrics_snapshots (
    run_id              UUID             NOT NULL,
    worker_id           TEXT             NOT NULL,
    seq                 BIGINT           NOT NULL,
    taken_at            TIMESTAMPTZ      NOT NULL,
    elapsed_s           DOUBLE PRECISION NOT NULL,
    phase               TEXT             NOT NULL,
    active_connections  INTEGER          NOT NULL,
    ops                 BIGINT           NOT NULL,
    errors              BIGINT           NOT NULL,
    qps                 DOUBLE PRECISION NOT NULL,
    p95_ms              DOUBLE PRECISION NOT NULL,
    snapshot            JSONB            NOT NULL,
    PRIMARY KEY (run_id, worker_id, seq)
);

-- Sampled query executions (a fraction of all operations; see the template's sample_rate).
CREATE TABLE IF NOT EXISTS query_executions (
    execution_id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id         UUID        NOT NULL,
    worker_id      TEXT        NOT NULL,
    connection_no  INTEGER     NOT NULL,
    query_kind     TEXT        NOT NULL,
    phase          TEXT        NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    response_us    BIGINT      NOT NULL,
    service_us     BIGINT      NOT NULL,
    row_count      BIGINT      NOT NULL,
    ok             BOOLEAN     NOT NULL,
    error_kind     TEXT
);
CREATE INDEX IF NOT EXISTS query_executions_run ON query_executions (run_id, started_at);
