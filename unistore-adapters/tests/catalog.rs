//! Discovery (`open_catalog`) against real backends: an SQLite file, the PostgreSQL server of
//! `UNISTORE_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`; its database
//! `postgres` holds the pgbench tables at scale 10) and the Snowflake emulator.
//!
//! Decided and checked here: a database or schema that does not exist is an error of kind
//! `NotFound` that names it (never an empty list, which means "exists, holds nothing").

#[cfg(feature = "postgres")]
mod postgres_support;
#[cfg(feature = "snowflake")]
mod snowflake_support;

use unistore_core::{CatalogTable, ErrorKind, TableType};

/// The listed table called `name`, or a panic naming what was listed.
fn find<'a>(tables: &'a [CatalogTable], name: &str) -> &'a CatalogTable {
    tables.iter().find(|t| t.name == name).unwrap_or_else(|| {
        panic!("table {name} not listed; listed: {:?}", tables.iter().map(|t| &t.name).collect::<Vec<_>>())
    })
}

/// The error of opening a catalog that must not open.
async fn open_error(url: &str, what: &str) -> unistore_core::Error {
    match unistore_adapters::open_catalog(url).await {
        Ok(_) => panic!("{what}: the catalog opened"),
        Err(e) => e,
    }
}

fn expect_not_found<T: std::fmt::Debug>(result: unistore_core::Result<T>, name: &str, what: &str) {
    let e = result.expect_err(what);
    assert_eq!(e.kind(), ErrorKind::NotFound, "{what}: {e}");
    assert!(e.to_string().contains(name), "{what}: the message must name `{name}`: {e}");
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use rusqlite::Connection;
    use unistore_adapters::open_catalog;

    fn create_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
        let path = dir.path().join("shop.db");
        let conn = Connection::open(&path).expect("creating the database file");
        conn.execute_batch(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             CREATE TABLE events (at TEXT, what TEXT);
             CREATE TABLE order_lines (line_no INTEGER, order_id INTEGER, sku TEXT, PRIMARY KEY (order_id, line_no));
             CREATE INDEX events_at ON events (at);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25)
               INSERT INTO accounts SELECT i, 'a' || i FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 7)
               INSERT INTO events SELECT 't' || i, 'e' FROM n;",
        )
        .expect("creating the tables");
        path
    }

    #[tokio::test]
    async fn an_sqlite_file_lists_its_tables_keys_and_analyzed_row_counts() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = create_file(&dir);
        let catalog =
            open_catalog(&format!("sqlite://{}", path.display())).await.expect("opening the catalog");
        assert!(catalog.databases().await.expect("databases").is_empty(), "an SQLite file has no databases");
        assert_eq!(catalog.schemas(None).await.expect("schemas"), vec!["main".to_string()]);

        let tables = catalog.tables(None, None).await.expect("tables");
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["accounts", "events", "order_lines"], "tables sorted by name, no sqlite_ tables");
        let accounts = find(&tables, "accounts");
        assert_eq!(accounts.database, None);
        assert_eq!(accounts.schema.as_deref(), Some("main"));
        assert_eq!(accounts.table_type, TableType::Sqlite);
        assert_eq!(accounts.key_columns, vec!["id".to_string()]);
        assert_eq!(accounts.row_estimate, None, "without ANALYZE statistics nothing is counted");
        assert!(find(&tables, "events").key_columns.is_empty(), "a table without a primary key");
        assert_eq!(
            find(&tables, "order_lines").key_columns,
            vec!["order_id".to_string(), "line_no".to_string()],
            "a composite key in key order, not column order"
        );

        Connection::open(&path).expect("reopening").execute_batch("ANALYZE").expect("ANALYZE");
        let tables = catalog.tables(None, Some("MAIN")).await.expect("tables of MAIN (any case)");
        assert_eq!(find(&tables, "accounts").row_estimate, Some(25));
        assert_eq!(find(&tables, "events").row_estimate, Some(7));
        // ANALYZE leaves no statistics for an empty table: still unknown, not a guess.
        assert_eq!(find(&tables, "order_lines").row_estimate, None, "an analyzed empty table");
        assert!(tables.iter().all(|t| !t.name.starts_with("sqlite_")), "sqlite_stat1 is not listed");
    }

    #[tokio::test]
    async fn unknown_sqlite_schemas_databases_and_files_are_not_found() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = create_file(&dir);
        let catalog =
            open_catalog(&format!("sqlite://{}", path.display())).await.expect("opening the catalog");
        expect_not_found(catalog.tables(None, Some("archive")).await, "archive", "an unknown schema");
        // A name that would break out of a quoted identifier is only ever compared, never run.
        expect_not_found(
            catalog.tables(None, Some("main\".sqlite_master --")).await,
            "main\".sqlite_master --",
            "a schema name with a quote",
        );
        expect_not_found(catalog.schemas(Some("shop")).await, "shop", "a database inside an SQLite file");
        expect_not_found(
            catalog.tables(Some("shop"), None).await,
            "shop",
            "a database inside an SQLite file",
        );
        let empty = catalog.tables(None, Some("")).await.expect_err("an empty schema name");
        assert_eq!(empty.kind(), ErrorKind::InvalidInput, "{empty}");

        let missing = dir.path().join("missing.db");
        let e = open_error(&format!("sqlite://{}", missing.display()), "a missing file").await;
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(!missing.exists(), "opening a catalog must not create the file");
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::postgres_support::{connect, pg_url, TestSchema};
    use super::*;
    use unistore_adapters::open_catalog;

    /// The URL of database `postgres` on the test server (the pgbench tables live there).
    fn postgres_db_url() -> String {
        let url = pg_url();
        let (head, query) = url.split_once('?').map_or((url.as_str(), None), |(h, q)| (h, Some(q)));
        let base = head.rsplit_once('/').map_or(head, |(b, _)| b);
        match query {
            Some(q) => format!("{base}/postgres?{q}"),
            None => format!("{base}/postgres"),
        }
    }

    /// `pgbench -i -s 10` into database `postgres` when its tables are missing, as the test
    /// machines are set up (TESTING.md); then ANALYZE, so that the estimate is fresh.
    async fn ensure_pgbench() {
        let url = postgres_db_url();
        let client = connect(&url).await;
        let present = client
            .query_opt("SELECT 1 FROM pg_class WHERE relname = 'pgbench_accounts' AND relkind = 'r'", &[])
            .await
            .expect("looking for pgbench_accounts")
            .is_some();
        if !present {
            let out = std::process::Command::new("pgbench")
                .args(["-i", "-s", "10", "-q", &url])
                .output()
                .unwrap_or_else(|e| {
                    panic!("pgbench_accounts is missing in database postgres and pgbench cannot run: {e}")
                });
            assert!(
                out.status.success(),
                "pgbench -i -s 10 failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        client.batch_execute("ANALYZE pgbench_accounts").await.expect("ANALYZE pgbench_accounts");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pgbench_accounts_is_listed_with_its_key_and_estimate() {
        ensure_pgbench().await;
        // Connected to database `test`; database `postgres` is listed through a connection of its own.
        let catalog = open_catalog(&pg_url()).await.expect("opening the catalog");
        let databases = catalog.databases().await.expect("databases");
        for db in ["postgres", "test"] {
            assert!(databases.iter().any(|d| d == db), "database {db} not listed: {databases:?}");
        }
        assert!(!databases.iter().any(|d| d.starts_with("template")), "template databases: {databases:?}");
        let schemas = catalog.schemas(Some("postgres")).await.expect("schemas of postgres");
        assert!(schemas.iter().any(|s| s == "public"), "{schemas:?}");
        for system in ["pg_catalog", "information_schema", "pg_toast"] {
            assert!(!schemas.iter().any(|s| s == system), "system schema {system} listed: {schemas:?}");
        }

        let tables =
            catalog.tables(Some("postgres"), Some("public")).await.expect("tables of postgres.public");
        let accounts = find(&tables, "pgbench_accounts");
        assert_eq!(accounts.database.as_deref(), Some("postgres"));
        assert_eq!(accounts.schema.as_deref(), Some("public"));
        assert_eq!(accounts.table_type, TableType::Postgres);
        assert_eq!(accounts.key_columns, vec!["aid".to_string()]);
        let estimate = accounts.row_estimate.expect("an analyzed table has an estimate");
        assert!(
            (950_000..=1_050_000).contains(&estimate),
            "row estimate {estimate}, expected about 1,000,000"
        );
        assert_eq!(find(&tables, "pgbench_branches").key_columns, vec!["bid".to_string()]);
        assert!(find(&tables, "pgbench_history").key_columns.is_empty(), "pgbench_history has no key");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fresh_schema_lists_a_composite_key_and_unknown_names_are_not_found() {
        let schema = TestSchema::create(&pg_url()).await;
        let s = &schema.name;
        connect(&schema.url)
            .await
            .batch_execute(&format!(
                "CREATE TABLE {s}.line_items (sku text, line_no int, order_id bigint, PRIMARY KEY (order_id, line_no));
                 INSERT INTO {s}.line_items SELECT 'sku-' || i, i % 10, i / 10 FROM generate_series(1, 300) i;
                 ANALYZE {s}.line_items;
                 CREATE TABLE {s}.notes (body text);"
            ))
            .await
            .expect("creating the tables");
        let catalog = open_catalog(&pg_url()).await.expect("opening the catalog");
        assert!(catalog.schemas(None).await.expect("schemas").contains(s), "the fresh schema is listed");

        let tables = catalog.tables(None, Some(s)).await.expect("tables of the fresh schema");
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["line_items", "notes"]);
        let items = find(&tables, "line_items");
        assert_eq!(items.database.as_deref(), Some("test"));
        assert_eq!(items.schema.as_deref(), Some(s.as_str()));
        assert_eq!(items.key_columns, vec!["order_id".to_string(), "line_no".to_string()], "key order");
        assert_eq!(items.row_estimate, Some(300));
        let notes = find(&tables, "notes");
        assert!(notes.key_columns.is_empty());
        assert_eq!(notes.row_estimate, None, "a table never analyzed has no estimate");
        let everywhere = catalog.tables(None, None).await.expect("tables of every schema");
        assert!(everywhere.iter().any(|t| t.schema.as_deref() == Some(s.as_str()) && t.name == "line_items"));
        assert!(
            !everywhere.iter().any(|t| t.schema.as_deref() == Some("pg_catalog")),
            "system tables listed"
        );

        expect_not_found(
            catalog.tables(None, Some("no_such_schema")).await,
            "no_such_schema",
            "unknown schema",
        );
        // Bound as a parameter: an injection attempt is just a name that does not exist.
        let sneaky = "public' OR '1'='1";
        expect_not_found(catalog.tables(None, Some(sneaky)).await, sneaky, "a schema name with quotes");
        expect_not_found(catalog.schemas(Some("no_such_db")).await, "no_such_db", "unknown database");
        expect_not_found(catalog.tables(Some("no_such_db"), None).await, "no_such_db", "unknown database");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_password_in_the_url_never_reaches_an_error() {
        let url = pg_url().replacen("postgres://postgres@", "postgres://postgres:Sekret-Pw-42@", 1);
        assert!(url.contains("Sekret-Pw-42"), "the test URL has the expected shape: {url}");
        // Trust authentication: the password is accepted and ignored.
        let catalog = open_catalog(&url).await.expect("a URL with a password opens");
        catalog.databases().await.expect("databases");
        let missing_db =
            format!("{}/no_such_database_{}", url.rsplit_once('/').map_or(&url[..], |(b, _)| b), 7);
        let e = open_error(&missing_db, "a database that does not exist").await;
        assert!(!e.to_string().contains("Sekret-Pw-42"), "the password leaked: {e}");
        assert!(!format!("{e:?}").contains("Sekret-Pw-42"), "the password leaked: {e:?}");
        let e = open_error(
            "postgres://postgres:Sekret-Pw-42@127.0.0.1:1/test?connect_timeout=2",
            "nothing listens on port 1",
        )
        .await;
        assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
        assert!(!format!("{e} {e:?}").contains("Sekret-Pw-42"), "the password leaked: {e:?}");
    }
}

#[cfg(feature = "snowflake")]
mod snowflake {
    use super::snowflake_support::{emulator_url, fresh_schema, url_with_schema};
    use super::*;
    use unistore_adapters::open_catalog;
    use unistore_adapters::snowflake::execute_statements;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_emulator_lists_types_keys_and_row_counts() {
        let schema = fresh_schema("catalog");
        let url = url_with_schema(&schema);
        execute_statements(
            &url,
            &[
                format!("CREATE SCHEMA IF NOT EXISTS UNISTORE_TEST.{schema}"),
                format!("USE SCHEMA UNISTORE_TEST.{schema}"),
                "CREATE TABLE ORDER_LINES (SKU VARCHAR, LINE_NO INT, ORDER_ID INT, PRIMARY KEY (ORDER_ID, LINE_NO))"
                    .into(),
                "INSERT INTO ORDER_LINES VALUES ('a', 1, 10), ('b', 2, 10), ('c', 1, 11)".into(),
                "CREATE HYBRID TABLE ACCOUNTS (ID INT PRIMARY KEY, NAME VARCHAR)".into(),
                "CREATE TABLE NOTES (BODY VARCHAR)".into(),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("creating the tables failed: {e}"));
        let catalog = open_catalog(&emulator_url()).await.expect("opening the catalog");
        let databases = catalog.databases().await.expect("databases");
        assert!(databases.iter().any(|d| d == "UNISTORE_TEST"), "{databases:?}");
        let schemas = catalog.schemas(None).await.expect("schemas of the URL's database");
        assert!(schemas.contains(&schema), "{schema} not in {schemas:?}");
        assert!(!schemas.iter().any(|s| s.eq_ignore_ascii_case("INFORMATION_SCHEMA")), "{schemas:?}");

        // A plain name resolves in any case, as Snowflake resolves it.
        let lower = schema.to_ascii_lowercase();
        let tables = catalog.tables(Some("unistore_test"), Some(&lower)).await.expect("tables");
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["ACCOUNTS", "NOTES", "ORDER_LINES"]);
        let lines = find(&tables, "ORDER_LINES");
        assert_eq!(lines.database.as_deref(), Some("UNISTORE_TEST"));
        assert_eq!(lines.schema.as_deref(), Some(schema.as_str()));
        assert_eq!(lines.table_type, TableType::Standard);
        assert_eq!(lines.key_columns, vec!["ORDER_ID".to_string(), "LINE_NO".to_string()], "key order");
        assert_eq!(lines.row_estimate, Some(3));
        let accounts = find(&tables, "ACCOUNTS");
        assert_eq!(accounts.table_type, TableType::Hybrid, "the type the table managers detect");
        assert_eq!(accounts.key_columns, vec!["ID".to_string()]);
        assert!(find(&tables, "NOTES").key_columns.is_empty());
        let whole = catalog.tables(None, None).await.expect("tables of the whole database");
        assert!(
            whole.iter().any(|t| t.schema.as_deref() == Some(schema.as_str()) && t.name == "ORDER_LINES"),
            "a database-wide listing holds the schema's tables"
        );

        expect_not_found(
            catalog.tables(None, Some("NO_SUCH_SCHEMA")).await,
            "NO_SUCH_SCHEMA",
            "unknown schema",
        );
        expect_not_found(catalog.schemas(Some("NO_SUCH_DB")).await, "NO_SUCH_DB", "unknown database");
        expect_not_found(
            catalog.tables(Some("NO_SUCH_DB"), Some(&schema)).await,
            "NO_SUCH_DB",
            "unknown database",
        );
        execute_statements(&url, &[format!("DROP SCHEMA IF EXISTS UNISTORE_TEST.{schema}")])
            .await
            .unwrap_or_else(|e| panic!("dropping the schema failed: {e}"));
    }
}
