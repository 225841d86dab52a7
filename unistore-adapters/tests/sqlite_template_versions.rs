//! Template versions in the SQLite results store beyond the shared suite: a store file made
//! before versions existed is brought up to date when opened (its templates become version 1,
//! its runs stay readable), and two stores on one file (as two processes would be) never give
//! two contents one version.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use rusqlite::{params, Connection};
use unistore_adapters::open_results;
use unistore_core::{QueryKind, RunId, StoredTemplate, Template};

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn template(name: &str) -> Template {
    let mut t = Template::new("demo_orders", BTreeMap::from([(QueryKind::PointLookup, 100)]));
    t.name = name.to_string();
    t
}

/// The results tables as the first releases made them: no versions, fewer run columns.
const OLD_SCHEMA: &str = "
CREATE TABLE TEST_TEMPLATES (
    TEMPLATE_ID TEXT NOT NULL PRIMARY KEY, NAME TEXT NOT NULL, TEMPLATE_JSON TEXT NOT NULL,
    UPDATED_AT TEXT NOT NULL);
CREATE TABLE TEST_RESULTS (
    RUN_ID TEXT NOT NULL, WORKER_ID TEXT NOT NULL DEFAULT '', TEMPLATE_NAME TEXT NOT NULL,
    TARGET_KIND TEXT NOT NULL, TABLE_NAME TEXT NOT NULL, TABLE_TYPE TEXT NOT NULL, MODE TEXT NOT NULL,
    STATUS TEXT NOT NULL, STARTED_AT TEXT NOT NULL, DURATION_S REAL NOT NULL, OPS INTEGER NOT NULL,
    ERRORS INTEGER NOT NULL, QPS REAL NOT NULL, P50_MS REAL NOT NULL, P95_MS REAL NOT NULL,
    P99_MS REAL NOT NULL, SUMMARY_JSON TEXT NOT NULL, PRIMARY KEY (RUN_ID, WORKER_ID));
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_made_before_versions_is_brought_up_to_date_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old-results.db");
    let old = template("bench-demo_orders");
    let saved_at = "2025-03-01T10:00:00.000000000Z";
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(OLD_SCHEMA).unwrap();
        conn.execute(
            "INSERT INTO TEST_TEMPLATES VALUES (?1, ?2, ?3, ?4)",
            params!["bench-demo_orders", old.name, serde_json::to_string(&old).unwrap(), saved_at],
        )
        .unwrap();
    }
    let store = open_results(&url(&path)).await.unwrap_or_else(|e| panic!("opening an older store: {e}"));
    let expected = StoredTemplate {
        template_id: "bench-demo_orders".into(),
        template: old.clone(),
        version: 1,
        updated_at: saved_at.parse().unwrap(),
    };
    assert_eq!(store.reader.template("bench-demo_orders").await.unwrap(), Some(expected.clone()));
    assert_eq!(store.reader.template_versions("bench-demo_orders").await.unwrap(), vec![expected.clone()]);

    // Opening again (another command) changes nothing.
    drop(store);
    let store = open_results(&url(&path)).await.unwrap_or_else(|e| panic!("opening the store again: {e}"));
    assert_eq!(store.reader.template_versions("bench-demo_orders").await.unwrap(), vec![expected]);

    // The next flag-built run with other flags is version 2, and the first stays.
    let mut flags = old.clone();
    flags.load = unistore_core::template::LoadMode::Concurrency { connections: 2 };
    let next = StoredTemplate {
        template_id: "bench-demo_orders".into(),
        template: flags,
        version: 0,
        updated_at: Utc::now(),
    };
    assert_eq!(store.sink.save_template_version(&next).await.unwrap(), Some(2));
    let versions = store.reader.template_versions("bench-demo_orders").await.unwrap();
    assert_eq!(
        versions.iter().map(|t| (t.version, &t.template)).collect::<Vec<_>>(),
        vec![(1, &old), (2, &next.template)]
    );
    let conn = Connection::open(&path).unwrap();
    let column: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('TEST_RESULTS') WHERE name = 'TEMPLATE_VERSION'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(column, 1, "TEST_RESULTS gained TEMPLATE_VERSION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_never_give_two_contents_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let shared = url(&dir.path().join("results.db"));
    let stores = [open_results(&shared).await.unwrap(), open_results(&shared).await.unwrap()];
    let id = format!("shared-{}", RunId::new());
    let savers = 12;
    let start = Arc::new(tokio::sync::Barrier::new(savers));
    let mut tasks = Vec::new();
    for i in 0..savers {
        let sink = stores[i % 2].sink.clone();
        let start = start.clone();
        let mut content = template(&id);
        content.values.pool_size = 100 + i;
        let stored =
            StoredTemplate { template_id: id.clone(), template: content, version: 0, updated_at: Utc::now() };
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            // Each saver saves its content twice: the second save must find it current or
            // make a new version, never reuse another content's number.
            let first = sink.save_template_version(&stored).await.unwrap().unwrap();
            let second = sink.save_template_version(&stored).await.unwrap().unwrap();
            (first, second, stored.template)
        }));
    }
    let mut saved = Vec::new();
    for task in tasks {
        saved.push(task.await.unwrap());
    }
    let versions = stores[1].reader.template_versions(&id).await.unwrap();
    let numbers: Vec<u32> = versions.iter().map(|t| t.version).collect();
    assert_eq!(numbers, (1..=numbers.len() as u32).collect::<Vec<_>>(), "versions are 1..=n without gaps");
    assert!(numbers.len() >= savers, "{savers} different contents made only {} versions", numbers.len());
    for (first, second, content) in &saved {
        for v in [first, second] {
            assert_eq!(&versions[*v as usize - 1].template, content, "version {v} holds another content");
        }
        assert!(second >= first, "a later save of the same content got an older version");
    }
    let current = stores[0].reader.template(&id).await.unwrap().unwrap();
    assert_eq!(Some(&current), versions.last(), "the current template is the latest version");
}
