//! What the Snowflake table managers read from the catalog, on the emulator: tables in another
//! database than the session's (benchmarked without `--key-column`), generated keys
//! (`AUTOINCREMENT` / `IDENTITY`), defaults, foreign keys and which columns are indexed.

#![cfg(feature = "snowflake")]

mod snowflake_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use snowflake_support::{emulator_url, fresh_schema, url_with_schema};
use unistore_adapters::snowflake::{execute_statements, table_managers};
use unistore_adapters::{open_target, OpenedTarget, TargetOptions};
use unistore_core::table::{Generated, RenderRequest};
use unistore_core::{
    Engine, EngineConfig, QueryKind, RunId, TableManager, TableRef, TableType, Template, WorkerIdentity,
    WorkloadPlan,
};

/// The emulator is one process: the tests of this file take turns.
static EMULATOR_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A database other than the URL's (UNISTORE_TEST), shared by the tests; schemas are fresh.
const SECOND_DATABASE: &str = "UNISTORE_SECOND";

fn table(name: &str) -> TableRef {
    TableRef::parse(name).expect("valid table name")
}

fn rows(count: i64) -> String {
    (1..=count).map(|i| format!("({i}, 'n-{i}')")).collect::<Vec<_>>().join(", ")
}

/// Point lookups through the engine for a second, keys sampled by the manager: the key column
/// is the one the manager profiled (no override).
async fn benchmark(opened: &OpenedTarget, name: &str) -> u64 {
    let profile =
        opened.manager.profile(&table(name)).await.unwrap_or_else(|e| panic!("profiling {name}: {e}"));
    assert_eq!(profile.primary_key, vec!["ID".to_string()], "primary key of {name}");
    let template = Template::new(name, BTreeMap::from([(QueryKind::PointLookup, 100)]));
    let request = RenderRequest { kind: QueryKind::PointLookup, values: &template.values, custom_sql: None };
    let statement = opened.manager.render(&profile, &request).expect("rendering a point lookup");
    let key = profile.key_column(None).expect("the profiled primary key").name.clone();
    let keys = opened.manager.sample_values(&profile, &key, 50).await.expect("sampling keys");
    assert_eq!(keys.len(), 50, "sampled keys of {name}");
    let run_id = RunId::new();
    let plan = WorkloadPlan::build(
        &template,
        &profile,
        vec![statement],
        Some(keys),
        run_id,
        &WorkerIdentity::solo(),
    )
    .expect("building the plan");
    let config = EngineConfig::new(run_id, 2, Duration::from_secs(1));
    let report = Engine::start(opened.pool.clone(), Arc::new(plan), config)
        .await
        .expect("start")
        .wait()
        .await
        .expect("run");
    assert!(report.error_examples.is_empty(), "{name}: errors {:?}", report.error_examples);
    let measured = report.measured.get(&QueryKind::PointLookup).expect("point lookups measured");
    assert!(measured.ops() > 0, "{name}: no point lookup in the window");
    assert_eq!(measured.rows, measured.ops(), "{name}: every lookup of a sampled key reads one row");
    measured.ops()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_and_hybrid_tables_in_another_database_are_benchmarked_without_a_key_column() {
    let _turn = EMULATOR_TURN.lock().await;
    let schema = fresh_schema("otherdb");
    let qualified = format!("{SECOND_DATABASE}.{schema}");
    execute_statements(
        &emulator_url(),
        &[
            format!("CREATE DATABASE IF NOT EXISTS {SECOND_DATABASE}"),
            format!("CREATE SCHEMA IF NOT EXISTS {qualified}"),
            format!("CREATE TABLE {qualified}.ACCOUNTS (id BIGINT PRIMARY KEY, name VARCHAR(32) NOT NULL)"),
            format!("INSERT INTO {qualified}.ACCOUNTS VALUES {}", rows(200)),
            format!(
                "CREATE HYBRID TABLE {qualified}.SESSIONS (id BIGINT PRIMARY KEY, name VARCHAR(32) NOT NULL, \
                 INDEX idx_sessions_name (name))"
            ),
            format!("INSERT INTO {qualified}.SESSIONS VALUES {}", rows(200)),
        ],
    )
    .await
    .expect("creating the tables in the second database");

    // The URL's database is UNISTORE_TEST: the sessions' current database is not the tables'.
    let url = emulator_url();
    for (name, kind) in [("ACCOUNTS", TableType::Standard), ("SESSIONS", TableType::Hybrid)] {
        let name = format!("{qualified}.{name}");
        let opened = open_target(&url, &TargetOptions::new(RunId::new(), table(&name), None))
            .await
            .unwrap_or_else(|e| panic!("opening {name}: {e}"));
        assert_eq!(opened.manager.table_type(), kind, "detected type of {name}");
        let ops = benchmark(&opened, &name).await;
        eprintln!("{name} ({kind}): {ops} point lookups");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_keys_defaults_foreign_keys_and_indexes_come_from_the_catalog() {
    let _turn = EMULATOR_TURN.lock().await;
    let schema = fresh_schema("generated");
    let url = url_with_schema(&schema);
    execute_statements(
        &url,
        &[
            format!("CREATE SCHEMA IF NOT EXISTS UNISTORE_TEST.{schema}"),
            format!("USE SCHEMA UNISTORE_TEST.{schema}"),
            "CREATE TABLE CUSTOMERS (id BIGINT PRIMARY KEY, name VARCHAR(32) NOT NULL)".into(),
            format!("INSERT INTO CUSTOMERS VALUES {}", rows(10)),
            "CREATE TABLE ORDERS (id BIGINT AUTOINCREMENT PRIMARY KEY, customer_id BIGINT NOT NULL \
             REFERENCES CUSTOMERS (id), status VARCHAR(16) DEFAULT 'new', amount DOUBLE)"
                .into(),
            "INSERT INTO ORDERS (customer_id, amount) VALUES (1, 10.5), (2, 20.25), (3, 7.0)".into(),
            "CREATE HYBRID TABLE EVENTS (id NUMBER(38,0) IDENTITY(1,1) PRIMARY KEY, label VARCHAR(32) NOT NULL, \
             note VARCHAR(64), INDEX idx_events_label (label))"
                .into(),
            "INSERT INTO EVENTS (label) VALUES ('a'), ('b')".into(),
        ],
    )
    .await
    .expect("creating the tables");
    let (standard, hybrid, _) = table_managers(&url).expect("managers");

    let orders = standard.profile(&table("ORDERS")).await.expect("profiling ORDERS");
    let column = |name: &str| orders.column(name).unwrap_or_else(|| panic!("no column {name}")).clone();
    assert_eq!(column("ID").generated, Some(Generated::Sequence), "an AUTOINCREMENT key is generated");
    assert!(column("ID").has_default, "a generated key has a default");
    assert_eq!(column("STATUS").generated, Some(Generated::Expression), "a DEFAULT 'new' column");
    assert_eq!(column("CUSTOMER_ID").generated, None);
    assert_eq!(column("AMOUNT").generated, None);
    assert!(orders.columns.iter().all(|c| c.indexed.is_none()), "standard tables have no indexes");
    assert_eq!(
        orders.foreign_keys,
        vec![format!("CUSTOMER_ID -> UNISTORE_TEST.{schema}.CUSTOMERS(ID)")],
        "foreign keys of ORDERS"
    );
    assert!(orders.triggers.is_empty(), "Snowflake has no triggers");
    let customers = standard.profile(&table("CUSTOMERS")).await.expect("profiling CUSTOMERS");
    assert!(customers.foreign_keys.is_empty(), "{:?}", customers.foreign_keys);
    assert!(customers.columns.iter().all(|c| c.generated.is_none()), "{:?}", customers.columns);

    let events = hybrid.profile(&table("EVENTS")).await.expect("profiling EVENTS");
    let column = |name: &str| events.column(name).unwrap_or_else(|| panic!("no column {name}")).clone();
    assert_eq!(column("ID").generated, Some(Generated::Sequence), "an IDENTITY key is generated");
    assert_eq!(column("ID").indexed, Some(true), "the primary key of a hybrid table is indexed");
    assert_eq!(column("LABEL").indexed, Some(true), "the leading column of idx_events_label");
    assert_eq!(column("NOTE").indexed, Some(false), "no index starts with NOTE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_leave_an_autoincrement_key_to_the_table_so_its_own_inserts_still_work() {
    let _turn = EMULATOR_TURN.lock().await;
    let schema = fresh_schema("autoinc");
    let url = url_with_schema(&schema);
    execute_statements(
        &url,
        &[
            format!("CREATE SCHEMA IF NOT EXISTS UNISTORE_TEST.{schema}"),
            format!("USE SCHEMA UNISTORE_TEST.{schema}"),
            "CREATE TABLE ORDERS (id BIGINT AUTOINCREMENT PRIMARY KEY, customer_id BIGINT NOT NULL, amount DOUBLE)"
                .into(),
            "INSERT INTO ORDERS (customer_id, amount) VALUES (1, 10.5), (2, 20.25), (3, 7.0)".into(),
        ],
    )
    .await
    .expect("creating the table");
    let opened = open_target(&url, &TargetOptions::new(RunId::new(), table("ORDERS"), None))
        .await
        .expect("opening the target");
    let mut template = Template::new("ORDERS", BTreeMap::from([(QueryKind::Insert, 100)]));
    template.allow_writes = true;
    template.phases.warmup = Duration::ZERO;
    template.phases.measurement = Duration::from_millis(1500);
    template.load = unistore_core::template::LoadMode::Concurrency { connections: 2 };
    let prepared = unistore_core::runner::PreparedRun::prepare(
        template,
        RunId::new(),
        WorkerIdentity::solo(),
        opened.pool.clone(),
        opened.manager.as_ref(),
    )
    .await
    .expect("preparing");
    let insert = &prepared.plan.statements()[0];
    assert!(!insert.sql.contains("\"ID\""), "the key is left to the table: {}", insert.sql);
    assert!(
        prepared.notes.facts.iter().any(|f| f.contains("INSERT leaves `ID` to the database")),
        "{:?}",
        prepared.notes
    );
    let finished = prepared.connect().await.expect("connecting").start(None).await.finish(|_| {}).await;
    let s = &finished.summary;
    assert_eq!(s.total.errors, 0, "{:?}", s.error_examples);
    let inserted = s.completed_ops_all_phases;
    assert!(inserted > 10, "{inserted} inserts");
    // The table's own next insert works, and every key is distinct.
    execute_statements(&url, &["INSERT INTO ORDERS (customer_id, amount) VALUES (9, 1.0)".into()])
        .await
        .expect("the application's insert after the run");
    let counts =
        unistore_adapters::snowflake::query_text(&url, "SELECT count(*), count(DISTINCT id) FROM ORDERS")
            .await
            .expect("counting");
    let total: u64 = counts[0][0].as_deref().unwrap_or("0").parse().expect("a count");
    let distinct: u64 = counts[0][1].as_deref().unwrap_or("0").parse().expect("a count");
    assert_eq!(total, 3 + inserted + 1, "rows = seed rows + the run's inserts + the application's");
    assert_eq!(distinct, total, "no key was used twice");
}
