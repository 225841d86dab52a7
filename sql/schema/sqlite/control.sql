-- Unistore Bench control store, SQLite.
--
-- Applied by the tool itself when it opens its own control file (by default the same file as
-- the results). Every statement is idempotent. Correctness comes from the database: status
-- transitions and event appends run in BEGIN IMMEDIATE transactions, so processes sharing the
-- file never lose an update or reuse a sequence number. Timestamps are RFC 3339 UTC text with
-- nanoseconds.

CREATE TABLE IF NOT EXISTS RUN_STATUS (
    RUN_ID             TEXT    NOT NULL PRIMARY KEY,
    TEMPLATE_NAME      TEXT    NOT NULL,
    STATUS             TEXT    NOT NULL,
    PHASE              TEXT    NOT NULL,
    REASON             TEXT,
    WORKER_COUNT       INTEGER NOT NULL,
    TARGET_CONNECTIONS INTEGER NOT NULL,
    TARGET_QPS         REAL,
    LAST_EVENT_SEQ     INTEGER NOT NULL DEFAULT 0,
    CREATED_AT         TEXT    NOT NULL,
    UPDATED_AT         TEXT    NOT NULL
);

CREATE TABLE IF NOT EXISTS RUN_CONTROL_EVENTS (
    RUN_ID     TEXT    NOT NULL,
    SEQ        INTEGER NOT NULL,
    SCOPE_JSON TEXT    NOT NULL,
    EVENT_JSON TEXT    NOT NULL,
    EVENT_TYPE TEXT    NOT NULL,
    CREATED_AT TEXT    NOT NULL,
    PRIMARY KEY (RUN_ID, SEQ)
);

CREATE TABLE IF NOT EXISTS WORKER_HEARTBEATS (
    RUN_ID         TEXT    NOT NULL,
    WORKER_ID      TEXT    NOT NULL,
    STATUS         TEXT    NOT NULL,
    PHASE          TEXT    NOT NULL,
    CONNECTIONS    INTEGER NOT NULL,
    OPS            INTEGER NOT NULL,
    ERRORS         INTEGER NOT NULL,
    LAST_ERROR     TEXT,
    LAST_EVENT_SEQ INTEGER NOT NULL,
    BEAT_AT        TEXT    NOT NULL,
    PRIMARY KEY (RUN_ID, WORKER_ID)
);
