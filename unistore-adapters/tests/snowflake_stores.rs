//! The Snowflake results store and hybrid-table control store against the emulator: the core
//! conformance suites, and server-side figures degrading to notes where the views are missing.

#![cfg(feature = "snowflake")]

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
