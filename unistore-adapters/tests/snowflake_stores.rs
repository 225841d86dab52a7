//! The Snowflake results store and hybrid-table control store against the emulator: the core
//! conformance suites, and server-side figures degrading to notes where the views are missing.

#![cfg(feature = "snowflake")]

mod control_processes;
mod snowflake_support;

use chrono::Utc;
use snowflake_support::{fresh_schema, url_with_schema};
use unistore_adapters::snowflake::{
    apply_schema, execute_statements, history, query_text, SnowflakeResultsStore,
};
use unistore_adapters::{open_control, open_results};
use unistore_core::testkit;
use unistore_core::{QueryKind, ResultsReader, ResultsSink, RunId, StoredTemplate, Template};

async fn store_schema(tag: &str) -> String {
    let url = url_with_schema(&fresh_schema(tag));
    apply_schema(&url).await.unwrap_or_else(|e| panic!("applying the schema failed: {e}"));
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_store_passes_the_conformance_suite() {
    let url = store_schema("results").await;
    let store = open_results(&url).await.expect("opening the results store");
    testkit::check_results_store(store.sink, store.reader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_control_store_passes_the_conformance_suite() {
    let url = store_schema("control").await;
    let hybrid = query_text(&url, "SHOW HYBRID TABLES").await.expect("listing hybrid tables");
    assert_eq!(hybrid.len(), 3, "the control tables are hybrid tables: {hybrid:?}");
    let store = open_control(&url).await.expect("opening the control store");
    let started = std::time::Instant::now();
    testkit::check_control_store(store).await;
    eprintln!("control store suite: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_history_degrades_to_notes_on_the_emulator() {
    let url = store_schema("history").await;
    let run = RunId::new();
    let collected = history::collect(&url, run, Utc::now() - chrono::Duration::minutes(5)).await;
    assert!(collected.is_empty(), "the emulator has no query history: {collected:?}");
    assert_eq!(collected.notes.len(), 2, "one note per missing source: {:?}", collected.notes);
    assert!(collected.notes.iter().any(|n| n.contains("QUERY_HISTORY")), "{:?}", collected.notes);
    assert!(collected.notes.iter().any(|n| n.contains("AGGREGATE_QUERY_HISTORY")), "{:?}", collected.notes);

    // The one path into the store: the summary's server_stats, also in its own column.
    let store = SnowflakeResultsStore::open(&url).expect("results store");
    let mut summary = testkit::sample_summary(run);
    summary.server_stats = Some(serde_json::to_value(&collected).expect("server history as JSON"));
    store.write_summary(&summary).await.expect("writing the summary");
    let read = store.summary(run, None).await.expect("reading").expect("summary stored");
    assert_eq!(read.server_stats, summary.server_stats, "server_stats did not round-trip");
    let column = query_text(&url, &format!("SELECT SERVER_STATS FROM TEST_RESULTS WHERE RUN_ID = '{run}'"))
        .await
        .expect("reading the column");
    let stored: history::ServerHistory =
        serde_json::from_str(column[0][0].as_deref().expect("SERVER_STATS is set")).expect("valid JSON");
    assert_eq!(stored, collected, "the SERVER_STATS column holds the same document");
}

/// A store made before templates were versioned: applying the schema file again adds what is
/// missing, and its templates become version 1 of their ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_the_schema_again_versions_an_older_stores_templates() {
    let url = store_schema("oldtemplates").await;
    let mut old = Template::new("ORDERS", std::collections::BTreeMap::from([(QueryKind::PointLookup, 100)]));
    old.name = "bench-orders".into();
    let json = serde_json::to_string(&old).expect("a template as JSON").replace('\'', "''");
    execute_statements(
        &url,
        &[
            "DROP TABLE TEST_TEMPLATE_VERSIONS".to_string(),
            "ALTER TABLE TEST_TEMPLATES DROP COLUMN VERSION".to_string(),
            "ALTER TABLE TEST_RESULTS DROP COLUMN TEMPLATE_VERSION".to_string(),
            format!(
                "INSERT INTO TEST_TEMPLATES (TEMPLATE_ID, NAME, TEMPLATE_JSON, UPDATED_AT) \
                 VALUES ('bench-orders', 'bench-orders', '{json}', '2025-03-01 10:00:00')"
            ),
        ],
    )
    .await
    .unwrap_or_else(|e| panic!("making an older store failed: {e}"));
    apply_schema(&url).await.unwrap_or_else(|e| panic!("applying the schema to an older store failed: {e}"));
    apply_schema(&url).await.unwrap_or_else(|e| panic!("applying the schema a third time failed: {e}"));
    let store = open_results(&url).await.expect("opening the results store");
    let expected = StoredTemplate {
        template_id: "bench-orders".into(),
        template: old.clone(),
        version: 1,
        updated_at: "2025-03-01T10:00:00Z".parse().expect("a time"),
    };
    assert_eq!(store.reader.template("bench-orders").await.expect("reading"), Some(expected.clone()));
    assert_eq!(
        store.reader.template_versions("bench-orders").await.expect("reading"),
        vec![expected],
        "the older template is version 1, once, however often the file is applied"
    );
    let mut changed = old.clone();
    changed.allow_writes = true;
    let next = StoredTemplate {
        template_id: "bench-orders".into(),
        template: changed,
        version: 0,
        updated_at: Utc::now(),
    };
    assert_eq!(store.sink.save_template_version(&next).await.expect("saving"), Some(2));
    let versions = store.reader.template_versions("bench-orders").await.expect("reading");
    assert_eq!(
        versions.iter().map(|t| (t.version, &t.template)).collect::<Vec<_>>(),
        vec![(1, &old), (2, &next.template)]
    );
}

/// Three processes append to one run through the emulator: only the hybrid tables' compare-and-
/// set and primary key keep the sequence numbers unique (no process shares a lock with another).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_appending_to_one_run_get_every_sequence_number_once() {
    if control_processes::run_as_child().await {
        return;
    }
    let url = store_schema("processes").await;
    control_processes::check_processes_share_one_sequence(
        &url,
        "three_processes_appending_to_one_run_get_every_sequence_number_once",
    )
    .await;
}

/// A control store without its tables fails to open, naming the DDL file and the setup
/// command; hybrid tables of the first version are brought up to date by applying the file again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_control_schema_is_refused_then_migrated_by_setup() {
    let schema = fresh_schema("oldcontrol");
    let url = url_with_schema(&schema);
    execute_statements(&url, &[format!("CREATE SCHEMA IF NOT EXISTS UNISTORE_TEST.{schema}")])
        .await
        .expect("creating the schema");
    let e = open_control(&url).await.expect_err("no tables");
    assert_eq!(e.kind(), unistore_core::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("sql/schema/snowflake/control.sql"), "{e}");
    assert!(e.to_string().contains("unistore-worker setup --results URL"), "{e}");

    let run = RunId::new();
    let mut statements = vec![format!("USE SCHEMA UNISTORE_TEST.{schema}")];
    statements.extend(unistore_adapters::snowflake::sql_statements(FIRST_CONTROL_SCHEMA));
    statements.push(format!(
        "INSERT INTO RUN_STATUS VALUES ('{run}', 'old', 'RUNNING', 'WARMUP', NULL, 2, 8, NULL, 1, \
         '2025-03-01 10:00:00', '2025-03-01 10:00:01')"
    ));
    statements.push(format!(
        "INSERT INTO RUN_CONTROL_EVENTS VALUES ('{run}', 1, 'RUN', NULL, 'STOP', '{{\"type\":\"STOP\"}}', \
         '2025-03-01 10:00:01')"
    ));
    statements.push(format!(
        "INSERT INTO WORKER_HEARTBEATS VALUES ('{run}', 'w', 'RUNNING', 'WARMUP', 1, 2, 0, NULL, 1, \
         '2025-03-01 10:00:01')"
    ));
    execute_statements(&url, &statements)
        .await
        .unwrap_or_else(|e| panic!("making an older store failed: {e}"));
    let e = open_control(&url).await.expect_err("old columns");
    assert!(e.to_string().contains("unistore-worker setup --results URL"), "{e}");
    apply_schema(&url).await.unwrap_or_else(|e| panic!("applying the schema to an older store failed: {e}"));
    apply_schema(&url).await.unwrap_or_else(|e| panic!("applying the schema again failed: {e}"));
    let store = open_control(&url).await.expect("opening the migrated store");
    let read = store.run(run).await.expect("reading").expect("the old run is kept");
    assert_eq!((read.template_name.as_str(), read.last_event_seq, read.version), ("old", 1, 0));
    let events = store.events_since(run, 0).await.expect("the old event reads back");
    assert_eq!(events.len(), 1);
    let beats = store.heartbeats(run).await.expect("the old heartbeat reads back");
    assert_eq!(beats[0].state, unistore_core::model::WorkerState::Lost, "an old beat reads as LOST");
    let e = store
        .append_event(
            run,
            unistore_core::model::EventScope::Run,
            unistore_core::model::ControlEventKind::Stop { reason: None },
        )
        .await
        .expect("appending to the old run");
    assert_eq!(e.seq, 2);
    testkit::check_control_store(store).await;
}

/// The control tables as the first version created them.
const FIRST_CONTROL_SCHEMA: &str = "
CREATE HYBRID TABLE IF NOT EXISTS RUN_STATUS (
    RUN_ID VARCHAR(36) NOT NULL PRIMARY KEY, TEMPLATE_NAME VARCHAR(1024) NOT NULL,
    STATUS VARCHAR(16) NOT NULL, PHASE VARCHAR(16) NOT NULL, REASON VARCHAR(4096),
    WORKER_COUNT NUMBER(10, 0) NOT NULL, TARGET_CONNECTIONS NUMBER(10, 0) NOT NULL, TARGET_QPS FLOAT,
    LAST_EVENT_SEQ NUMBER(20, 0) NOT NULL, CREATED_AT TIMESTAMP_NTZ(9) NOT NULL,
    UPDATED_AT TIMESTAMP_NTZ(9) NOT NULL);
CREATE HYBRID TABLE IF NOT EXISTS RUN_CONTROL_EVENTS (
    RUN_ID VARCHAR(36) NOT NULL, SEQ NUMBER(20, 0) NOT NULL, SCOPE VARCHAR(16) NOT NULL,
    SCOPE_ID VARCHAR(256), EVENT_TYPE VARCHAR(32) NOT NULL, EVENT_JSON VARCHAR(16384) NOT NULL,
    CREATED_AT TIMESTAMP_NTZ(9) NOT NULL, PRIMARY KEY (RUN_ID, SEQ));
CREATE HYBRID TABLE IF NOT EXISTS WORKER_HEARTBEATS (
    RUN_ID VARCHAR(36) NOT NULL, WORKER_ID VARCHAR(256) NOT NULL, STATUS VARCHAR(16) NOT NULL,
    PHASE VARCHAR(16) NOT NULL, CONNECTIONS NUMBER(10, 0) NOT NULL, OPS NUMBER(38, 0) NOT NULL,
    ERRORS NUMBER(38, 0) NOT NULL, LAST_ERROR VARCHAR(4096), LAST_EVENT_SEQ NUMBER(20, 0) NOT NULL,
    BEAT_AT TIMESTAMP_NTZ(9) NOT NULL, PRIMARY KEY (RUN_ID, WORKER_ID));
";

/// A first version that its saver has inserted but not yet checked (it may still withdraw it,
/// having found a rival first version) is not moved on by a saver of another content: that saver
/// waits, and once the tentative row is withdrawn it gets version 1 itself. Moving the tentative
/// row on lost version 1 from the history (a concurrent-saves run once got versions 2..7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tentative_first_version_is_not_moved_on_by_another_saver() {
    let url = store_schema("tentative").await;
    let store = open_results(&url).await.expect("opening the results store");
    let mut rival =
        Template::new("ORDERS", std::collections::BTreeMap::from([(QueryKind::PointLookup, 100)]));
    rival.name = "tentative".into();
    let json = serde_json::to_string(&rival).expect("a template as JSON").replace('\'', "''");
    // What a first saver leaves between its insert and its check.
    execute_statements(
        &url,
        &[format!(
            "INSERT INTO TEST_TEMPLATES (TEMPLATE_ID, NAME, TEMPLATE_JSON, UPDATED_AT, VERSION) \
             VALUES ('tentative', 'tentative', '{json}', '2025-03-01 10:00:00', 1)"
        )],
    )
    .await
    .unwrap_or_else(|e| panic!("inserting a tentative first version failed: {e}"));
    let mut mine = rival.clone();
    mine.allow_writes = true;
    let stored = StoredTemplate {
        template_id: "tentative".into(),
        template: mine.clone(),
        version: 0,
        updated_at: Utc::now(),
    };
    let sink = store.sink.clone();
    let saving = tokio::spawn(async move { sink.save_template_version(&stored).await });
    // The first saver withdraws its row (it saw a rival), as `claim_first` does.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    execute_statements(
        &url,
        &["DELETE FROM TEST_TEMPLATES WHERE TEMPLATE_ID = 'tentative' AND VERSION = 1".to_string()],
    )
    .await
    .unwrap_or_else(|e| panic!("withdrawing the tentative row failed: {e}"));
    let version = saving.await.expect("the saving task").expect("saving");
    assert_eq!(version, Some(1), "the saver waited for the tentative first version and then got version 1");
    let versions = store.reader.template_versions("tentative").await.expect("reading");
    assert_eq!(versions.iter().map(|t| (t.version, &t.template)).collect::<Vec<_>>(), vec![(1, &mine)]);
}
