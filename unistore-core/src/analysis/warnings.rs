//! What a person must know before trusting a comparison: runs that did not measure the same
//! thing the same way, and runs whose own figures are doubtful.

use std::collections::BTreeMap;

use crate::metrics::ClientInfo;
use crate::model::{QueryKind, RunStatus};

use super::RunData;

/// Relative gap between the server's call count and the client's beyond which a run's
/// figures are doubted (the server also counts other clients' calls, so a small excess is
/// expected).
const SERVER_COUNT_TOLERANCE: f64 = 0.01;

/// A run's short id: the first 8 characters of its id.
pub fn short_id(run: &RunData) -> String {
    run.summary.run_id.to_string().chars().take(8).collect()
}

/// The warnings of a comparison of `runs`, in this order: setup that differs between the runs
/// (table, table type, mix, load mode, connections, client), then each run's own doubts (not
/// completed, late starts, unissued operations, dropped samples, errors, a server count that
/// disagrees with the client's). Each names the runs by their short id.
pub fn compare_warnings(runs: &[RunData]) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut differs = |what: &str, describe: &dyn Fn(&RunData) -> String| {
        let described: Vec<String> = runs.iter().map(describe).collect();
        if described.iter().any(|d| d != &described[0]) {
            let each: Vec<String> =
                runs.iter().zip(&described).map(|(r, d)| format!("{} {d}", short_id(r))).collect();
            warnings.push(format!("different {what}: {}", each.join("; ")));
        }
    };
    differs("tables", &|r| format!("`{}`", r.summary.table));
    differs("table types", &|r| r.summary.table_type.to_string());
    let all_recorded = runs.iter().all(|r| r.record.is_some());
    differs("mixes", &|r| mix_of(r, all_recorded));
    differs("load modes", &|r| match r.summary.target_qps {
        Some(qps) => format!("{} at {qps} ops/s", r.summary.mode),
        None => r.summary.mode.clone(),
    });
    differs("connections", &|r| r.summary.connections.to_string());
    if runs.iter().all(|r| r.summary.client.is_some()) {
        let client = |r: &RunData, f: &dyn Fn(&ClientInfo) -> String| {
            r.summary.client.as_ref().map(f).unwrap_or_default()
        };
        differs("client hosts", &|r| client(r, &|c| c.hosts.join(", ")));
        differs("client workers", &|r| client(r, &|c| c.workers.to_string()));
        differs("client threads per worker", &|r| client(r, &|c| c.threads.to_string()));
        differs("client versions", &|r| client(r, &|c| c.version.clone()));
    }
    for r in runs {
        let id = short_id(r);
        let s = &r.summary;
        if s.client.is_none() {
            warnings.push(format!(
                "{id}: the client is unknown (stored by a version that did not record its hosts, workers \
                 and threads), so differences of client cannot be ruled out"
            ));
        }
        if s.status != RunStatus::Completed {
            let reason = s.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
            warnings.push(format!("{id}: status {}{reason}, not COMPLETED", s.status));
        }
        if s.late_starts > 0 {
            warnings.push(format!(
                "{id}: {} operations started late (largest lag {:.1} ms): the client fell behind its schedule",
                s.late_starts, s.max_start_lag_ms
            ));
        }
        if s.unissued_ops > 0 {
            warnings.push(format!(
                "{id}: {} operations due in the measurement window were never issued: the client fell behind the target rate",
                s.unissued_ops
            ));
        }
        if s.samples_dropped > 0 {
            warnings.push(format!(
                "{id}: {} sampled executions were dropped (persistence fell behind)",
                s.samples_dropped
            ));
        }
        if s.total.errors > 0 {
            warnings.push(format!(
                "{id}: {} failed operations in the measurement window (error rate {:.3} %)",
                s.total.errors,
                s.total.error_rate() * 100.0
            ));
        }
        if let Some(w) = server_count_warning(r) {
            warnings.push(w);
        }
    }
    warnings
}

