//! Conformance checks for listing runs a page at a time ([`ResultsReader::runs_page`]) and for
//! deleting a run ([`ResultsReader::delete_run`]).
//!
//! The runs of a check share a template name of their own, and every listing asks for it, so
//! the checks hold on a store that also holds other runs (other tests, earlier test runs).

use chrono::{DateTime, Duration as ChronoDuration, Utc};

use super::now_ms;
use super::stores::{record, snapshot, summary};
use crate::metrics::QueryExecution;
use crate::model::{QueryKind, RunId, RunPhase, RunStatus, TableType};
use crate::sink::{ResultsReader, ResultsSink, RunFilter, RunListEntry, RunPage};

/// The listed runs of this check, by the order they were started in.
struct Runs {
    tag: String,
    ids: Vec<RunId>,
    base: DateTime<Utc>,
}

impl Runs {
    fn filter(&self) -> RunFilter {
        RunFilter { template_name: Some(self.tag.clone()), limit: 100, ..RunFilter::default() }
    }

    /// Ids of runs by index, newest first (the listing's order).
    fn newest_first(&self, indexes: &[usize]) -> Vec<RunId> {
        let mut indexes = indexes.to_vec();
        indexes.sort_unstable_by(|a, b| b.cmp(a));
        indexes.into_iter().map(|i| self.ids[i]).collect()
    }
}

async fn page(reader: &dyn ResultsReader, filter: &RunFilter) -> RunPage {
    reader.runs_page(filter).await.unwrap_or_else(|e| panic!("runs_page({filter:?}) failed: {e}"))
}

fn ids(page: &RunPage) -> Vec<RunId> {
    page.runs.iter().map(|r| r.run_id).collect()
}

/// Asks `filter` (on top of the check's template name) and expects exactly the runs `indexes`.
async fn expect(reader: &dyn ResultsReader, runs: &Runs, what: &str, filter: RunFilter, indexes: &[usize]) {
    let listed = page(reader, &filter).await;
    let expected = runs.newest_first(indexes);
    assert_eq!(ids(&listed), expected, "{what}: listed runs (newest first) differ");
    assert_eq!(listed.total, expected.len() as u64, "{what}: total");
    for entry in &listed.runs {
        assert!(entry.worker_id.is_none(), "{what}: a worker's row was listed: {entry:?}");
        assert!(filter.matches(entry), "{what}: a listed run does not pass the filter: {entry:?}");
    }
}

fn execution(run_id: RunId, at: DateTime<Utc>) -> QueryExecution {
    QueryExecution {
        run_id,
        worker_id: "worker-0".into(),
        connection: 0,
        kind: QueryKind::PointLookup,
        phase: RunPhase::Measurement,
        started_at: at,
        response_us: 120,
        service_us: 100,
        rows: 1,
        ok: true,
        error_kind: None,
    }
}

/// Writes five runs of one template that differ in table, type, status and start (one of them
/// only begun, one with a worker's row), and the snapshots and executions of two of them.
async fn write_runs(sink: &dyn ResultsSink) -> Runs {
    let tag = format!("listing-{}", RunId::new());
    let base = now_ms() - ChronoDuration::hours(1);
    let ids: Vec<RunId> = (0..5).map(|_| RunId::new()).collect();
    let finished = [
        (0, "shop.public.orders", TableType::Postgres, RunStatus::Completed),
        (1, "orders", TableType::Hybrid, RunStatus::Failed),
        (2, "customers", TableType::Postgres, RunStatus::Completed),
        (3, "public.orders_old", TableType::Standard, RunStatus::Cancelled),
    ];
    for (i, table, table_type, status) in finished {
        let mut s = summary(ids[i], None, base + ChronoDuration::minutes(i as i64), 100 + i as u64 * 50);
        s.template = tag.clone();
        s.table = table.to_string();
        s.table_type = table_type;
        s.status = status;
        sink.write_summary(&s).await.unwrap_or_else(|e| panic!("writing the summary of run {i} failed: {e}"));
    }
    // A worker's row of run 0, with another table and status: never listed by runs_page.
    let mut worker = summary(ids[0], Some("worker-1"), base, 40);
    worker.template = tag.clone();
    worker.table = "customers".into();
    worker.status = RunStatus::Failed;
    sink.write_summary(&worker).await.expect("writing a worker's summary");
    // Run 4 is only begun: RUNNING, with its template id.
    let mut begun = record(ids[4], base + ChronoDuration::minutes(4), ChronoDuration::hours(3));
    begun.template.name = tag.clone();
    begun.table = "public.orders".into();
    begun.table_type = TableType::Sqlite;
    sink.begin_run(&begun).await.unwrap_or_else(|e| panic!("begin_run failed: {e}"));
    for i in [0, 2] {
        let at = base + ChronoDuration::minutes(i as i64);
        let snaps: Vec<_> = (1..=3)
            .map(|seq| snapshot(ids[i], "worker-0", seq, at + ChronoDuration::seconds(seq as i64)))
            .collect();
        sink.write_snapshots(&snaps).await.expect("writing snapshots");
        let rows: Vec<_> = (0..4).map(|k| execution(ids[i], at + ChronoDuration::milliseconds(k))).collect();
        sink.write_query_executions(&rows).await.expect("writing query executions");
    }
    Runs { tag, ids, base }
}

