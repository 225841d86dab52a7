//! Bad input against a real server: unknown tables and schemas, tables without a key, wrong
//! table types, servers that are not PostgreSQL, nothing listening, missing store tables,
//! privileges, timeouts; and every column type binding natively.
#![cfg(feature = "postgres")]

mod postgres_support;

use postgres_support::{connect, pg_url, with_param, TestSchema};
use tokio::io::AsyncWriteExt;
use tokio_postgres::error::SqlState;
use unistore_adapters::postgres::{PostgresConfig, PostgresTableManager, PostgresTargetPool};
use unistore_core::table::RenderRequest;
use unistore_core::target::{ParamRole, ParamSpec};
use unistore_core::template::{CustomSql, ParamGenerator, ValueGeneration};
use unistore_core::testkit::{FIXTURE_NOPK_TABLE, FIXTURE_TABLE};
use unistore_core::{
    ColumnType, ErrorKind, QueryKind, RunId, StatementSpec, TableManager, TableRef, TableType, TargetPool,
    Value,
};

async fn manager(url: &str) -> PostgresTableManager {
    let config = PostgresConfig::from_url(url).expect("valid URL");
    PostgresTableManager::connect(&config, None).await.expect("table manager")
}

fn pool(url: &str) -> PostgresTargetPool {
    PostgresTargetPool::new(PostgresConfig::from_url(url).expect("valid URL"), RunId::new())
}

#[tokio::test]
async fn unknown_tables_and_schemas_are_named() {
    let schema = TestSchema::create(&pg_url()).await;
    schema.load_fixture().await;
    connect(&schema.url)
        .await
        .batch_execute(&format!("CREATE TABLE {}.mixedcase (id int)", schema.name))
        .await
        .expect("set-up SQL");
    let m = manager(&schema.url).await;

    let e = m.profile(&schema.table("no_such_table")).await.expect_err("unknown table");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("no_such_table") && e.to_string().contains(&schema.name), "{e}");

    let wrong_schema =
        TableRef { database: None, schema: Some("ut_no_such_schema".into()), name: FIXTURE_TABLE.into() };
    let e = m.profile(&wrong_schema).await.expect_err("unknown schema");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("schema `ut_no_such_schema` does not exist"), "{e}");

    let e = m.profile(&schema.table("MixedCase")).await.expect_err("case differs");
    assert!(e.to_string().contains(&format!("did you mean {}.mixedcase", schema.name)), "{e}");

    let other_db = TableRef { database: Some("elsewhere".into()), ..schema.table(FIXTURE_TABLE) };
    let e = m.profile(&other_db).await.expect_err("another database");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("elsewhere"), "{e}");

    // Without a schema, the connection's current schema is searched.
    let e = m.profile(&TableRef::parse(FIXTURE_TABLE).expect("valid name")).await.expect_err("not in public");
    assert!(e.to_string().contains("current schema"), "{e}");
}

#[tokio::test]
async fn a_table_without_primary_key_profiles_and_names_the_fix() {
    let schema = TestSchema::create(&pg_url()).await;
    schema.load_fixture().await;
    let m = manager(&schema.url).await;
    let profile = m.profile(&schema.table(FIXTURE_NOPK_TABLE)).await.expect("profile without a key");
    assert!(profile.primary_key.is_empty());
    assert_eq!(profile.row_estimate, 10);
    assert_eq!(profile.key_range, None);
    let values = ValueGeneration::default();
    let e = m
        .render(&profile, &RenderRequest { kind: QueryKind::PointLookup, values: &values, custom_sql: None })
        .expect_err("no key");
    assert!(e.to_string().contains("key-column") && e.to_string().contains("id, name"), "{e}");
    // Naming a key column is the fix.
    let values = ValueGeneration { key_column: Some("id".into()), ..ValueGeneration::default() };
    let spec = m
        .render(&profile, &RenderRequest { kind: QueryKind::PointLookup, values: &values, custom_sql: None })
        .expect("point lookup with an explicit key");
    let mut session = pool(&schema.url).connect().await.expect("session");
    session.prepare(&[spec]).await.expect("prepare");
    assert_eq!(session.execute(0, &[Value::Int(4)]).await.expect("lookup"), 1);
}

#[tokio::test]
async fn a_declared_non_postgres_table_type_is_refused() {
    let schema = TestSchema::create(&pg_url()).await;
    schema.load_fixture().await;
    let config = PostgresConfig::from_url(&schema.url).expect("valid URL");
    let m = PostgresTableManager::connect(&config, Some(TableType::Hybrid)).await.expect("table manager");
    let e = m.profile(&schema.table(FIXTURE_TABLE)).await.expect_err("hybrid on postgres");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("table_type = \"postgres\""), "{e}");
    let ok = PostgresTableManager::connect(&config, Some(TableType::Postgres)).await.expect("table manager");
    ok.profile(&schema.table(FIXTURE_TABLE)).await.expect("declared postgres");
}

