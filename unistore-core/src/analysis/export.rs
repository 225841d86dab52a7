//! Exporting a run's snapshots for spreadsheets and notebooks: the CSV shared by the CLI's
//! `export` and the controller's `GET /api/results/{id}/export?format=csv`, so both give the
//! same file for the same run.

use std::fmt::Write as _;

use crate::metrics::{KindStats, MetricSnapshot, RunSummary};

/// A run's line in the history, the same for the CLI's `runs --json` and the controller's
/// `GET /api/results`.
pub fn run_listing(s: &RunSummary) -> serde_json::Value {
    serde_json::json!({
        "run_id": s.run_id,
        "started_at": s.started_at,
        "template": s.template,
        "table": s.table,
        "table_type": s.table_type,
        "mode": s.mode,
        "connections": s.connections,
        "target_qps": s.target_qps,
        "status": s.status,
        "verdict": s.verdict(),
        "workers": s.client.as_ref().map_or(1, |c| c.workers),
        "ops": s.total.ops,
        "errors": s.total.errors,
        "qps": s.total.qps,
        "p50_ms": s.total.latency_ms.p50,
        "p95_ms": s.total.latency_ms.p95,
        "p99_ms": s.total.latency_ms.p99,
    })
}

/// Whether a table asked for in a filter names a stored run's table (`orders` matches
/// `public.orders`; case-insensitive).
pub fn same_table(asked: &str, stored: &str) -> bool {
    let (a, s) = (asked.trim().to_ascii_lowercase(), stored.to_ascii_lowercase());
    s == a || s.rsplit('.').next() == Some(a.as_str())
}

/// The header of [`snapshots_csv`].
pub const SNAPSHOTS_CSV_HEADER: &str =
    "run_id,worker_id,seq,taken_at,elapsed_s,interval_s,phase,kind,ops,errors,qps,mean_ms,\
     p50_ms,p95_ms,p99_ms,p999_ms,max_ms,active_connections,target_connections,target_qps,\
     late_starts,backlog";

/// One row per snapshot and kind (`TOTAL` first, then each kind), after a header line.
pub fn snapshots_csv(snapshots: &[MetricSnapshot]) -> String {
    let mut out = String::with_capacity(snapshots.len() * 200);
    out.push_str(SNAPSHOTS_CSV_HEADER);
    out.push('\n');
    for s in snapshots {
        let kinds =
            std::iter::once(("TOTAL", &s.total)).chain(s.by_kind.iter().map(|(k, v)| (k.as_str(), v)));
        for (kind, k) in kinds {
            csv_row(&mut out, s, kind, k);
        }
    }
    out
}

fn csv_row(out: &mut String, s: &MetricSnapshot, kind: &str, k: &KindStats) {
    let l = &k.latency_ms;
    let _ = writeln!(
        out,
        "{},{},{},{},{:.3},{:.3},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{},{},{},{},{}",
        s.run_id,
        csv_field(&s.worker_id),
        s.seq,
        s.taken_at.to_rfc3339(),
        s.elapsed_s,
        s.interval_s,
        s.phase.as_str(),
        kind,
        k.ops,
        k.errors,
        k.qps,
        l.mean,
        l.p50,
        l.p95,
        l.p99,
        l.p999,
        l.max,
        s.active_connections,
        s.target_connections,
        s.target_qps.map(|q| format!("{q}")).unwrap_or_default(),
        s.late_starts,
        s.backlog
    );
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_separators_are_quoted() {
        assert_eq!(csv_field("worker-1"), "worker-1");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(snapshots_csv(&[]), format!("{SNAPSHOTS_CSV_HEADER}\n"));
    }
}
