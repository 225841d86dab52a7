-- Unistore Bench results store, Snowflake.
--
-- Applied by the operator (or `apply_schema` in the Snowflake adapter) inside the results
-- database and schema, by default UNISTORE_BENCHMARK.TEST_RESULTS:
--
--   CREATE DATABASE IF NOT EXISTS UNISTORE_BENCHMARK;
--   CREATE SCHEMA IF NOT EXISTS UNISTORE_BENCHMARK.TEST_RESULTS;
--   USE SCHEMA UNISTORE_BENCHMARK.TEST_RESULTS;
--
-- The tool never runs DDL by itself. Every statement is idempotent. These are standard tables
-- (analytics over results, written in batches); their primary keys are informational, and the
-- sink replaces rows by key itself. The *_JSON columns hold the full serialized structs; the
-- scalar columns beside them exist for listing and for querying by hand.

CREATE TABLE IF NOT EXISTS TEST_TEMPLATES (
    TEMPLATE_ID   VARCHAR(64)      NOT NULL,
    NAME          VARCHAR          NOT NULL,
    TEMPLATE_JSON VARCHAR          NOT NULL,
    UPDATED_AT    TIMESTAMP_NTZ(9) NOT NULL,
    PRIMARY KEY (TEMPLATE_ID)
);

-- One row per run (WORKER_ID = '') and per worker child run. The row is written when the load
-- starts (STATUS RUNNING, the effective template, the target without secrets, the planned end)
-- and completed by the summary; STATUS, REASON and VERDICT are authoritative over the copies
-- inside SUMMARY_JSON.
CREATE TABLE IF NOT EXISTS TEST_RESULTS (
    RUN_ID              VARCHAR(36)      NOT NULL,
    WORKER_ID           VARCHAR(256)     NOT NULL DEFAULT '',
    TEMPLATE_NAME       VARCHAR          NOT NULL,
    TARGET_KIND         VARCHAR(32)      NOT NULL,
    TABLE_NAME          VARCHAR          NOT NULL,
    TABLE_TYPE          VARCHAR(32)      NOT NULL,
    MODE                VARCHAR(32)      NOT NULL,
    STATUS              VARCHAR(16)      NOT NULL,
    STARTED_AT          TIMESTAMP_NTZ(9) NOT NULL,
    DURATION_S          FLOAT            NOT NULL,
    OPS                 NUMBER(38, 0)    NOT NULL,
    ERRORS              NUMBER(38, 0)    NOT NULL,
    QPS                 FLOAT            NOT NULL,
    P50_MS              FLOAT            NOT NULL,
    P95_MS              FLOAT            NOT NULL,
    P99_MS              FLOAT            NOT NULL,
    SUMMARY_JSON        VARCHAR          NOT NULL,
    PRIMARY KEY (RUN_ID, WORKER_ID)
);

-- Added after the first release; rerunning this file adds them to an older store.
-- SERVER_STATS: the server's own figures (QUERY_HISTORY / AGGREGATE_QUERY_HISTORY by query tag),
-- the same document as the summary's server_stats; NULL where the account does not provide them.
ALTER TABLE TEST_RESULTS ADD COLUMN IF NOT EXISTS TEMPLATE_ID    VARCHAR;
ALTER TABLE TEST_RESULTS ADD COLUMN IF NOT EXISTS TEMPLATE_JSON  VARCHAR;
ALTER TABLE TEST_RESULTS ADD COLUMN IF NOT EXISTS TARGET         VARCHAR;
ALTER TABLE TEST_RESULTS ADD COLUMN IF NOT EXISTS PLANNED_END_AT TIMESTAMP_NTZ(9);
ALTER TABLE TEST_RESULTS ADD COLUMN IF NOT EXISTS ENDED_AT       TIMESTAMP_NTZ(9);
ALTER TABLE TEST_RESULTS ADD COLUMN IF NOT EXISTS REASON         VARCHAR;
ALTER TABLE TEST_RESULTS ADD COLUMN IF NOT EXISTS VERDICT        VARCHAR(32);
ALTER TABLE TEST_RESULTS ADD COLUMN IF NOT EXISTS SLO_PASSED     BOOLEAN;
ALTER TABLE TEST_RESULTS ADD COLUMN IF NOT EXISTS SLO_VIOLATIONS VARCHAR;
ALTER TABLE TEST_RESULTS ADD COLUMN IF NOT EXISTS TARGET_QPS     FLOAT;
ALTER TABLE TEST_RESULTS ADD COLUMN IF NOT EXISTS TARGET_REACHED BOOLEAN;
ALTER TABLE TEST_RESULTS ADD COLUMN IF NOT EXISTS SERVER_STATS   VARCHAR;
ALTER TABLE TEST_RESULTS ADD COLUMN IF NOT EXISTS TEMPLATE_VERSION NUMBER(10, 0);