#[tokio::test]
async fn a_server_that_is_not_postgres_is_a_clear_connect_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
            let _ = socket.shutdown().await;
        }
    });
    let url = format!("postgres://bob:hunter2@127.0.0.1:{port}/db");
    let e = pool(&url).connect().await.err().expect("garbage server");
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    let text = e.to_string();
    assert!(text.contains("does not speak the PostgreSQL protocol"), "{text}");
    assert!(!text.contains("hunter2") && text.contains("bob:***@127.0.0.1"), "{text}");
}

#[tokio::test]
async fn nothing_listening_is_a_clear_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address").port()
    };
    let url = format!("postgres://bob:hunter2@127.0.0.1:{port}/db?connect_timeout=3");
    let e = pool(&url).connect().await.err().expect("nothing listens");
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.to_string().contains("nothing listens there"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[tokio::test]
async fn the_driver_error_is_kept_as_the_source() {
    let schema = TestSchema::create(&pg_url()).await;
    let mut session = pool(&schema.url).connect().await.expect("session");
    let sql = format!("SELECT * FROM {}.no_such_table", schema.name);
    let e = session.prepare(&[custom(QueryKind::CustomSql, &sql, &[])]).await.expect_err("missing table");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let source = std::error::Error::source(&e).expect("the driver's error as source");
    let driver = source.downcast_ref::<tokio_postgres::Error>().expect("a tokio_postgres::Error");
    assert_eq!(driver.code(), Some(&SqlState::UNDEFINED_TABLE), "{driver:?}");
    assert_eq!(driver.as_db_error().map(|db| db.message().contains("no_such_table")), Some(true));
}

#[tokio::test]
async fn a_refused_connection_is_classified_by_the_socket_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address").port()
    };
    let url = format!("postgres://bob:hunter2@127.0.0.1:{port}/db?connect_timeout=3");
    let e = pool(&url).connect().await.err().expect("nothing listens");
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.is_transient());
    // What decided it: the operating system's refusal, reachable without reading any message.
    let driver = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
        .expect("the driver's error as source");
    let mut cause = std::error::Error::source(driver);
    let mut refused = false;
    while let Some(c) = cause {
        refused |= c.downcast_ref::<std::io::Error>().map(std::io::Error::kind)
            == Some(std::io::ErrorKind::ConnectionRefused);
        cause = c.source();
    }
    assert!(refused, "no ConnectionRefused under {driver:?}");
    // The chain the source adds names no password either.
    assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
}

#[tokio::test]
async fn stores_without_their_tables_name_the_file_to_apply() {
    let schema = TestSchema::create(&pg_url()).await;
    let e = unistore_adapters::open_results(&schema.store_url()).await.expect_err("no tables");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("sql/schema/postgres/results.sql"), "{e}");
    let e = unistore_adapters::open_control(&schema.store_url()).await.expect_err("no tables");
    assert!(e.to_string().contains("sql/schema/postgres/control.sql"), "{e}");
}

fn custom(kind: QueryKind, sql: &str, types: &[ColumnType]) -> StatementSpec {
    StatementSpec {
        kind,
        sql: sql.to_string(),
        params: types
            .iter()
            .enumerate()
            .map(|(i, t)| ParamSpec {
                column: String::new(),
                column_type: t.clone(),
                role: ParamRole::Custom(i),
            })
            .collect(),
        returning: None,
    }
}

