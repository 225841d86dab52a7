//! Template versions in the PostgreSQL results store beyond the shared suite: a store made
//! before versions existed is refused with the command that updates it, and keeps its templates
//! (as version 1) once updated; several stores (as several processes would be) racing for the
//! first versions of new ids never give two contents one version.
#![cfg(feature = "postgres")]

mod postgres_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use postgres_support::{connect, pg_url, TestSchema};
use unistore_adapters::{open_results, postgres};
use unistore_core::{ErrorKind, QueryKind, RunId, StoredTemplate, Template};

fn template(name: &str) -> Template {
    let mut t = Template::new("public.orders", BTreeMap::from([(QueryKind::PointLookup, 100)]));
    t.name = name.to_string();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_store_is_refused_until_setup_and_then_keeps_its_templates() {
    let schema = TestSchema::create(&pg_url()).await;
    postgres::apply_schema(&schema.store_url()).await.expect("applying the schema");
    // What a store made before versions looks like, with one template saved by then.
    let old = template("bench-orders");
    let s = &schema.name;
    let client = connect(&schema.url).await;
    client
        .batch_execute(&format!(
            "DROP TABLE {s}.test_template_versions; ALTER TABLE {s}.test_templates DROP COLUMN version; \
             ALTER TABLE {s}.test_results DROP COLUMN template_version"
        ))
        .await
        .expect("making an older store");
    let saved_at = Utc::now() - chrono::Duration::days(3);
    let saved_at = chrono::DateTime::from_timestamp_micros(saved_at.timestamp_micros()).expect("a time");
    client
        .execute(
            &format!("INSERT INTO {s}.test_templates (template_id, name, template, updated_at) VALUES ($1, $2, $3, $4)"),
            &[&"bench-orders", &old.name, &tokio_postgres::types::Json(&old), &saved_at],
        )
        .await
        .expect("saving a template the old way");

    let e = open_results(&schema.store_url()).await.expect_err("an older store must be refused");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let message = e.to_string();
    for expected in ["unistore-worker setup", "test_results.template_version", "test_templates.version"] {
        assert!(message.contains(expected), "the error must name `{expected}`: {message}");
    }

    postgres::apply_schema(&schema.store_url()).await.expect("updating the older store");
    let store = open_results(&schema.store_url()).await.expect("opening the updated store");
    let expected = StoredTemplate {
        template_id: "bench-orders".into(),
        template: old.clone(),
        version: 1,
        updated_at: saved_at,
    };
    assert_eq!(store.reader.template("bench-orders").await.expect("reading"), Some(expected.clone()));
    assert_eq!(
        store.reader.template_versions("bench-orders").await.expect("reading"),
        vec![expected.clone()]
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
    // Applying the file again neither duplicates nor renumbers a version.
    postgres::apply_schema(&schema.store_url()).await.expect("applying the schema again");
    let versions = store.reader.template_versions("bench-orders").await.expect("reading");
    assert_eq!(
        versions.iter().map(|t| (t.version, &t.template)).collect::<Vec<_>>(),
        vec![(1, &old), (2, &next.template)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_racing_for_a_new_ids_first_version_never_share_a_version() {
    let schema = TestSchema::create(&pg_url()).await;
    postgres::apply_schema(&schema.store_url()).await.expect("applying the schema");
    let mut stores = Vec::new();
    for _ in 0..3 {
        let store = open_results(&schema.store_url()).await.expect("opening the results store");
        // Open every connection of the store's pool now, so that the saves below start together
        // instead of one connection set-up apart.
        let reads: Vec<_> = (0..4)
            .map(|_| {
                let reader = store.reader.clone();
                tokio::spawn(async move { reader.template("none").await.expect("reading") })
            })
            .collect();
        for r in reads {
            r.await.expect("a reading task panicked");
        }
        stores.push(store);
    }
    let savers = 9;
    for round in 0..4 {
        let id = format!("race-{round}-{}", RunId::new());
        let start = Arc::new(tokio::sync::Barrier::new(savers));
        let mut tasks = Vec::new();
        for i in 0..savers {
            let sink = stores[i % stores.len()].sink.clone();
            let start = start.clone();
            let mut content = template(&id);
            content.values.pool_size = 10 + i;
            let stored = StoredTemplate {
                template_id: id.clone(),
                template: content,
                version: 0,
                updated_at: Utc::now(),
            };
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                let version =
                    sink.save_template_version(&stored).await.unwrap_or_else(|e| panic!("saving: {e}"));
                (version.expect("a store answers a version"), stored.template)
            }));
        }
        let mut saved = Vec::new();
        for task in tasks {
            saved.push(task.await.expect("a saving task panicked"));
        }
        let mut numbers: Vec<u32> = saved.iter().map(|(v, _)| *v).collect();
        numbers.sort_unstable();
        assert_eq!(
            numbers,
            (1..=savers as u32).collect::<Vec<_>>(),
            "round {round}: versions of {savers} contents"
        );
        let versions = stores[0].reader.template_versions(&id).await.expect("reading versions");
        for (version, content) in &saved {
            assert_eq!(
                &versions[*version as usize - 1].template,
                content,
                "round {round}: version {version}"
            );
        }
    }
}
