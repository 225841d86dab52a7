//! Server-side statistics: `pg_stat_statements` snapshots taken before and after the
//! measurement phase, and their per-statement delta, stored with the run next to the
//! client-side figures. The server's own call count is the independent check of the client's
//! operation count.
//!
//! Usage around a measurement window:
//!
//! ```no_run
//! # async fn demo(pool: &unistore_adapters::postgres::PostgresTargetPool) -> unistore_core::Result<()> {
//! let before = pool.server_stats_before().await?; // None: pg_stat_statements is not available
//! // ... run the measurement phase ...
//! if let Some(stats) = pool.server_stats_after(before).await? {
//!     for s in &stats.statements {
//!         println!("{} calls, {:.3} ms mean: {}", s.calls, s.mean_exec_time_ms, s.query);
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;
use unistore_core::Result;

use super::config::PostgresConfig;
use super::map_error;
use super::pool::PostgresTargetPool;

/// One statement's counters from `pg_stat_statements` (or the delta of two snapshots).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementStat {
    /// The server's statement fingerprint.
    pub queryid: i64,
    /// Normalized statement text (parameters as `$n`).
    pub query: String,
    /// Executions.
    pub calls: u64,
    /// Rows returned or affected.
    pub rows: u64,
    /// Total execution time on the server, ms.
    pub total_exec_time_ms: f64,
    /// Mean execution time on the server, ms (total / calls).
    pub mean_exec_time_ms: f64,
}

/// Per-statement deltas over a window, as stored with a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    /// Where the figures come from (`pg_stat_statements`).
    pub source: String,
    /// Start of the window (first snapshot).
    pub from: DateTime<Utc>,
    /// End of the window (second snapshot).
    pub to: DateTime<Utc>,
    /// Statements executed in the window, most calls first.
    pub statements: Vec<StatementStat>,
}

impl ServerStats {
    /// Calls of the statements whose text contains `needle` (e.g. the benchmark table name).
    pub fn calls_matching(&self, needle: &str) -> u64 {
        self.statements.iter().filter(|s| s.query.contains(needle)).map(|s| s.calls).sum()
    }
}

/// A snapshot taken before the measurement phase.
#[derive(Debug, Clone)]
pub struct ServerStatsBaseline {
    taken_at: DateTime<Utc>,
    statements: Vec<StatementStat>,
}

static ABSENCE_REPORTED: AtomicBool = AtomicBool::new(false);

fn report_absent(why: &str) {
    if !ABSENCE_REPORTED.swap(true, Ordering::Relaxed) {
        tracing::info!(
            "pg_stat_statements is not available ({why}): server-side call counts are not recorded; \
             add it to shared_preload_libraries and CREATE EXTENSION pg_stat_statements to get them"
        );
    }
}

/// Reads `pg_stat_statements` for the current database. `Ok(None)` (and one `info` log line
/// per process) when the extension is not installed or not preloaded.
pub async fn pg_stat_statements_snapshot(client: &Client) -> Result<Option<Vec<StatementStat>>> {
    let installed = client
        .query_opt("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_stat_statements'", &[])
        .await
        .map_err(|e| map_error(e, "checking for pg_stat_statements"))?
        .is_some();
    if !installed {
        report_absent("the extension is not installed in this database");
        return Ok(None);
    }
    // PostgreSQL 13 renamed total_time to total_exec_time.
    let query = |time_column: &str| {
        format!(
            "SELECT COALESCE(s.queryid, 0)::int8, s.query, s.calls::int8, s.rows::int8, s.{time_column}::float8 \
             FROM pg_stat_statements s JOIN pg_catalog.pg_database d ON d.oid = s.dbid \
             WHERE d.datname = current_database()"
        )
    };
    let rows = match client.query(&query("total_exec_time"), &[]).await {
        Ok(rows) => rows,
        Err(e) if e.code().map(|c| c.code()) == Some("42703") => client
            .query(&query("total_time"), &[])
            .await
            .map_err(|e| map_error(e, "reading pg_stat_statements"))?,
        Err(e) => {
            // 55000: installed, but not in shared_preload_libraries.
            if e.code().map(|c| c.code()) == Some("55000") {
                report_absent("the library is not in shared_preload_libraries");
                return Ok(None);
            }
            return Err(map_error(e, "reading pg_stat_statements"));
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let get = |e: tokio_postgres::Error| map_error(e, "decoding pg_stat_statements");
        let calls: i64 = r.try_get(2).map_err(get)?;
        let total: f64 = r.try_get(4).map_err(get)?;
        let calls = u64::try_from(calls).unwrap_or(0);
        out.push(StatementStat {
            queryid: r.try_get(0).map_err(get)?,
            query: r.try_get::<_, Option<String>>(1).map_err(get)?.unwrap_or_default(),
            calls,
            rows: u64::try_from(r.try_get::<_, i64>(3).map_err(get)?).unwrap_or(0),
            total_exec_time_ms: total,
            mean_exec_time_ms: if calls > 0 { total / calls as f64 } else { 0.0 },
        });
    }
    Ok(Some(out))
}

/// The per-statement difference `after - before`, statements with calls in between only,
/// most calls first. A statement absent before (first run, or evicted) counts from zero.
/// Entries of the same statement under several users are added up.
pub fn statement_stats_delta(before: &[StatementStat], after: &[StatementStat]) -> Vec<StatementStat> {
    let key = |s: &StatementStat| (s.queryid, s.query.clone());
    let mut base: HashMap<(i64, String), (u64, u64, f64)> = HashMap::new();
    for s in before {
        let e = base.entry(key(s)).or_default();
        e.0 += s.calls;
        e.1 += s.rows;
        e.2 += s.total_exec_time_ms;
    }
    let mut now: HashMap<(i64, String), (u64, u64, f64)> = HashMap::new();
    for s in after {
        let e = now.entry(key(s)).or_default();
        e.0 += s.calls;
        e.1 += s.rows;
        e.2 += s.total_exec_time_ms;
    }
    let mut out: Vec<StatementStat> = now
        .into_iter()
        .filter_map(|(k, (calls, rows, time))| {
            let (c0, r0, t0) = base.get(&k).copied().unwrap_or_default();
            // Counters that went down were reset (pg_stat_statements_reset): count from zero.
            let (calls, rows, time) = if calls < c0 {
                (calls, rows, time)
            } else {
                (calls - c0, rows.saturating_sub(r0), time - t0)
            };
            (calls > 0).then(|| StatementStat {
                queryid: k.0,
                query: k.1,
                calls,
                rows,
                total_exec_time_ms: time.max(0.0),
                mean_exec_time_ms: time.max(0.0) / calls as f64,
            })
        })
        .collect();
    out.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.query.cmp(&b.query)));
    out
}

