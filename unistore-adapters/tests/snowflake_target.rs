//! The Snowflake target pool and table managers against the emulator: the core conformance
//! suites on a standard and a hybrid table, type checks, interactive tables, and an engine run
//! of every query kind.

#![cfg(feature = "snowflake")]

mod snowflake_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use snowflake_support::proxy::with_host;
use snowflake_support::{emulator_url, fresh_schema, hybrid_fixture, standard_fixture, url_with_schema};
use unistore_adapters::snowflake::{
    execute_statements, query_text, table_managers, SnowflakeConfig, SnowflakeTargetPool,
};
use unistore_adapters::{open_target, TargetOptions};
use unistore_core::table::RenderRequest;
use unistore_core::testkit::{self, FIXTURE_NOPK_TABLE, FIXTURE_TABLE};
use unistore_core::{
    Engine, EngineConfig, ErrorKind, QueryKind, RunId, RunPhase, TableManager, TableRef, TableType,
    TargetPool, Template, WorkerIdentity, WorkloadPlan,
};

/// The emulator is one process serving ~60-100 statements a second: the tests of this file take
/// turns, so that one test's timed engine run is not starved by another's fixture loading.
static EMULATOR_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn table(name: &str) -> TableRef {
    TableRef::parse(name).expect("valid table name")
}

