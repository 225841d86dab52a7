//! The core conformance suites against a real PostgreSQL (`UNISTORE_TEST_PG_URL`).
#![cfg(feature = "postgres")]

mod postgres_support;

use std::sync::Arc;
use std::time::Duration;

use postgres_support::{pg_url, TestSchema};
use unistore_adapters::postgres::{self, PostgresConfig, PostgresTableManager, PostgresTargetPool};
use unistore_core::testkit::{self, FIXTURE_NOPK_TABLE, FIXTURE_TABLE};
use unistore_core::{RunId, TargetPool};

async fn target(schema: &TestSchema) -> (Arc<dyn TargetPool>, PostgresTableManager) {
    let config = PostgresConfig::parse(&schema.url).expect("valid URL");
    let manager = PostgresTableManager::connect(&config, None).await.expect("connecting the table manager");
    (Arc::new(PostgresTargetPool::new(config, RunId::new())), manager)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_manager_passes_the_conformance_suite() {
    let schema = TestSchema::create(&pg_url()).await;
    schema.load_fixture().await;
    let (_, manager) = target(&schema).await;
    let missing = schema.table("unistore_no_such_table");
    testkit::check_table_manager(
        &manager,
        &schema.table(FIXTURE_TABLE),
        &schema.table(FIXTURE_NOPK_TABLE),
        &missing,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_pool_passes_the_conformance_suite() {
    let schema = TestSchema::create(&pg_url()).await;
    schema.load_fixture().await;
    let (pool, manager) = target(&schema).await;
    testkit::check_target_pool(pool, &manager, &schema.table(FIXTURE_TABLE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_counts_are_exact_through_the_postgres_pool() {
    let schema = TestSchema::create(&pg_url()).await;
    schema.load_fixture().await;
    let (pool, manager) = target(&schema).await;
    let report = testkit::check_engine_counts(
        pool,
        &manager,
        &schema.table(FIXTURE_TABLE),
        Duration::from_millis(1500),
    )
    .await;
    assert!(report.completed_ops > 100, "suspiciously few operations: {}", report.completed_ops);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_store_passes_the_conformance_suite() {
    let schema = TestSchema::create(&pg_url()).await;
    postgres::apply_schema(&schema.store_url()).await.expect("applying the schema");
    // Applying twice is harmless.
    postgres::apply_schema(&schema.store_url()).await.expect("applying the schema again");
    let store =
        unistore_adapters::open_results(&schema.store_url()).await.expect("opening the results store");
    testkit::check_results_store(store.sink, store.reader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_store_passes_the_conformance_suite() {
    let schema = TestSchema::create(&pg_url()).await;
    postgres::apply_schema(&schema.store_url()).await.expect("applying the schema");
    let store =
        unistore_adapters::open_control(&schema.store_url()).await.expect("opening the control store");
    testkit::check_control_store(store).await;
}

/// One place for the server's figures: the summary's `server_stats` also fills the
/// `test_results.server_stats` column (it stayed NULL while the figures sat in `summary`), and the
/// verdict has columns of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stats_and_the_verdict_have_their_own_columns() {
    let schema = TestSchema::create(&pg_url()).await;
    postgres::apply_schema(&schema.store_url()).await.expect("applying the schema");
    let store =
        unistore_adapters::open_results(&schema.store_url()).await.expect("opening the results store");
    let run = RunId::new();
    let summary = testkit::sample_summary(run);
    store.sink.write_summary(&summary).await.expect("writing the summary");
    let client = postgres_support::connect(&schema.url).await;
    let row = client
        .query_one(
            &format!(
                "SELECT server_stats::text, verdict, slo_passed, slo_violations::text, target_reached \
                 FROM {}.test_results WHERE run_id = $1",
                schema.name
            ),
            &[&run.0],
        )
        .await
        .expect("reading the row");
    let stats: Option<String> = row.get(0);
    let stats: serde_json::Value = serde_json::from_str(&stats.expect("server_stats is set")).expect("JSON");
    assert_eq!(Some(stats), summary.server_stats);
    assert_eq!(row.get::<_, String>(1), summary.verdict().as_str());
    assert_eq!(row.get::<_, bool>(2), summary.slo.passed);
    let violations: Vec<String> =
        serde_json::from_str(&row.get::<_, String>(3)).expect("violations as a JSON array");
    assert_eq!(violations, summary.slo.violations);
    assert_eq!(row.get::<_, Option<bool>>(4), summary.target_reached);
}
