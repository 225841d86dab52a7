-- Unistore Bench results store, SQLite.
--
-- Applied by the tool itself when it opens its own results file (the file is the tool's store,
-- not a user's database). Every statement is idempotent. Timestamps are RFC 3339 UTC text with
-- nanoseconds (fixed width, so text order is time order). The *_JSON columns hold the full
-- serialized structs; the scalar columns beside them exist for listing and querying by hand.

-- Templates are versioned, never overwritten. TEST_TEMPLATES holds the current version of each
-- id (VERSION, and UPDATED_AT = when that version was stored); TEST_TEMPLATE_VERSIONS holds every
-- version, the current one included. A save whose content equals the current version changes
-- nothing; any other content becomes version current + 1, inside one write transaction, so
-- concurrent savers (other processes on the same file) never give two contents one version.
-- A store made before versions existed gets VERSION (= 1) and its versions table when opened.
CREATE TABLE IF NOT EXISTS TEST_TEMPLATES (
    TEMPLATE_ID   TEXT    NOT NULL PRIMARY KEY,
    NAME          TEXT    NOT NULL,
    TEMPLATE_JSON TEXT    NOT NULL,
    UPDATED_AT    TEXT    NOT NULL,
    VERSION       INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS TEST_TEMPLATE_VERSIONS (
    TEMPLATE_ID   TEXT    NOT NULL,
    VERSION       INTEGER NOT NULL,
    NAME          TEXT    NOT NULL,
    TEMPLATE_JSON TEXT    NOT NULL,
    CREATED_AT    TEXT    NOT NULL,
    PRIMARY KEY (TEMPLATE_ID, VERSION)
);

-- One row per run (WORKER_ID = '') and per worker child run. The row is written when the load
-- starts (STATUS RUNNING, the effective template with its TEMPLATE_ID and TEMPLATE_VERSION, the
-- target without secrets, the planned end) and completed by the summary; STATUS, REASON and VERDICT are authoritative over the copies
-- inside SUMMARY_JSON. Stores made by older versions get the newer columns added when opened.
CREATE TABLE IF NOT EXISTS TEST_RESULTS (
    RUN_ID        TEXT    NOT NULL,
    WORKER_ID     TEXT    NOT NULL DEFAULT '',
    TEMPLATE_NAME TEXT    NOT NULL,
    TARGET_KIND   TEXT    NOT NULL,
    TABLE_NAME    TEXT    NOT NULL,
    TABLE_TYPE    TEXT    NOT NULL,
    MODE          TEXT    NOT NULL,
    STATUS        TEXT    NOT NULL,
    STARTED_AT    TEXT    NOT NULL,
    DURATION_S    REAL    NOT NULL,
    OPS           INTEGER NOT NULL,
    ERRORS        INTEGER NOT NULL,
    QPS           REAL    NOT NULL,
    P50_MS        REAL    NOT NULL,
    P95_MS        REAL    NOT NULL,
    P99_MS        REAL    NOT NULL,
    SUMMARY_JSON  TEXT    NOT NULL,
    TEMPLATE_ID    TEXT,
    TEMPLATE_JSON  TEXT,
    TARGET         TEXT,
    PLANNED_END_AT TEXT,
    ENDED_AT       TEXT,
    REASON         TEXT,
    VERDICT        TEXT,
    SLO_PASSED     INTEGER,
    SLO_VIOLATIONS TEXT,
    TARGET_QPS     REAL,
    TARGET_REACHED INTEGER,
    SERVER_STATS   TEXT,
    TEMPLATE_VERSION INTEGER,
    PRIMARY KEY (RUN_ID, WORKER_ID)
);

CREATE INDEX IF NOT EXISTS TEST_RESULTS_STARTED_AT ON TEST_RESULTS (STARTED_AT);

CREATE TABLE IF NOT EXISTS WORKER_METRICS_SNAPSHOTS (
    RUN_ID        TEXT    NOT NULL,
    WORKER_ID     TEXT    NOT NULL,
    SEQ           INTEGER NOT NULL,
    TAKEN_AT      TEXT    NOT NULL,
    ELAPSED_S     REAL    NOT NULL,
    PHASE         TEXT    NOT NULL,
    OPS           INTEGER NOT NULL,
    ERRORS        INTEGER NOT NULL,
    QPS           REAL    NOT NULL,
    P50_MS        REAL    NOT NULL,
    P95_MS        REAL    NOT NULL,
    P99_MS        REAL    NOT NULL,
    SNAPSHOT_JSON TEXT    NOT NULL,
    PRIMARY KEY (RUN_ID, WORKER_ID, SEQ)
);

-- Sampled executions only (see the template's sample_rate), never every operation.
CREATE TABLE IF NOT EXISTS QUERY_EXECUTIONS (
    RUN_ID      TEXT    NOT NULL,
    WORKER_ID   TEXT    NOT NULL,
    CONNECTION  INTEGER NOT NULL,
    KIND        TEXT    NOT NULL,
    PHASE       TEXT    NOT NULL,
    STARTED_AT  TEXT    NOT NULL,
    RESPONSE_US INTEGER NOT NULL,
    SERVICE_US  INTEGER NOT NULL,
    ROWS        INTEGER NOT NULL,
    OK          INTEGER NOT NULL,
    ERROR_KIND  TEXT
);

CREATE INDEX IF NOT EXISTS QUERY_EXECUTIONS_RUN_ID ON QUERY_EXECUTIONS (RUN_ID);
