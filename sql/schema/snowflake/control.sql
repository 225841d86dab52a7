-- Unistore Bench control store, Snowflake: HYBRID TABLES.
--
-- Hybrid tables need Snowflake Enterprise Edition (or higher) in a region that offers them
-- (AWS commercial regions; not trial accounts). They give the control plane what it relies on:
-- enforced primary keys, row-level locking and single-row reads/writes in milliseconds.
--
-- Applied by the operator (`unistore-worker setup --results URL`, or `apply_schema` in the
-- Snowflake adapter) inside the results database and schema, by default
-- UNISTORE_BENCHMARK.TEST_RESULTS. The tool never runs DDL by itself. Every statement is
-- idempotent, and applying the file again brings tables made by an older version up to date.
--
-- The three backends' control tables have the same columns with the same meaning; the rules
-- (lifecycle, what an event does to the run, the next sequence number) live in unistore-core,
-- the backends only read and write rows. A run's row is replaced by compare-and-set on VERSION
-- (UPDATE ... WHERE RUN_ID = ? AND VERSION = ?, checked by its affected-row count) and
-- (RUN_ID, SEQ) is the events' enforced primary key, so controllers and workers on other hosts
-- never lose an update or reuse a sequence number.

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
    UPDATED_AT         TIMESTAMP_NTZ(9) NOT NULL,
    TEMPLATE_JSON      VARCHAR,
    RESULTS_URL        VARCHAR(4096),
    LOAD_START_AT      TIMESTAMP_NTZ(9),
    CONTROLLER_BEAT_AT TIMESTAMP_NTZ(9),
    VERSION            NUMBER(20, 0)    NOT NULL DEFAULT 0
);
-- Added after the first version: the effective template as JSON, the results store's URL
-- (without secrets), the shared start instant set by START, the controller's last sign of life,
-- and the compare-and-set version (older rows start at 0).
ALTER TABLE RUN_STATUS ADD COLUMN IF NOT EXISTS TEMPLATE_JSON      VARCHAR;
ALTER TABLE RUN_STATUS ADD COLUMN IF NOT EXISTS RESULTS_URL        VARCHAR(4096);
ALTER TABLE RUN_STATUS ADD COLUMN IF NOT EXISTS LOAD_START_AT      TIMESTAMP_NTZ(9);
ALTER TABLE RUN_STATUS ADD COLUMN IF NOT EXISTS CONTROLLER_BEAT_AT TIMESTAMP_NTZ(9);
ALTER TABLE RUN_STATUS ADD COLUMN IF NOT EXISTS VERSION            NUMBER(20, 0) DEFAULT 0;
UPDATE RUN_STATUS SET VERSION = 0 WHERE VERSION IS NULL;

-- Append-only control messages, one sequence per run. SCOPE is RUN, WORKER_GROUP or WORKER;
-- SCOPE_ID the group or worker (NULL for RUN); EVENT_JSON the ControlEventKind document.
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

-- One row per worker, replaced by every heartbeat. STATE is the worker's own state
-- (CONNECTING, READY, RUNNING, STOPPING, FINISHED, FAILED, LOST).
CREATE HYBRID TABLE IF NOT EXISTS WORKER_HEARTBEATS (
    RUN_ID         VARCHAR(36)      NOT NULL,
    WORKER_ID      VARCHAR(256)     NOT NULL,
    STATE          VARCHAR(16)      NOT NULL,
    PHASE          VARCHAR(16)      NOT NULL,
    CONNECTIONS    NUMBER(10, 0)    NOT NULL,
    OPS            NUMBER(38, 0)    NOT NULL,
    ERRORS         NUMBER(38, 0)    NOT NULL,
    LAST_ERROR     VARCHAR(4096),
    LAST_EVENT_SEQ NUMBER(20, 0)    NOT NULL,
    BEAT_AT        TIMESTAMP_NTZ(9) NOT NULL,
    HOST           VARCHAR(256),
    PID            NUMBER(10, 0),
    PRIMARY KEY (RUN_ID, WORKER_ID)
);
-- Older versions kept the run's STATUS in the heartbeat instead of the worker's STATE: the old
-- column goes (such beats belong to runs from before the control plane drove them) and their
-- rows read as LOST.
ALTER TABLE WORKER_HEARTBEATS ADD COLUMN IF NOT EXISTS STATE VARCHAR(16);
ALTER TABLE WORKER_HEARTBEATS ADD COLUMN IF NOT EXISTS HOST  VARCHAR(256);
ALTER TABLE WORKER_HEARTBEATS ADD COLUMN IF NOT EXISTS PID   NUMBER(10, 0);
ALTER TABLE WORKER_HEARTBEATS DROP COLUMN IF EXISTS STATUS;
UPDATE WORKER_HEARTBEATS SET STATE = 'LOST' WHERE STATE IS NULL;
