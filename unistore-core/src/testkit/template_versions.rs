//! Conformance checks for versioned templates: a save that changes nothing keeps the version, a
//! change becomes a new version with the old ones still readable, a run's row names the version
//! it ran, and concurrent saves of different contents never share a version.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::Duration as ChronoDuration;

use super::now_ms;
use crate::model::{QueryKind, RunId, TableType};
use crate::sink::{ResultsReader, ResultsSink, RunRecord, StoredTemplate};
use crate::template::{LoadMode, Template};

/// Concurrent savers of one id, each with its own content.
const CONCURRENT_SAVES: usize = 6;

fn template(name: &str) -> Template {
    let mix = BTreeMap::from([(QueryKind::PointLookup, 90), (QueryKind::RangeScan, 10)]);
    let mut t = Template::new("unistore_conformance", mix);
    t.name = name.to_string();
    t
}

async fn save(sink: &dyn ResultsSink, t: &StoredTemplate) -> u32 {
    match sink.save_template_version(t).await {
        Ok(Some(v)) => v,
        Ok(None) => panic!("a store answered no version for template {}", t.template_id),
        Err(e) => panic!("saving template {} failed: {e}", t.template_id),
    }
}

async fn versions(reader: &dyn ResultsReader, id: &str) -> Vec<StoredTemplate> {
    reader.template_versions(id).await.unwrap_or_else(|e| panic!("reading the versions of {id} failed: {e}"))
}

fn with_version(t: &StoredTemplate, version: u32) -> StoredTemplate {
    StoredTemplate { version, ..t.clone() }
}

/// Versions of one id: same content keeps its version, a change is the next version, history
/// stays readable, delete removes it all.
async fn check_versions(sink: &dyn ResultsSink, reader: &dyn ResultsReader) {
    let base = now_ms();
    let id = format!("versions-{}", RunId::new());
    let first =
        StoredTemplate { template_id: id.clone(), template: template(&id), version: 0, updated_at: base };
    assert_eq!(save(sink, &first).await, 1, "the first save of an id is version 1");
    let unchanged =
        StoredTemplate { updated_at: base + ChronoDuration::seconds(5), version: 7, ..first.clone() };
    assert_eq!(save(sink, &unchanged).await, 1, "saving the same content again must keep version 1");
    sink.save_template(&unchanged).await.unwrap_or_else(|e| panic!("save_template failed: {e}"));
    let v1 = with_version(&first, 1);
    assert_eq!(
        reader.template(&id).await.expect("reading a template"),
        Some(v1.clone()),
        "an unchanged save must change nothing (not even updated_at)"
    );
    assert_eq!(versions(reader, &id).await, vec![v1.clone()], "one content, one version");

    let mut changed = StoredTemplate { updated_at: base + ChronoDuration::seconds(10), ..first.clone() };
    changed.template.load = LoadMode::Qps { target_qps: 250.5, connections: 3 };
    changed.template.sample_rate = 0.125;
    assert_eq!(save(sink, &changed).await, 2, "a changed template is version 2");
    let v2 = with_version(&changed, 2);
    assert_eq!(reader.template(&id).await.expect("reading a template"), Some(v2.clone()), "current version");
    assert_eq!(versions(reader, &id).await, vec![v1.clone(), v2.clone()], "version 1 must stay readable");

    // Going back to the first content is a change from the latest: a history, not a set.
    let back = StoredTemplate { updated_at: base + ChronoDuration::seconds(15), ..first.clone() };
    assert_eq!(save(sink, &back).await, 3, "returning to an older content is a new version");
    let v3 = with_version(&back, 3);
    assert_eq!(versions(reader, &id).await, vec![v1, v2, v3.clone()], "three versions, oldest first");
    let listed = reader.templates().await.expect("listing templates");
    let mine: Vec<_> = listed.iter().filter(|t| t.template_id == id).collect();
    assert_eq!(mine, vec![&v3], "the listing holds the current version once");

    assert!(
        reader.delete_template(&id).await.expect("deleting a template"),
        "delete of a versioned template"
    );
    assert_eq!(reader.template(&id).await.expect("reading a template"), None, "deleted template readable");
    assert!(versions(reader, &id).await.is_empty(), "deleting a template must delete its versions");
    assert!(versions(reader, "unistore-no-such-template").await.is_empty(), "versions of an unknown id");
}

