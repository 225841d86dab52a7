//! A connection lost mid-run: the server terminates every session of the run while the engine
//! is measuring. The lost operations are counted as connection errors, the sessions reconnect,
//! operations continue, and nothing measured before the loss is lost.
#![cfg(feature = "postgres")]

mod postgres_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres_support::{connect, pg_url, TestSchema};
use unistore_adapters::postgres::{PostgresConfig, PostgresTableManager, PostgresTargetPool};
use unistore_core::table::RenderRequest;
use unistore_core::testkit::FIXTURE_TABLE;
use unistore_core::{
    Engine, EngineConfig, ErrorKind, MetricSnapshot, QueryKind, RunId, TableManager, Template,
    WorkerIdentity, WorkloadPlan,
};

async fn backends_of(client: &tokio_postgres::Client, application_name: &str) -> i64 {
    client
        .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", &[&application_name])
        .await
        .expect("reading pg_stat_activity")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_sessions_are_counted_and_reconnected() {
    let schema = TestSchema::create(&pg_url()).await;
    schema.load_fixture().await;
    let table = schema.table(FIXTURE_TABLE);
    let config = PostgresConfig::from_url(&schema.url).expect("valid URL");
    let run_id = RunId::new();
    let pool = Arc::new(PostgresTargetPool::new(config.clone(), run_id));
    let app = pool.application_name().to_string();
    let manager = PostgresTableManager::connect(&config, None).await.expect("table manager");
    let profile = manager.profile(&table).await.expect("profile");
    let template = Template::new(table.to_string(), BTreeMap::from([(QueryKind::PointLookup, 100)]));
    let request = RenderRequest { kind: QueryKind::PointLookup, values: &template.values, custom_sql: None };
    let statement = manager.render(&profile, &request).expect("render");
    let keys = manager.sample_values(&profile, "id", 200).await.expect("sample");
    let plan = WorkloadPlan::build(
        &template,
        &profile,
        vec![statement],
        Some(keys),
        run_id,
        &WorkerIdentity::solo(),
    )
    .expect("plan");

    let mut handle =
        Engine::start(pool.clone(), Arc::new(plan), EngineConfig::new(run_id, 2, Duration::from_secs(4)))
            .await
            .expect("engine start");
    let start = Instant::now();
    let mut snapshots = handle.take_snapshots().expect("snapshot channel");
    let collector = tokio::spawn(async move {
        let mut all: Vec<(Duration, MetricSnapshot)> = Vec::new();
        while let Some(s) = snapshots.recv().await {
            all.push((start.elapsed(), s));
        }
        all
    });

    let admin = connect(&schema.url).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(backends_of(&admin, &app).await, 2, "the run's sessions carry application_name {app}");
    let killed_at = start.elapsed();
    let killed: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) t",
            &[&app],
        )
        .await
        .expect("terminating the run's sessions")
        .get(0);
    assert_eq!(killed, 2, "terminated sessions");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(backends_of(&admin, &app).await, 2, "the sessions reconnected");

    let report = handle.wait().await.expect("the run survives lost connections");
    let snapshots = collector.await.expect("collector");
    let measured = &report.measured[&QueryKind::PointLookup];
    let connect_errors = measured.errors[ErrorKind::Connect.index()];
    assert!((1..=2).contains(&connect_errors), "lost operations counted as CONNECT errors: {connect_errors}");
    assert_eq!(measured.error_count(), connect_errors, "only connection errors: {:?}", report.error_examples);
    assert!(report.error_examples.contains_key(&ErrorKind::Connect));

    // Interval snapshots before and after the loss both carry operations, and together they
    // account for every successful operation of the run: nothing measured before was lost.
    let before: u64 = snapshots.iter().filter(|(t, _)| *t < killed_at).map(|(_, s)| s.total.ops).sum();
    let after: u64 = snapshots
        .iter()
        .filter(|(t, _)| *t > killed_at + Duration::from_millis(1100))
        .map(|(_, s)| s.total.ops)
        .sum();
    assert!(before > 100, "operations before the loss: {before}");
    assert!(after > 100, "operations after reconnecting: {after}");
    let in_snapshots: u64 = snapshots.iter().map(|(_, s)| s.total.ops).sum();
    assert_eq!(
        in_snapshots,
        measured.ops() + report.warmup_ops + report.cooldown_ops,
        "snapshots and the report disagree"
    );
    let errors_in_snapshots: u64 = snapshots.iter().map(|(_, s)| s.total.errors).sum();
    assert_eq!(errors_in_snapshots, connect_errors);
}