/// Checks the filters, the paging and the fields of [`ResultsReader::runs_page`].
async fn check_pages(reader: &dyn ResultsReader, runs: &Runs) {
    let all = runs.filter();
    expect(reader, runs, "the template's runs", all.clone(), &[0, 1, 2, 3, 4]).await;

    let listed = page(reader, &all).await;
    let entry = |i: usize| -> &RunListEntry {
        listed.runs.iter().find(|r| r.run_id == runs.ids[i]).unwrap_or_else(|| panic!("run {i} not listed"))
    };
    let expected = summary(runs.ids[2], None, runs.base, 200);
    let customers = entry(2);
    assert_eq!(customers.table, "customers");
    assert_eq!(customers.table_type, Some(TableType::Postgres));
    assert_eq!(customers.status, "COMPLETED");
    assert_eq!(customers.started_at, runs.base + ChronoDuration::minutes(2));
    assert_eq!(customers.ops, expected.total.ops);
    assert_eq!(customers.errors, Some(expected.total.errors), "errors of a listed run");
    let p95 = customers.p95_ms.expect("p95 of a finished run");
    assert!(
        (p95 - expected.total.latency_ms.p95).abs() < 1e-6,
        "listed p95 {p95} != {}",
        expected.total.latency_ms.p95
    );
    assert_eq!(entry(4).status, "RUNNING");
    assert_eq!(entry(4).table_type, Some(TableType::Sqlite));
    assert_eq!(entry(4).template_id.as_deref(), Some("conformance"), "template id of a begun run");

    let with = |f: fn(&mut RunFilter)| {
        let mut filter = runs.filter();
        f(&mut filter);
        filter
    };
    // The table as analysis::same_table matches it: any case, and a bare name matches the last
    // part of a qualified one (but not a longer name that ends like it).
    expect(reader, runs, "table `orders`", with(|f| f.table = Some("orders".into())), &[0, 1, 4]).await;
    expect(reader, runs, "table `ORDERS`", with(|f| f.table = Some(" ORDERS ".into())), &[0, 1, 4]).await;
    expect(reader, runs, "table `public.orders`", with(|f| f.table = Some("public.orders".into())), &[4])
        .await;
    expect(reader, runs, "table `nowhere`", with(|f| f.table = Some("nowhere".into())), &[]).await;
    expect(reader, runs, "type hybrid", with(|f| f.table_type = Some(TableType::Hybrid)), &[1]).await;
    expect(reader, runs, "type postgres", with(|f| f.table_type = Some(TableType::Postgres)), &[0, 2]).await;
    expect(reader, runs, "status COMPLETED", with(|f| f.status = Some(vec![RunStatus::Completed])), &[0, 2])
        .await;
    expect(
        reader,
        runs,
        "status FAILED or RUNNING",
        with(|f| f.status = Some(vec![RunStatus::Failed, RunStatus::Running])),
        &[1, 4],
    )
    .await;
    expect(reader, runs, "no status given", with(|f| f.status = Some(Vec::new())), &[0, 1, 2, 3, 4]).await;
    let at = |minutes: i64| runs.base + ChronoDuration::minutes(minutes);
    let mut since = runs.filter();
    since.since = Some(at(1));
    expect(reader, runs, "since run 1's start (inclusive)", since.clone(), &[1, 2, 3, 4]).await;
    let mut until = runs.filter();
    until.until = Some(at(2));
    expect(reader, runs, "until run 2's start (inclusive)", until, &[0, 1, 2]).await;
    since.until = Some(at(2));
    expect(reader, runs, "between runs 1 and 2", since, &[1, 2]).await;
    let mut combined = runs.filter();
    combined.table = Some("orders".into());
    combined.status = Some(vec![RunStatus::Completed, RunStatus::Running]);
    expect(reader, runs, "table `orders`, COMPLETED or RUNNING", combined, &[0, 4]).await;
    let mut other = runs.filter();
    other.template_name = Some(format!("{}-other", runs.tag));
    expect(reader, runs, "another template", other, &[]).await;

    // Pages: disjoint, in order, together the whole listing; the total on every page.
    let mut seen = Vec::new();
    for (offset, size) in [(0, 2), (2, 2), (4, 1), (6, 0)] {
        let mut filter = runs.filter();
        filter.limit = 2;
        filter.offset = offset;
        let p = page(reader, &filter).await;
        assert_eq!(p.runs.len(), size, "page at offset {offset} holds {} runs", p.runs.len());
        assert_eq!(p.total, 5, "total on the page at offset {offset}");
        for id in ids(&p) {
            assert!(!seen.contains(&id), "run {id} is on two pages");
            seen.push(id);
        }
    }
    assert_eq!(seen, runs.newest_first(&[0, 1, 2, 3, 4]), "the pages together are the listing");
    let mut none = runs.filter();
    none.limit = 0;
    let empty = page(reader, &none).await;
    assert!(empty.runs.is_empty(), "limit 0 lists nothing");
    assert_eq!(empty.total, 5, "limit 0 still counts");
}