-- Templates are versioned, never overwritten (added after the first release, like the columns
-- above). TEST_TEMPLATES holds the current version of each id (VERSION; UPDATED_AT = when that
-- version was stored); TEST_TEMPLATE_VERSIONS holds every version, the current one included;
-- TEST_RESULTS.TEMPLATE_VERSION is the version of the run's template (NULL when unknown). A save
-- whose content equals the current version changes nothing; any other content becomes version
-- current + 1. These standard tables enforce no key, so the store claims a version by a
-- compare-and-set UPDATE of the id's current row (UPDATEs on a table take turns) and only the
-- claimer writes it to TEST_TEMPLATE_VERSIONS. An id's first version has no row to compare: it
-- is inserted, read back, and withdrawn if another content was inserted beside it. Limit: a
-- saver killed between inserting a first version and reading it back can leave a second
-- version 1 of that id. Templates saved before versions existed become version 1 of their id.
ALTER TABLE TEST_TEMPLATES ADD COLUMN IF NOT EXISTS VERSION NUMBER(10, 0) DEFAULT 1;
UPDATE TEST_TEMPLATES SET VERSION = 1 WHERE VERSION IS NULL;
CREATE TABLE IF NOT EXISTS TEST_TEMPLATE_VERSIONS (
    TEMPLATE_ID   VARCHAR(64)      NOT NULL,
    VERSION       NUMBER(10, 0)    NOT NULL,
    NAME          VARCHAR          NOT NULL,
    TEMPLATE_JSON VARCHAR          NOT NULL,
    CREATED_AT    TIMESTAMP_NTZ(9) NOT NULL,
    PRIMARY KEY (TEMPLATE_ID, VERSION)
);
INSERT INTO TEST_TEMPLATE_VERSIONS (TEMPLATE_ID, VERSION, NAME, TEMPLATE_JSON, CREATED_AT)
    SELECT t.TEMPLATE_ID, t.VERSION, t.NAME, t.TEMPLATE_JSON, t.UPDATED_AT FROM TEST_TEMPLATES t
    WHERE NOT EXISTS (SELECT 1 FROM TEST_TEMPLATE_VERSIONS v
                      WHERE v.TEMPLATE_ID = t.TEMPLATE_ID AND v.VERSION = t.VERSION);

CREATE TABLE IF NOT EXISTS WORKER_METRICS_SNAPSHOTS (
    RUN_ID        VARCHAR(36)      NOT NULL,
    WORKER_ID     VARCHAR(256)     NOT NULL,
    SEQ           NUMBER(38, 0)    NOT NULL,
    TAKEN_AT      TIMESTAMP_NTZ(9) NOT NULL,
    ELAPSED_S     FLOAT            NOT NULL,
    PHASE         VARCHAR(16)      NOT NULL,
    OPS           NUMBER(38, 0)    NOT NULL,
    ERRORS        NUMBER(38, 0)    NOT NULL,
    QPS           FLOAT            NOT NULL,
    P50_MS        FLOAT            NOT NULL,
    P95_MS        FLOAT            NOT NULL,
    P99_MS        FLOAT            NOT NULL,
    SNAPSHOT_JSON VARCHAR          NOT NULL,
    PRIMARY KEY (RUN_ID, WORKER_ID, SEQ)
);

-- Sampled executions only (see the template's sample_rate), never every operation.
CREATE TABLE IF NOT EXISTS QUERY_EXECUTIONS (
    RUN_ID        VARCHAR(36)      NOT NULL,
    WORKER_ID     VARCHAR(256)     NOT NULL,
    CONNECTION_ID NUMBER(10, 0)    NOT NULL,
    KIND          VARCHAR(16)      NOT NULL,
    PHASE         VARCHAR(16)      NOT NULL,
    STARTED_AT    TIMESTAMP_NTZ(9) NOT NULL,
    RESPONSE_US   NUMBER(38, 0)    NOT NULL,
    SERVICE_US    NUMBER(38, 0)    NOT NULL,
    ROWS_READ     NUMBER(38, 0)    NOT NULL,
    OK            BOOLEAN          NOT NULL,
    ERROR_KIND    VARCHAR(32)
);