/// A run's mix: the template's weights when every run has its record (so weights can be
/// compared), otherwise the kinds the run executed.
fn mix_of(run: &RunData, use_template: bool) -> String {
    let kinds: BTreeMap<QueryKind, u32> = match (&run.record, use_template) {
        (Some(record), true) => {
            record.template.mix.iter().filter(|(_, w)| **w > 0).map(|(k, w)| (*k, *w)).collect()
        }
        _ => {
            let executed = |k: &QueryKind| {
                run.summary.by_kind.get(k).is_some_and(|s| s.ops + s.errors > 0)
                    || run.record.as_ref().is_some_and(|r| r.template.mix.get(k).is_some_and(|w| *w > 0))
            };
            return QueryKind::ALL
                .iter()
                .filter(|k| executed(k))
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join("+");
        }
    };
    let total: u32 = kinds.values().sum();
    kinds
        .iter()
        .map(|(k, w)| format!("{k} {:.0} %", f64::from(*w) * 100.0 / f64::from(total.max(1))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The server-side figures that cover the run: the `pg_stat_statements` delta of a
/// single-worker run, or the `run` part of a multi-worker run's merged figures.
fn run_server_figures(stats: &serde_json::Value) -> Option<&serde_json::Value> {
    if stats.get("source").and_then(|s| s.as_str()) == Some("pg_stat_statements") {
        return Some(stats);
    }
    stats.get("run").filter(|r| r.get("source").and_then(|s| s.as_str()) == Some("pg_stat_statements"))
}

/// The table's own name (no database or schema, no quotes): what the statements' text holds.
fn bare_table_name(table: &str) -> String {
    table.rsplit('.').next().unwrap_or(table).trim_matches(|c| c == '"' || c == '`').to_string()
}

/// A warning when the server executed more than 1 % more or fewer statements on the run's
/// table than the client counted (all phases: operations completed plus failed).
fn server_count_warning(run: &RunData) -> Option<String> {
    let figures = run_server_figures(run.summary.server_stats.as_ref()?)?;
    let table = bare_table_name(&run.summary.table);
    let server: u64 = figures
        .get("statements")?
        .as_array()?
        .iter()
        .filter(|s| s.get("query").and_then(|q| q.as_str()).is_some_and(|q| q.contains(&table)))
        .filter_map(|s| s.get("calls").and_then(|c| c.as_u64()))
        .sum();
    let client = run.summary.completed_ops_all_phases + run.summary.total.errors;
    let gap = server.abs_diff(client) as f64;
    (gap > SERVER_COUNT_TOLERANCE * client.max(1) as f64).then(|| {
        format!(
            "{}: the server counted {server} calls on `{table}` (pg_stat_statements) but the client {client} \
             operations ({:+.1} %); the server also counts other clients",
            short_id(run),
            (server as f64 - client as f64) / client.max(1) as f64 * 100.0
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::quick_run;
    use crate::metrics::ClientInfo;
    use crate::model::TableType;

    fn client(host: &str, threads: u32) -> Option<ClientInfo> {
        Some(ClientInfo { hosts: vec![host.into()], workers: 1, threads, version: "0.1.0".into() })
    }

    fn two_alike() -> [RunData; 2] {
        let [mut a, mut b] = [quick_run(1), quick_run(2)];
        for r in [&mut a, &mut b] {
            r.summary.client = client("bench-1", 4);
        }
        [a, b]
    }

    fn one_with<'a>(warnings: &'a [String], needle: &str) -> &'a str {
        let found: Vec<&String> = warnings.iter().filter(|w| w.contains(needle)).collect();
        assert_eq!(found.len(), 1, "one warning with `{needle}`: {warnings:?}");
        found[0]
    }

    #[test]
    fn alike_runs_have_no_warnings() {
        assert_eq!(compare_warnings(&two_alike()), Vec::<String>::new());
    }

    #[test]
    fn differences_of_setup_are_named_with_each_run() {
        let [a, mut b] = two_alike();
        b.summary.table = "public.orders".into();
        b.summary.table_type = TableType::Hybrid;
        b.summary.mode = "QPS".into();
        b.summary.target_qps = Some(500.0);
        b.summary.connections = 16;
        b.summary.client = Some(ClientInfo {
            hosts: vec!["bench-2".into()],
            workers: 2,
            threads: 8,
            version: "0.1.0".into(),
        });
        let w = compare_warnings(&[a.clone(), b.clone()]);
        let (ida, idb) = (short_id(&a), short_id(&b));
        assert_eq!(ida.len(), 8);
        let tables = one_with(&w, "different tables");
        assert!(
            tables.contains(&format!("{ida} `public.accounts`"))
                && tables.contains(&format!("{idb} `public.orders`")),
            "{tables}"
        );
        one_with(&w, "different table types");
        assert!(one_with(&w, "different load modes").contains("QPS at 500 ops/s"));
        assert!(one_with(&w, "different connections").contains(&format!("{idb} 16")));
        assert!(one_with(&w, "different client hosts").contains("bench-2"));
        one_with(&w, "different client workers");
        assert!(one_with(&w, "different client threads").contains(&format!("{idb} 8")));
        assert!(!w.iter().any(|x| x.contains("different mixes")), "same template mix: {w:?}");
    }

    #[test]
    fn doubtful_runs_are_named() {
        let [a, mut b] = two_alike();
        b.summary.client = None;
        b.summary.late_starts = 12;
        b.summary.unissued_ops = 30;
        b.summary.samples_dropped = 4;
        b.summary.status = RunStatus::Cancelled;
        b.summary.reason = Some("stopped by a user".into());
        let w = compare_warnings(&[a, b.clone()]);
        let id = short_id(&b);
        for needle in [
            "client is unknown",
            "12 operations started late",
            "30 operations due",
            "4 sampled executions",
            "status CANCELLED: stopped by a user",
        ] {
            assert!(one_with(&w, needle).starts_with(&id), "{needle}: {w:?}");
        }
        assert!(!w.iter().any(|x| x.contains("different client")), "an unknown client is said once: {w:?}");
    }

    #[test]
    fn mixes_differ_by_kinds_when_a_record_is_missing() {
        let [a, mut b] = two_alike();
        b.record = None;
        assert_eq!(compare_warnings(&[a.clone(), b.clone()]), Vec::<String>::new(), "same kinds");
        let mut stats = b.summary.total.clone();
        stats.ops = 5;
        b.summary.by_kind.insert(QueryKind::Insert, stats);
        let w = compare_warnings(&[a, b]);
        assert!(one_with(&w, "different mixes").contains("POINT_LOOKUP+INSERT"), "{w:?}");
    }

    fn pg_stats(calls: &[(&str, u64)]) -> serde_json::Value {
        serde_json::json!({
            "source": "pg_stat_statements",
            "from": "2025-01-01T00:00:00Z",
            "to": "2025-01-01T00:01:00Z",
            "statements": calls.iter().map(|(q, c)| serde_json::json!({
                "queryid": 1, "query": q, "calls": c, "rows": c, "total_exec_time_ms": 1.0, "mean_exec_time_ms": 0.1
            })).collect::<Vec<_>>(),
        })
    }

    #[test]
    fn a_server_count_that_disagrees_is_a_warning() {
        let [a, mut b] = two_alike();
        b.summary.total.errors = 10;
        let client = b.summary.completed_ops_all_phases + 10;
        // Within 1 % (other statements do not count): no warning about the server.
        b.summary.server_stats = Some(pg_stats(&[
            ("SELECT v FROM \"public\".\"accounts\" WHERE id = $1", client + client / 200),
            ("SELECT pg_sleep($1)", 1_000_000),
        ]));
        let w = compare_warnings(&[a.clone(), b.clone()]);
        assert!(!w.iter().any(|x| x.contains("server counted")), "{w:?}");
        // 10 % fewer calls than the client counted.
        b.summary.server_stats = Some(pg_stats(&[("SELECT v FROM accounts WHERE id = $1", client * 9 / 10)]));
        let w = compare_warnings(&[a.clone(), b.clone()]);
        let warning = one_with(&w, "server counted");
        assert!(
            warning.starts_with(&short_id(&b)) && warning.contains(&format!("client {client}")),
            "{warning}"
        );
        // A multi-worker run: the run's figures are under `run`.
        b.summary.server_stats = Some(serde_json::json!({
            "run": pg_stats(&[("SELECT v FROM accounts WHERE id = $1", client * 2)]),
            "covered_by": "worker-0",
            "per_worker": {},
            "note": "",
        }));
        let w = compare_warnings(&[a.clone(), b.clone()]);
        assert!(one_with(&w, "server counted").contains("+100.0 %"), "{w:?}");
        // No covering window: nothing to check.
        b.summary.server_stats =
            Some(serde_json::json!({"run": null, "covered_by": null, "per_worker": {}, "note": ""}));
        assert!(!compare_warnings(&[a, b]).iter().any(|x| x.contains("server counted")));
    }
}
