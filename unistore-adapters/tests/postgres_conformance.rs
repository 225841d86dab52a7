//! The core conformance suites against a real PostgreSQL (`UNISTORE_TEST_PG_URL`).
#![cfg(feature = "postgres")]

mod control_processes;
mod postgres_support;

use std::sync::Arc;
use std::time::Duration;

use postgres_support::{pg_url, TestSchema};
use unistore_adapters::postgres::{self, PostgresConfig, PostgresTableManager, PostgresTargetPool};
use unistore_core::testkit::{self, FIXTURE_NOPK_TABLE, FIXTURE_TABLE};
use unistore_core::{RunId, TargetPool};

async fn target(schema: &TestSchema) -> (Arc<dyn TargetPool>, PostgresTableManager) {
    let config = PostgresConfig::from_url(&schema.url).expect("valid URL");
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

/// Three processes (three connection pools, as on three hosts) append to one run: the row's
/// compare-and-set and the events' primary key keep the sequence numbers unique and gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_appending_to_one_run_get_every_sequence_number_once() {
    if control_processes::run_as_child().await {
        return;
    }
    let schema = TestSchema::create(&pg_url()).await;
    postgres::apply_schema(&schema.store_url()).await.expect("applying the schema");
    control_processes::check_processes_share_one_sequence(
        &schema.store_url(),
        "three_processes_appending_to_one_run_get_every_sequence_number_once",
    )
    .await;
}

/// A control store without its tables fails to open, naming the DDL file and the setup
/// command; tables of the first version are brought up to date by applying the file again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_control_schema_is_refused_then_migrated_by_setup() {
    let schema = TestSchema::create(&pg_url()).await;
    let e = unistore_adapters::open_control(&schema.store_url()).await.expect_err("no tables");
    assert_eq!(e.kind(), unistore_core::ErrorKind::NotFound, "{e}");
    let message = e.to_string();
    assert!(message.contains("sql/schema/postgres/control.sql"), "{message}");
    assert!(message.contains("unistore-worker setup --results URL"), "{message}");

    let run = RunId::new();
    let s = &schema.name;
    postgres_support::connect(&schema.url)
        .await
        .batch_execute(&format!(
            "CREATE TABLE {s}.run_status (run_id UUID NOT NULL PRIMARY KEY, template_name TEXT NOT NULL, \
             status TEXT NOT NULL, phase TEXT NOT NULL, reason TEXT, worker_count INTEGER NOT NULL, \
             target_connections INTEGER NOT NULL, target_qps DOUBLE PRECISION, \
             last_event_seq BIGINT NOT NULL DEFAULT 0, created_at TIMESTAMPTZ NOT NULL, \
             updated_at TIMESTAMPTZ NOT NULL);
             CREATE TABLE {s}.run_control_events (run_id UUID NOT NULL, seq BIGINT NOT NULL, scope TEXT NOT NULL, \
             scope_id TEXT, event_type TEXT NOT NULL, payload JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL, \
             PRIMARY KEY (run_id, seq));
             CREATE TABLE {s}.worker_heartbeats (run_id UUID NOT NULL, worker_id TEXT NOT NULL, \
             status TEXT NOT NULL, phase TEXT NOT NULL, connections INTEGER NOT NULL, ops BIGINT NOT NULL, \
             errors BIGINT NOT NULL, last_error TEXT, last_event_seq BIGINT NOT NULL, \
             beat_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (run_id, worker_id));
             INSERT INTO {s}.run_status VALUES ('{run}', 'old', 'RUNNING', 'WARMUP', NULL, 2, 8, NULL, 1, \
             '2025-03-01 10:00:00+00', '2025-03-01 10:00:01+00');
             INSERT INTO {s}.run_control_events VALUES ('{run}', 1, 'RUN', NULL, 'STOP', '{{\"type\":\"STOP\"}}', \
             '2025-03-01 10:00:01+00');
             INSERT INTO {s}.worker_heartbeats VALUES ('{run}', 'w', 'COMPLETED', 'PROCESSING', 1, 2, 0, NULL, 1, \
             '2025-03-01 10:00:01+00');"
        ))
        .await
        .expect("creating first-version tables");
    let e = unistore_adapters::open_control(&schema.store_url()).await.expect_err("old columns");
    assert!(e.to_string().contains("unistore-worker setup --results URL"), "{e}");
    postgres::apply_schema(&schema.store_url()).await.expect("applying the schema to an older store");
    postgres::apply_schema(&schema.store_url()).await.expect("applying the schema again");
    let store =
        unistore_adapters::open_control(&schema.store_url()).await.expect("opening the migrated store");
    let read = store.run(run).await.expect("reading").expect("the old run is kept");
    assert_eq!((read.template_name.as_str(), read.last_event_seq, read.version), ("old", 1, 0));
    let events = store.events_since(run, 0).await.expect("the old event reads back");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, unistore_core::model::ControlEventKind::Stop { reason: None });
    let beats = store.heartbeats(run).await.expect("the old heartbeat reads back");
    assert_eq!(beats[0].state, unistore_core::model::WorkerState::Finished, "COMPLETED becomes FINISHED");
    assert_eq!((beats[0].host.as_str(), beats[0].pid), ("", 0));
    testkit::check_control_store(store).await;
}