/// Takes a snapshot over a fresh connection to `url`; `Ok(None)` when unavailable.
pub async fn server_stats_snapshot(url: &str) -> Result<Option<ServerStatsBaseline>> {
    let config = PostgresConfig::from_url(url)?;
    let client = config.connect("unistore-stats").await?;
    baseline(&client).await
}

async fn baseline(client: &Client) -> Result<Option<ServerStatsBaseline>> {
    let taken_at = Utc::now();
    Ok(pg_stat_statements_snapshot(client)
        .await?
        .map(|statements| ServerStatsBaseline { taken_at, statements }))
}

async fn finish(client: &Client, before: Option<ServerStatsBaseline>) -> Result<Option<ServerStats>> {
    let Some(before) = before else {
        return Ok(None);
    };
    let Some(after) = pg_stat_statements_snapshot(client).await? else {
        return Ok(None);
    };
    Ok(Some(ServerStats {
        source: "pg_stat_statements".into(),
        from: before.taken_at,
        to: Utc::now(),
        statements: statement_stats_delta(&before.statements, &after),
    }))
}

/// Completes [`server_stats_snapshot`]: the delta since `before` over a fresh connection.
pub async fn server_stats_since(
    url: &str,
    before: Option<ServerStatsBaseline>,
) -> Result<Option<ServerStats>> {
    if before.is_none() {
        return Ok(None);
    }
    let config = PostgresConfig::from_url(url)?;
    let client = config.connect("unistore-stats").await?;
    finish(&client, before).await
}

impl PostgresTargetPool {
    /// Snapshot of `pg_stat_statements` to take right before the measurement phase.
    /// `Ok(None)` when the extension is unavailable (said once in the log); pass the result
    /// to [`PostgresTargetPool::server_stats_after`] either way.
    pub async fn server_stats_before(&self) -> Result<Option<ServerStatsBaseline>> {
        let client = self.admin_client().await?;
        baseline(&client).await
    }

    /// The per-statement delta since `before`, to take right after the measurement phase
    /// (after the engine has returned, so every operation it counted has finished).
    pub async fn server_stats_after(
        &self,
        before: Option<ServerStatsBaseline>,
    ) -> Result<Option<ServerStats>> {
        if before.is_none() {
            return Ok(None);
        }
        let client = self.admin_client().await?;
        finish(&client, before).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(id: i64, q: &str, calls: u64, time: f64) -> StatementStat {
        StatementStat {
            queryid: id,
            query: q.into(),
            calls,
            rows: calls,
            total_exec_time_ms: time,
            mean_exec_time_ms: 0.0,
        }
    }

    #[test]
    fn delta_keeps_statements_that_ran_in_between() {
        let before = vec![stat(1, "a", 10, 5.0), stat(2, "b", 3, 1.0)];
        let after = vec![stat(1, "a", 25, 8.0), stat(2, "b", 3, 1.0), stat(3, "c", 4, 2.0)];
        let d = statement_stats_delta(&before, &after);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].query.as_str(), d[0].calls), ("a", 15));
        assert!((d[0].total_exec_time_ms - 3.0).abs() < 1e-9);
        assert!((d[0].mean_exec_time_ms - 0.2).abs() < 1e-9);
        assert_eq!((d[1].query.as_str(), d[1].calls), ("c", 4));
    }

    #[test]
    fn a_reset_counts_from_zero() {
        let d = statement_stats_delta(&[stat(1, "a", 100, 9.0)], &[stat(1, "a", 7, 1.0)]);
        assert_eq!(d[0].calls, 7);
    }
}
