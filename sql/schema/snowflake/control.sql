-- Unistore Bench control store, Snowflake: HYBRID TABLES.
--
-- Hybrid tables need Snowflake Enterprise Edition (or higher) in a region that offers them
-- (AWS commercial regions; not trial accounts). They give the control plane what it relies on:
-- enforced primary keys, row-level locking and single-row reads/writes in milliseconds.
--
-- Applied by the operator (or `apply_schema` in the Snowflake adapter) inside the results
-- database and schema, by default UNISTORE_BENCHMARK.TEST_RESULTS. The tool never runs DDL
-- by itself. Every statement is idempotent.

-- The authoritative state of a run. LAST_EVENT_SEQ is advanced by compare-and-set, which
-- hands out each control event's sequence number exactly once.
CREATE HYBRID TABLE IF NOT EXISTS RUN_STATUS (
    RUN_ID             VARCHAR(36)      NOT NULL PRIMARY KEY,
    TEMPLATE_NAME      VARCHAR(1024)    NOT NULL,
    STATUS             VARCHAR(16)      NOT NULL,
    PHASE              VARCHAR(16)      NOT NULL,
    REASON             VARCHAR(4096),
    WORKER_COUNT       NUMBER(10, 0)    NOT NULL,
    TARGET_CONNECTIONS NUMBER(10, 0)    NOT NULL,
    TARGET_QPS         FLOAT,
    LAST_EVENT_SEQ     NUMBER(20, 0)    NOT NULL,
    CREATED_AT         TIMESTAMP_NTZ(9) NOT NULL,
    UPDATED_AT         TIMESTAMP_NTZ(9) NOT NULL
);

-- Append-only control messages, one sequence per run.
CREATE HYBRID TABLE IF NOT EXISTS RUN_CONTROL_EVENTS (
    RUN_ID     VARCHAR(36)      NOT NULL,
    SEQ        NUMBER(20, 0)    NOT NULL,
    SCOPE      VARCHAR(16)      NOT NULL,
    SCOPE_ID   VARCHAR(256),
    EVENT_TYPE VARCHAR(32)      NOT NULL,
    EVENT_JSON VARCHAR(16384)   NOT NULL,
    CREATED_AT TIMESTAMP_NTZ(9) NOT NULL,
    PRIMARY KEY (RUN_ID, SEQ)
);

-- One row per worker, replaced by every heartbeat.
CREATE HYBRID TABLE IF NOT EXISTS WORKER_HEARTBEATS (
    RUN_ID         VARCHAR(36)      NOT NULL,
    WORKER_ID      VARCHAR(256)     NOT NULL,
    STATUS         VARCHAR(16)      NOT NULL,
    PHASE          VARCHAR(16)      NOT NULL,
    CONNECTIONS    NUMBER(10, 0)    NOT NULL,
    OPS            NUMBER(38, 0)    NOT NULL,
    ERRORS         NUMBER(38, 0)    NOT NULL,
    LAST_ERROR     VARCHAR(4096),
    LAST_EVENT_SEQ NUMBER(20, 0)    NOT NULL,
    BEAT_AT        TIMESTAMP_NTZ(9) NOT NULL,
    PRIMARY KEY (RUN_ID, WORKER_ID)
);
