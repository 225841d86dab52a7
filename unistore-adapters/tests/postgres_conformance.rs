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