fn options(name: &str, declared: Option<TableType>) -> TargetOptions {
    TargetOptions::new(RunId::new(), table(name), declared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_table_passes_the_table_manager_and_target_pool_suites() {
    let _turn = EMULATOR_TURN.lock().await;
    let url = standard_fixture("std").await;
    let (standard, _, _) = table_managers(&url).expect("managers");
    testkit::check_table_manager(
        &standard,
        &table(FIXTURE_TABLE),
        &table(FIXTURE_NOPK_TABLE),
        &table("unistore_no_such_table"),
    )
    .await;

    let opened = open_target(&url, &options(FIXTURE_TABLE, None)).await.expect("opening the target");
    assert_eq!(opened.kind, "snowflake");
    assert_eq!(opened.manager.table_type(), TableType::Standard, "detected type of a standard table");
    testkit::check_target_pool(opened.pool.clone(), opened.manager.as_ref(), &table(FIXTURE_TABLE)).await;
    let report = testkit::check_engine_counts(
        opened.pool,
        opened.manager.as_ref(),
        &table(FIXTURE_TABLE),
        Duration::from_secs(1),
    )
    .await;
    let ops: u64 = report.measured.values().map(|r| r.ops()).sum();
    eprintln!("standard table: {ops} point lookups in {:?}", report.window);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_table_is_detected_profiled_and_passes_the_target_pool_suite() {
    let _turn = EMULATOR_TURN.lock().await;
    let url = hybrid_fixture("hyb").await;
    let opened = open_target(&url, &options(FIXTURE_TABLE, Some(TableType::Hybrid)))
        .await
        .expect("opening a hybrid table");
    assert_eq!(opened.manager.table_type(), TableType::Hybrid);
    let detected = open_target(&url, &options(FIXTURE_TABLE, None)).await.expect("detecting the type");
    assert_eq!(detected.manager.table_type(), TableType::Hybrid, "an undeclared hybrid table is detected");

    let profile = opened.manager.profile(&table(FIXTURE_TABLE)).await.expect("profiling the hybrid table");
    assert_eq!(profile.table_type, TableType::Hybrid);
    assert_eq!(profile.primary_key, vec!["ID".to_string()], "primary key of the hybrid table");
    assert_eq!(profile.key_range, Some((1, testkit::FIXTURE_ROWS)));
    assert!(
        profile.indexes.iter().any(|i| i.eq_ignore_ascii_case("idx_conformance_name")),
        "secondary index missing from {:?}",
        profile.indexes
    );
    assert!((500..=2000).contains(&profile.row_estimate), "row estimate {}", profile.row_estimate);

    testkit::check_target_pool(opened.pool.clone(), opened.manager.as_ref(), &table(FIXTURE_TABLE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_type_that_does_not_match_is_a_clear_error() {
    let _turn = EMULATOR_TURN.lock().await;
    let url = standard_fixture("mismatch").await;
    let err = match open_target(&url, &options(FIXTURE_TABLE, Some(TableType::Hybrid))).await {
        Ok(o) => panic!("a standard table declared hybrid was opened: {o:?}"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let message = err.to_string();
    assert!(message.contains("hybrid") && message.contains("standard"), "unclear message: {message}");
    assert!(!message.contains("emulator@"), "the message leaks the URL's password: {message}");

    let (_, hybrid, interactive) = table_managers(&url).expect("managers");
    for manager in [&hybrid as &dyn TableManager, &interactive] {
        let err = manager.profile(&table(FIXTURE_TABLE)).await.expect_err("wrong type must fail");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("is a standard table"), "{err}");
    }
    let err = open_target(&url, &options("unistore_no_such_table", None)).await.expect_err("missing table");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snowflakes_answer_is_kept_as_the_source() {
    let _turn = EMULATOR_TURN.lock().await;
    let e =
        query_text(&emulator_url(), "SELECT * FROM unistore_no_such_table").await.expect_err("missing table");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let driver = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<snowflake_connector_rs::Error>())
        .expect("the connector's error as source");
    assert!(driver.is_server(), "{driver:?}");
    assert_eq!(driver.snowflake_code(), e.code(), "{driver:?}");
    assert!(e.code().is_some(), "the emulator gives a code: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_login_names_no_password_anywhere_in_its_chain() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address")
    };
    let mut url = url::Url::parse(&with_host(&emulator_url(), &format!("http://{closed}"))).expect("a URL");
    url.set_password(Some("hunter2-secret")).expect("a URL with a user");
    let e = query_text(url.as_str(), "SELECT 1").await.expect_err("nothing listens");
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    // The connector's network errors carry request URLs in their sources: not attached.
    assert!(std::error::Error::source(&e).is_none(), "{e:?}");
    let mut chain = format!("{e} {e:?}");
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        chain.push_str(&format!(" {c} {c:?}"));
        cause = c.source();
    }
    assert!(!chain.contains("hunter2-secret"), "{chain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_tables_are_detected_and_refuse_updates() {
    let _turn = EMULATOR_TURN.lock().await;
    let schema = fresh_schema("inter");
    let url = url_with_schema(&schema);
    let rows: Vec<String> = (1..=20).map(|i| format!("({i}, 'v-{i}')")).collect();
    execute_statements(
        &url,
        &[
            format!("CREATE SCHEMA IF NOT EXISTS UNISTORE_TEST.{schema}"),
            format!("USE SCHEMA UNISTORE_TEST.{schema}"),
            "CREATE INTERACTIVE TABLE events (id BIGINT PRIMARY KEY, label VARCHAR(32) NOT NULL) CLUSTER BY (id)".into(),
            format!("INSERT INTO events VALUES {}", rows.join(", ")),
        ],
    )
    .await
    .expect("creating the interactive fixture");

    let opened = open_target(&url, &options("events", None)).await.expect("opening an interactive table");
    assert_eq!(opened.manager.table_type(), TableType::Interactive, "detected type");
    assert!(!opened.manager.supported_kinds().contains(&QueryKind::Update), "UPDATE must not be supported");
    let profile = opened.manager.profile(&table("events")).await.expect("profiling");
    let values = Default::default();
    let update = RenderRequest { kind: QueryKind::Update, values: &values, custom_sql: None };
    let err = opened.manager.render(&profile, &update).expect_err("rendering UPDATE on an interactive table");
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("interactive tables") && err.to_string().contains("UPDATE"), "{err}");
    let point = RenderRequest { kind: QueryKind::PointLookup, values: &values, custom_sql: None };
    let spec = opened.manager.render(&profile, &point).expect("point lookups are fine");
    let mut session = opened.pool.connect().await.expect("connecting");
    session.prepare(&[spec]).await.expect("preparing");
    assert_eq!(session.execute(0, &[unistore_core::Value::Int(7)]).await.expect("lookup"), 1);

    // A phase change re-tags open sessions (ALTER SESSION SET QUERY_TAG) before their next statement.
    let config = SnowflakeConfig::from_url(&url).expect("config");
    let tagged = SnowflakeTargetPool::new(config, RunId::new());
    let mut session = tagged.connect().await.expect("connecting");
    let spec = opened.manager.render(&profile, &point).expect("point lookup");
    session.prepare(&[spec]).await.expect("preparing");
    tagged.set_phase(RunPhase::Measurement);
    assert_eq!(
        session.execute(0, &[unistore_core::Value::Int(8)]).await.expect("lookup after re-tagging"),
        1
    );

    let err = open_target(&url, &options("events", Some(TableType::Standard)))
        .await
        .expect_err("declared standard");
    assert!(err.to_string().contains("interactive"), "{err}");
}

/// Runs every query kind through the engine on `url`'s fixture and checks the per-kind figures.
async fn mixed_run(url: &str, declared: TableType) {
    let opened = open_target(url, &options(FIXTURE_TABLE, Some(declared))).await.expect("opening the target");
    let manager = opened.manager.clone();
    let profile = manager.profile(&table(FIXTURE_TABLE)).await.expect("profiling");
    let mix = BTreeMap::from([
        (QueryKind::PointLookup, 40),
        (QueryKind::RangeScan, 20),
        (QueryKind::Insert, 20),
        (QueryKind::Update, 20),
    ]);
    let mut template = Template::new(FIXTURE_TABLE, mix.clone());
    template.allow_writes = true;
    template.values.range_scan_width = 10;
    let statements = mix
        .keys()
        .map(|kind| {
            manager
                .render(&profile, &RenderRequest { kind: *kind, values: &template.values, custom_sql: None })
                .unwrap_or_else(|e| panic!("rendering {kind}: {e}"))
        })
        .collect();
    let key = profile.key_column(None).expect("key").name.clone();
    let pool_keys = manager.sample_values(&profile, &key, 100).await.expect("sampling keys");
    let run_id = RunId::new();
    let plan = WorkloadPlan::build(
        &template,
        &profile,
        statements,
        Some(pool_keys),
        run_id,
        &WorkerIdentity::solo(),
    )
    .expect("building the plan");
    let config = EngineConfig::new(run_id, 2, Duration::from_millis(2500));
    let report =
        Engine::start(opened.pool, Arc::new(plan), config).await.expect("start").wait().await.expect("run");
    // Two connections may update the same key at once: DuckDB (under the emulator) aborts one
    // of them where Snowflake would make it wait, and the engine counts it as a CONFLICT error.
    // Any other error is a defect.
    assert!(
        report.error_examples.keys().all(|k| *k == ErrorKind::Conflict),
        "errors: {:?}",
        report.error_examples
    );
    for kind in mix.keys() {
        let r = report.measured.get(kind).unwrap_or_else(|| panic!("{kind} was not measured"));
        assert!(r.ops() > 0, "{kind}: no operations in the window");
        let conflicts = r.errors[ErrorKind::Conflict.index()];
        assert_eq!(r.error_count(), conflicts, "{kind}: errors other than lock conflicts");
        if *kind != QueryKind::Update {
            assert_eq!(r.error_count(), 0, "{kind}: only concurrent updates of one row may conflict");
        }
        match kind {
            QueryKind::PointLookup | QueryKind::Insert | QueryKind::Update => {
                assert_eq!(r.rows, r.ops(), "{kind}: every operation touches exactly one row")
            }
            QueryKind::RangeScan => assert!(r.rows > 0 && r.rows <= r.ops() * 10, "{kind}: {} rows", r.rows),
            QueryKind::CustomSql => {}
        }
    }
    let inserted = report.measured.get(&QueryKind::Insert).map(|r| r.ops()).unwrap_or(0);
    let count = query_text(
        url,
        &format!("SELECT COUNT(*) FROM {FIXTURE_TABLE} WHERE id > {}", testkit::FIXTURE_ROWS),
    )
    .await
    .expect("counting inserted rows");
    let on_server: u64 = count[0][0].as_deref().and_then(|c| c.parse().ok()).expect("a count");
    assert!(
        on_server >= inserted,
        "the table holds {on_server} inserted rows, the engine measured {inserted}"
    );
    eprintln!(
        "{declared} mixed run: {:?}",
        report.measured.iter().map(|(k, r)| (k.as_str(), r.ops())).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_runs_every_query_kind_on_standard_and_hybrid_tables() {
    let _turn = EMULATOR_TURN.lock().await;
    let (standard, hybrid) = tokio::join!(standard_fixture("mixstd"), hybrid_fixture("mixhyb"));
    mixed_run(&standard, TableType::Standard).await;
    mixed_run(&hybrid, TableType::Hybrid).await;
}