/// Checks that deleting a run removes its rows everywhere and nothing of another run.
async fn check_delete(reader: &dyn ResultsReader, runs: &Runs) {
    let (gone, kept) = (runs.ids[0], runs.ids[2]);
    assert!(
        reader.delete_run(gone).await.unwrap_or_else(|e| panic!("delete_run failed: {e}")),
        "delete of a stored run"
    );
    assert_eq!(reader.summary(gone, None).await.expect("reading"), None, "the deleted run's row");
    assert_eq!(
        reader.summary(gone, Some("worker-1")).await.expect("reading"),
        None,
        "the deleted run's worker row"
    );
    assert!(reader.snapshots(gone).await.expect("reading").is_empty(), "the deleted run's snapshots");
    assert!(
        reader.query_executions(gone, 100).await.expect("reading").is_empty(),
        "the deleted run's executions"
    );
    assert!(
        !reader.runs(100_000).await.expect("listing").iter().any(|r| r.run_id == gone),
        "the deleted run is still in runs()"
    );
    expect(reader, runs, "after the delete", runs.filter(), &[1, 2, 3, 4]).await;

    let kept_summary = reader.summary(kept, None).await.expect("reading").expect("the other run's row");
    assert_eq!(kept_summary.table, "customers", "the other run's row");
    assert_eq!(reader.snapshots(kept).await.expect("reading").len(), 3, "the other run's snapshots");
    assert_eq!(
        reader.query_executions(kept, 100).await.expect("reading").len(),
        4,
        "the other run's executions"
    );
    assert!(reader.run_record(runs.ids[4], None).await.expect("reading").is_some(), "the begun run's record");

    assert!(!reader.delete_run(gone).await.expect("deleting again"), "deleting a run twice returned true");
    assert!(
        !reader.delete_run(RunId::new()).await.expect("deleting"),
        "deleting an unknown run returned true"
    );
    // Leave nothing of this check behind in a shared store.
    for id in &runs.ids[1..] {
        assert!(reader.delete_run(*id).await.expect("deleting"), "deleting run {id}");
    }
    expect(reader, runs, "after deleting every run", runs.filter(), &[]).await;
}

/// Checks [`ResultsReader::runs_page`] (each filter, paging, totals, the listed fields) and
/// [`ResultsReader::delete_run`] (everything of one run goes, nothing of another).
pub(super) async fn check_run_listing(sink: &dyn ResultsSink, reader: &dyn ResultsReader) {
    let runs = write_runs(sink).await;
    check_pages(reader, &runs).await;
    check_delete(reader, &runs).await;
}