#[tokio::test]
async fn errors_are_classified_by_sqlstate() {
    let schema = TestSchema::create(&pg_url()).await;
    schema.load_fixture().await;
    let s = &schema.name;
    let role = format!("{s}_reader");
    let admin = connect(&schema.url).await;
    admin
        .batch_execute(&format!("CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA {s} TO {role}"))
        .await
        .expect("set-up SQL");
    struct DropRole(String, String);
    impl Drop for DropRole {
        fn drop(&mut self) {
            // Dropped before the schema guard: revoke its grants first.
            let role = &self.1;
            let sql = format!(
                "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN \
                 EXECUTE 'DROP OWNED BY {role}'; EXECUTE 'DROP ROLE {role}'; END IF; END $$"
            );
            let _ = std::process::Command::new("psql").args([self.0.as_str(), "-q", "-c", &sql]).output();
        }
    }
    let _guard = DropRole(pg_url(), role.clone());

    let url = with_param(&schema.url, "options", "-c%20statement_timeout%3D200");
    let mut session = pool(&url).connect().await.expect("session");
    let e = session.prepare(&[custom(QueryKind::CustomSql, "SELEC 1", &[])]).await.expect_err("syntax error");
    assert_eq!(e.kind(), ErrorKind::Syntax, "{e}");
    assert_eq!(e.code(), Some("42601"), "the SQLSTATE is kept: {e}");
    let e = session
        .prepare(&[custom(QueryKind::CustomSql, &format!("SELECT nope FROM {s}.{FIXTURE_TABLE}"), &[])])
        .await
        .expect_err("unknown column");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.code(), Some("42703"), "the SQLSTATE is kept: {e}");
    session.prepare(&[custom(QueryKind::CustomSql, "SELECT pg_sleep(2)", &[])]).await.expect("prepare");
    let e = session.execute(0, &[]).await.expect_err("statement timeout");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.code(), Some("57014"), "the SQLSTATE is kept: {e}");

    let base = url::Url::parse(&pg_url()).expect("valid URL");
    let mut as_reader = base.clone();
    as_reader.set_username(&role).expect("a URL with a user");
    let mut session = pool(as_reader.as_str()).connect().await.expect("session as an unprivileged role");
    session
        .prepare(&[custom(
            QueryKind::PointLookup,
            &format!("SELECT * FROM {s}.{FIXTURE_TABLE} WHERE id = $1"),
            &[ColumnType::Integer],
        )])
        .await
        .expect("privileges are checked when the statement runs");
    let e = session.execute(0, &[Value::Int(1)]).await.expect_err("no SELECT privilege");
    assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
}

#[tokio::test]
async fn every_column_type_binds_natively() {
    let schema = TestSchema::create(&pg_url()).await;
    let s = &schema.name;
    let admin = connect(&schema.url).await;
    admin
        .batch_execute(&format!(
            "CREATE DOMAIN {s}.positive AS int4 CHECK (VALUE > 0);
             CREATE TABLE {s}.typed (k int4 PRIMARY KEY, small int2, big int8, money numeric(10,2), \
             whole numeric(12,0), ratio real, code varchar(10), fixed char(5), body text, day date, \
             at timestamptz, flag boolean, ident uuid, doc jsonb, pos {s}.positive);
             CREATE TABLE {s}.by_name (code varchar(16) PRIMARY KEY, n int4 NOT NULL);
             INSERT INTO {s}.by_name SELECT 'c' || i, i FROM generate_series(1, 100) i;
             ANALYZE {s}.by_name;"
        ))
        .await
        .expect("set-up SQL");
    let m = manager(&schema.url).await;
    let profile = m.profile(&schema.table("typed")).await.expect("profile");
    let types: Vec<(&str, &ColumnType)> =
        profile.columns.iter().map(|c| (c.name.as_str(), &c.column_type)).collect();
    assert_eq!(types[3], ("money", &ColumnType::Decimal));
    assert_eq!(types[4], ("whole", &ColumnType::Integer));
    assert_eq!(types[9], ("day", &ColumnType::Date));
    assert_eq!(types[12], ("ident", &ColumnType::Other("uuid".into())));
    assert_eq!(types[14], ("pos", &ColumnType::Integer), "a domain maps to its base type");
    assert_eq!(profile.column("code").and_then(|c| c.max_length), Some(10));

    let day_us = 1_718_409_600_000_000; // 2024-06-15 00:00:00 UTC
    let insert = custom(
        QueryKind::Insert,
        &format!(
            "INSERT INTO {s}.typed VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ),
        &[],
    );
    let mut insert = insert;
    insert.params = (0..15)
        .map(|i| ParamSpec {
            column: String::new(),
            column_type: ColumnType::Text,
            role: ParamRole::Custom(i),
        })
        .collect();
    let mut session = pool(&schema.url).connect().await.expect("session");
    session.prepare(&[insert]).await.expect("prepare insert");
    let row = [
        Value::Int(1),
        Value::Int(-7),
        Value::Int(9_000_000_000),
        Value::Float(1234.5),
        Value::Int(123_456_789_012),
        Value::Float(0.25),
        Value::text("abc"),
        Value::text("xy"),
        Value::text("long text"),
        Value::Timestamp(day_us + 3_600_000_000),
        Value::Timestamp(day_us + 1_500_000),
        Value::Bool(true),
        Value::text("6f1c2d0e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"),
        Value::text("{\"a\": [1, 2]}"),
        Value::Int(3),
    ];
    assert_eq!(session.execute(0, &row).await.expect("insert every type"), 1);
    let back = admin
        .query_one(&format!("SELECT concat_ws('|', k, small, big, money, whole, ratio, code, fixed, body, day, \
             to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), flag, ident, doc, pos) FROM {s}.typed"), &[])
        .await
        .expect("set-up SQL");
    let text: String = back.get(0);
    assert_eq!(
        text,
        "1|-7|9000000000|1234.50|123456789012|0.25|abc|xy   |long text|2024-06-15|2024-06-15 00:00:01.500000|t|6f1c2d0e-3a4b-4c5d-8e9f-0a1b2c3d4e5f|{\"a\": [1, 2]}|3"
    );

    // Out of range for SMALLINT: a clear input error, and the session stays usable.
    let mut bad = row.clone();
    bad[0] = Value::Int(2);
    bad[1] = Value::Int(70_000);
    let e = session.execute(0, &bad).await.expect_err("smallint overflow");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("out of range for smallint"), "{e}");
    bad[1] = Value::Int(1);
    assert_eq!(session.execute(0, &bad).await.expect("insert after the error"), 1);

    // A VARCHAR key: sampled, rendered and looked up with its own type.
    let by_name = m.profile(&schema.table("by_name")).await.expect("profile");
    assert_eq!(by_name.key_range, None);
    let keys = m.sample_values(&by_name, "code", 20).await.expect("sample");
    assert_eq!(keys.len(), 20);
    let values = ValueGeneration::default();
    let lookup = m
        .render(&by_name, &RenderRequest { kind: QueryKind::PointLookup, values: &values, custom_sql: None })
        .expect("render");
    let scan = m
        .render(&by_name, &RenderRequest { kind: QueryKind::RangeScan, values: &values, custom_sql: None })
        .expect("render");
    let count = CustomSql::new(
        format!("SELECT count(*) FROM {s}.by_name WHERE n < ?"),
        vec![ParamGenerator::Int { min: 0, max: 1 }],
    );
    let counted = m
        .render(
            &by_name,
            &RenderRequest { kind: QueryKind::CustomSql, values: &values, custom_sql: Some(&count) },
        )
        .expect("render");
    let mut session = pool(&schema.url).connect().await.expect("session");
    session.prepare(&[lookup, scan, counted]).await.expect("prepare");
    for k in &keys {
        assert_eq!(session.execute(0, std::slice::from_ref(k)).await.expect("lookup"), 1, "key {k}");
    }
    assert_eq!(session.execute(1, &[Value::text("c1")]).await.expect("scan"), 100);
    assert_eq!(session.execute(2, &[Value::Int(10)]).await.expect("count"), 1);

    // Sampled timestamps and integers come back as the core's values.
    let typed = m.profile(&schema.table("typed")).await.expect("profile");
    let at = m.sample_values(&typed, "at", 5).await.expect("sample");
    assert!(at.contains(&Value::Timestamp(day_us + 1_500_000)), "{at:?}");
    let whole = m.sample_values(&typed, "whole", 5).await.expect("sample");
    assert_eq!(whole, vec![Value::Int(123_456_789_012)]);
    let day = m.sample_values(&typed, "day", 5).await.expect("sample");
    assert_eq!(day, vec![Value::Timestamp(day_us)]);
}

