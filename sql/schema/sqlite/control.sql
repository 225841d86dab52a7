-- Unistore Bench control store, SQLite.
--
-- Applied by the tool itself when it opens its own control file (by default the same file as
-- the results). Every statement is idempotent. The three backends' control tables have the same
-- columns with the same meaning; the rules (lifecycle, what an event does to the run, the next
-- sequence number) live in unistore-core, the backends only read and write rows. Correctness
-- comes from the database: RUN_STATUS is replaced by compare-and-set on VERSION (`UPDATE ...
-- WHERE RUN_ID = ? AND VERSION = ?`, one statement, atomic under SQLite's write lock) and
-- (RUN_ID, SEQ) is the events' primary key, so processes sharing the file never lose an update
-- or reuse a sequence number. Timestamps are RFC 3339 UTC text with nanoseconds.
--
-- A file made by an older version is brought up to date when the store opens (SQLite has no
-- `ADD COLUMN IF NOT EXISTS`): RUN_STATUS gets the columns it lacks; an old-shaped
-- RUN_CONTROL_EVENTS (SCOPE_JSON) or WORKER_HEARTBEATS (STATUS) is recreated empty, since
-- nothing used those tables at run time before.

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
    UPDATED_AT         TEXT    NOT NULL,
    -- The effective template as JSON: what every worker runs.
    TEMPLATE_JSON      TEXT,
    -- The results store the workers write to (a URL without secrets).
    RESULTS_URL        TEXT,
    -- The shared instant the load starts on every worker (set by START).
    LOAD_START_AT      TEXT,
    -- When the controller last said it was alive.
    CONTROLLER_BEAT_AT TEXT,
    -- Bumped by every write; the compare-and-set checks it.
    VERSION            INTEGER NOT NULL DEFAULT 0
);

-- Append-only. SCOPE is RUN, WORKER_GROUP or WORKER; SCOPE_ID the group or worker (NULL for
-- RUN). EVENT_JSON is the ControlEventKind document (type plus its fields).
CREATE TABLE IF NOT EXISTS RUN_CONTROL_EVENTS (
    RUN_ID     TEXT    NOT NULL,
    SEQ        INTEGER NOT NULL,
    SCOPE      TEXT    NOT NULL,
    SCOPE_ID   TEXT,
    EVENT_TYPE TEXT    NOT NULL,
    EVENT_JSON TEXT    NOT NULL,
    CREATED_AT TEXT    NOT NULL,
    PRIMARY KEY (RUN_ID, SEQ)
);

-- Latest heartbeat per worker (replaced on every beat).
CREATE TABLE IF NOT EXISTS WORKER_HEARTBEATS (
    RUN_ID         TEXT    NOT NULL,
    WORKER_ID      TEXT    NOT NULL,
    STATE          TEXT    NOT NULL,
    PHASE          TEXT    NOT NULL,
    CONNECTIONS    INTEGER NOT NULL,
    OPS            INTEGER NOT NULL,
    ERRORS         INTEGER NOT NULL,
    LAST_ERROR     TEXT,
    LAST_EVENT_SEQ INTEGER NOT NULL,
    BEAT_AT        TEXT    NOT NULL,
    HOST           TEXT    NOT NULL DEFAULT '',
    PID            INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (RUN_ID, WORKER_ID)
);