/// A run's row names the template version it ran, and reads back as it was begun.
async fn check_run_links_version(sink: &dyn ResultsSink, reader: &dyn ResultsReader) {
    let now = now_ms();
    let id = format!("linked-{}", RunId::new());
    let mut stored =
        StoredTemplate { template_id: id.clone(), template: template(&id), version: 0, updated_at: now };
    assert_eq!(save(sink, &stored).await, 1);
    stored.template.allow_writes = true;
    let version = save(sink, &stored).await;
    assert_eq!(version, 2, "a changed template is version 2");
    let begun = RunRecord {
        run_id: RunId::new(),
        worker_id: None,
        template_id: id.clone(),
        template_version: Some(version),
        template: stored.template.clone(),
        target: "postgres://bench@db.example:5432/app".into(),
        target_kind: "testkit".into(),
        table: "unistore_conformance".into(),
        table_type: TableType::Postgres,
        seed: u64::MAX - 3,
        started_at: now,
        planned_end_at: now + ChronoDuration::seconds(90),
    };
    sink.begin_run(&begun).await.unwrap_or_else(|e| panic!("begin_run failed: {e}"));
    let read = reader
        .run_record(begun.run_id, None)
        .await
        .unwrap_or_else(|e| panic!("reading a run record failed: {e}"));
    assert_eq!(
        read.as_ref(),
        Some(&begun),
        "the run's row must read back as begun, with its template version"
    );
    let ran = versions(reader, &id).await;
    assert_eq!(
        ran.iter().find(|t| Some(t.version) == begun.template_version).map(|t| &t.template),
        Some(&begun.template),
        "the version the run names must hold the template it ran"
    );

    // A save that was spooled has no version yet: the row records none.
    let unlinked = RunRecord { run_id: RunId::new(), template_version: None, ..begun.clone() };
    sink.begin_run(&unlinked).await.expect("begin_run");
    let read = reader.run_record(unlinked.run_id, None).await.expect("reading a run record");
    assert_eq!(
        read.and_then(|r| r.template_version),
        None,
        "a run without a version must read back without one"
    );
    assert_eq!(
        reader.run_record(RunId::new(), None).await.expect("reading a run record"),
        None,
        "an unknown run"
    );
    assert_eq!(
        reader.run_record(begun.run_id, Some("worker-9")).await.expect("reading a run record"),
        None,
        "an unknown worker of a known run"
    );
    reader.delete_template(&id).await.expect("deleting a template");
}

/// Saves of different contents, started at once, end with distinct versions, each holding the
/// content of the save that got it.
async fn check_concurrent_saves(sink: Arc<dyn ResultsSink>, reader: &dyn ResultsReader) {
    let id = format!("concurrent-{}", RunId::new());
    let start = Arc::new(tokio::sync::Barrier::new(CONCURRENT_SAVES));
    let mut tasks = Vec::new();
    for i in 0..CONCURRENT_SAVES {
        let (sink, start) = (sink.clone(), start.clone());
        let mut content = template(&id);
        content.values.pool_size = 1_000 + i;
        let stored =
            StoredTemplate { template_id: id.clone(), template: content, version: 0, updated_at: now_ms() };
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let version = save(sink.as_ref(), &stored).await;
            (version, stored.template)
        }));
    }
    let mut saved = Vec::new();
    for task in tasks {
        saved.push(task.await.expect("a saving task panicked"));
    }
    let distinct: HashSet<u32> = saved.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        distinct.len(),
        CONCURRENT_SAVES,
        "{CONCURRENT_SAVES} concurrent saves of different contents got versions {:?}",
        saved.iter().map(|(v, _)| v).collect::<Vec<_>>()
    );
    let stored = versions(reader, &id).await;
    let numbers: Vec<u32> = stored.iter().map(|t| t.version).collect();
    let expected: Vec<u32> = (1..=CONCURRENT_SAVES as u32).collect();
    assert_eq!(numbers, expected, "the stored versions of {CONCURRENT_SAVES} different contents");
    for (version, content) in &saved {
        let held = stored.iter().find(|t| t.version == *version).map(|t| &t.template);
        assert_eq!(held, Some(content), "version {version} must hold the content of the save that got it");
    }
    let current = reader.template(&id).await.expect("reading a template").expect("the template exists");
    assert_eq!(current.version, CONCURRENT_SAVES as u32, "the current version is the latest");
    assert_eq!(Some(&current), stored.last(), "the current template is the latest version");
    reader.delete_template(&id).await.expect("deleting a template");
}

/// Checks versioned templates and the run's link to its version.
pub(super) async fn check_template_versions(sink: Arc<dyn ResultsSink>, reader: Arc<dyn ResultsReader>) {
    check_versions(sink.as_ref(), reader.as_ref()).await;
    check_run_links_version(sink.as_ref(), reader.as_ref()).await;
    check_concurrent_saves(sink, reader.as_ref()).await;
}