#[tokio::test]
async fn partitioned_tables_views_and_sequences() {
    let schema = TestSchema::create(&pg_url()).await;
    let s = &schema.name;
    connect(&schema.url)
        .await
        .batch_execute(&format!(
            "CREATE TABLE {s}.events (id bigint, region int, at timestamptz NOT NULL, PRIMARY KEY (id, region)) \
                 PARTITION BY LIST (region);
             CREATE TABLE {s}.events_1 PARTITION OF {s}.events FOR VALUES IN (1);
             CREATE TABLE {s}.events_2 PARTITION OF {s}.events FOR VALUES IN (2);
             INSERT INTO {s}.events SELECT i, 1 + i % 2, now() FROM generate_series(1, 300) i;
             ANALYZE {s}.events;
             CREATE VIEW {s}.recent AS SELECT * FROM {s}.events WHERE id > 100;
             CREATE SEQUENCE {s}.counter;"
        ))
        .await
        .expect("set-up SQL");
    let m = manager(&schema.url).await;
    let p = m.profile(&schema.table("events")).await.expect("partitioned table");
    assert_eq!(p.primary_key, vec!["id".to_string(), "region".to_string()], "key order");
    assert_eq!(p.row_estimate, 300);
    assert_eq!(p.key_range, Some((1, 300)));
    assert_eq!(p.time_column.as_deref(), Some("at"));
    let v = m.profile(&schema.table("recent")).await.expect("view");
    assert!(v.primary_key.is_empty());
    assert_eq!(v.row_estimate, 200);
    let keys = m.sample_values(&v, "id", 10).await.expect("sampling a view");
    assert_eq!(keys.len(), 10);
    let e = m.profile(&schema.table("counter")).await.expect_err("a sequence");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("is a sequence"), "{e}");
}
