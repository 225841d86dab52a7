//! Reading stored runs back: `runs` (history), `show` (one run), `export` (CSV or JSON), and
//! `compare` (two or more runs, with how sure the difference is). The same on every results
//! store: everything goes through `ResultsReader`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use unistore_core::analysis::RunData;
use unistore_core::metrics::{MetricSnapshot, RunSummary};
use unistore_core::{Error, ResultsReader, RunId, RunStatus};

use crate::results;

/// Where the results are (shared by the reading commands).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Results store URL (default: the embedded SQLite file in the data directory).
    #[arg(long, env = "UNISTORE_RESULTS", hide_env_values = true)]
    pub results: Option<String>,
}

/// `runs`: history, newest first.
#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// How many runs to list.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Only runs of this table (as stored: schema.table).
    #[arg(long)]
    table: Option<String>,
    /// Only runs with this status (COMPLETED, FAILED, CANCELLED, RUNNING).
    #[arg(long)]
    status: Option<String>,
    /// Print JSON (one array) instead of a table.
    #[arg(long)]
    json: bool,
}

/// `show`: one run.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The run.
    run_id: String,
    /// Print the run as JSON (its summary, its workers' summaries and its configuration).
    #[arg(long)]
    json: bool,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One row per snapshot and kind (TOTAL and each query kind).
    Csv,
    /// The summaries and every snapshot.
    Json,
}

/// `export`: a run's snapshots and summaries for spreadsheets and notebooks.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The run.
    run_id: String,
    /// csv or json.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Write to this file instead of stdout (written whole or not at all).
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// A problem that ends a reading command: exit 2 with one line.
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Runs a reading command to its exit code: 0 done, 2 with one line on a problem.
pub fn run_command(command: impl std::future::Future<Output = Result<(), Error>>) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::invalid(format!("cannot start the runtime: {e}")));
    match runtime.and_then(|rt| rt.block_on(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Parses a run id given on the command line.
pub fn parse_run_id(text: &str) -> Result<RunId, Error> {
    text.trim().parse::<RunId>().map_err(|_| {
        Error::invalid(format!(
            "`{text}` is not a run id (a UUID such as 5f0c2a9e-...): list runs with `unistore-worker runs`"
        ))
    })
}

/// A store opened for reading.
pub struct Reader {
    /// The read side.
    pub reader: Arc<dyn ResultsReader>,
    /// The store's URL without secrets.
    pub redacted: String,
}

impl Reader {
    /// Opens the store named by `args` (default: the embedded SQLite file).
    pub async fn open(args: &StoreArgs) -> Result<Reader, Error> {
        let store = results::open(args.results.as_deref()).await?;
        Ok(Reader { reader: store.reader, redacted: store.redacted })
    }

    /// A run's own summary; an unknown run is an error that names the store.
    pub async fn summary(&self, run_id: RunId) -> Result<RunSummary, Error> {
        self.reader.summary(run_id, None).await?.ok_or_else(|| self.unknown(run_id))
    }

    fn unknown(&self, run_id: RunId) -> Error {
        Error::invalid(format!(
            "run {run_id} is not in the results store {}: list runs with `unistore-worker runs` (or pass \
             --results for another store)",
            self.redacted
        ))
    }

    /// Everything the analysis reads of a finished run. A run still running is an error.
    pub async fn finished(&self, run_id: RunId) -> Result<RunData, Error> {
        unistore_core::sink::read_finished_run(self.reader.as_ref(), run_id)
            .await?
            .ok_or_else(|| self.unknown(run_id))
    }

    /// The summaries of a run's workers, in worker order (empty for a one-process run).
    pub async fn workers(
        &self,
        run_id: RunId,
        snapshots: &[MetricSnapshot],
    ) -> Result<Vec<RunSummary>, Error> {
        let ids: BTreeSet<&str> = snapshots.iter().map(|s| s.worker_id.as_str()).collect();
        let mut parts = Vec::new();
        for id in ids {
            if let Some(s) = self.reader.summary(run_id, Some(id)).await? {
                parts.push(s);
            }
        }
        Ok(parts)
    }
}

/// `runs`.
pub fn runs(args: RunsArgs) -> ExitCode {
    run_command(list(&args))
}

async fn list(args: &RunsArgs) -> Result<(), Error> {
    let status = match &args.status {
        Some(s) => Some(s.trim().to_ascii_uppercase().parse::<RunStatus>().map_err(|_| {
            Error::invalid(format!(
                "--status `{s}` is not a run status: use COMPLETED, FAILED, CANCELLED, RUNNING or PREPARED"
            ))
        })?),
        None => None,
    };
    if args.limit == 0 {
        return Err(Error::invalid("--limit 0 lists nothing: give at least 1"));
    }
    let store = Reader::open(&args.store).await?;
    // The store lists rows newest first, workers' rows beside their run's: read enough rows to
    // fill the page after filtering.
    let rows = store.reader.runs(args.limit.saturating_mul(50).clamp(500, 100_000)).await?;
    let mut out: Vec<RunSummary> = Vec::new();
    for row in rows.iter().filter(|r| r.worker_id.is_none()) {
        if out.len() >= args.limit {
            break;
        }
        if args.table.as_deref().is_some_and(|t| !unistore_core::analysis::same_table(t, &row.table)) {
            continue;
        }
        if status.is_some_and(|s| s.as_str() != row.status) {
            continue;
        }
        if let Some(s) = store.reader.summary(row.run_id, None).await? {
            out.push(s);
        }
    }
    if args.json {
        let rows: Vec<serde_json::Value> = out.iter().map(unistore_core::analysis::run_listing).collect();
        println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
        return Ok(());
    }
    if out.is_empty() {
        println!(
            "no runs{} in {}",
            if args.table.is_some() || status.is_some() { " match" } else { "" },
            store.redacted
        );
        return Ok(());
    }
    println!(
        "{:<36}  {:<20} {:<24} {:<11} {:<17} {:>7} {:>11} {:>9} {:>9}  verdict",
        "run", "started (UTC)", "table", "mode", "load", "workers", "ok ops/s", "p50 ms", "p99 ms"
    );
    for s in &out {
        println!(
            "{:<36}  {:<20} {:<24} {:<11} {:<17} {:>7} {:>11.1} {:>9.3} {:>9.3}  {}",
            s.run_id,
            s.started_at.format("%Y-%m-%d %H:%M:%S"),
            truncate(&s.table, 24),
            s.mode,
            load_text(s),
            s.client.as_ref().map_or(1, |c| c.workers),
            s.total.qps,
            s.total.latency_ms.p50,
            s.total.latency_ms.p99,
            s.verdict()
        );
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn load_text(s: &RunSummary) -> String {
    match s.target_qps {
        Some(q) => format!("{q:.0}/s, {} conn", s.connections),
        None => format!("{} conn", s.connections),
    }
}

/// `show`.
pub fn show(args: ShowArgs) -> ExitCode {
    run_command(show_run(&args))
}

async fn show_run(args: &ShowArgs) -> Result<(), Error> {
    let run_id = parse_run_id(&args.run_id)?;
    let store = Reader::open(&args.store).await?;
    let summary = store.summary(run_id).await?;
    let record = store.reader.run_record(run_id, None).await?;
    let snapshots = store.reader.snapshots(run_id).await?;
    let workers = store.workers(run_id, &snapshots).await?;
    if args.json {
        let doc = serde_json::json!({
            "summary": summary,
            "workers": workers,
            "record": record,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    println!("run {run_id}");
    println!("  template: {}  table: {} ({})", summary.template, summary.table, summary.table_type);
    if let Some(r) = &record {
        println!("  target: {}  seed: {}", r.target, r.seed);
    }
    println!(
        "  started: {}  measured: {} to {}",
        summary.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        summary.measurement_started_at.format("%H:%M:%S"),
        summary.measurement_ended_at.format("%H:%M:%S")
    );
    if let Some(c) = &summary.client {
        println!(
            "  client: {} worker(s) on {}, {} client thread(s) each, unistore {}",
            c.workers,
            c.hosts.join(", "),
            c.threads,
            c.version
        );
    }
    crate::report::print_summary(&summary, false);
    if workers.len() > 1 || workers.first().is_some_and(|w| w.worker_id.is_some()) {
        println!();
        println!(
            "{:<14} {:<10} {:>11} {:>10} {:>7} {:>11} {:>9} {:>9}",
            "worker", "status", "connections", "ok ops", "errors", "ok ops/s", "p50 ms", "p99 ms"
        );
        for w in &workers {
            println!(
                "{:<14} {:<10} {:>11} {:>10} {:>7} {:>11.1} {:>9.3} {:>9.3}",
                w.worker_id.as_deref().unwrap_or("-"),
                w.status.as_str(),
                w.connections,
                w.total.ops,
                w.total.errors,
                w.total.qps,
                w.total.latency_ms.p50,
                w.total.latency_ms.p99
            );
        }
    }
    if let Some(stats) = &summary.server_stats {
        println!();
        print_server_stats(stats, &summary);
    }
    Ok(())
}

/// The server's own figures beside the client's count.
fn print_server_stats(stats: &serde_json::Value, s: &RunSummary) {
    // A multi-worker run keeps the covering worker's window under "run".
    let (figures, origin) = match stats.get("run") {
        Some(run) if !run.is_null() => (run, stats.get("covered_by").and_then(|v| v.as_str())),
        Some(_) => {
            println!(
                "server-side figures: {}",
                stats.get("note").and_then(|n| n.as_str()).unwrap_or("no window covers the whole run")
            );
            return;
        }
        None => (stats, None),
    };
    if let Some(statements) = figures.get("statements").and_then(|v| v.as_array()) {
        println!(
            "server-side figures ({}{}): statements on {}",
            figures.get("source").and_then(|v| v.as_str()).unwrap_or("server"),
            origin.map(|w| format!(", {w}'s window")).unwrap_or_default(),
            s.table
        );
        println!("{:>10} {:>10} {:>12}  statement", "calls", "rows", "mean ms");
        let table = s.table.rsplit('.').next().unwrap_or(&s.table).to_ascii_lowercase();
        let mut calls = 0;
        for st in statements {
            let query = st.get("query").and_then(|v| v.as_str()).unwrap_or("");
            if !query.to_ascii_lowercase().contains(&table) {
                continue;
            }
            let n = st.get("calls").and_then(serde_json::Value::as_u64).unwrap_or(0);
            calls += n;
            println!(
                "{:>10} {:>10} {:>12.3}  {}",
                n,
                st.get("rows").and_then(serde_json::Value::as_u64).unwrap_or(0),
                st.get("mean_exec_time_ms").and_then(serde_json::Value::as_f64).unwrap_or(0.0),
                truncate(&query.split_whitespace().collect::<Vec<_>>().join(" "), 100)
            );
        }
        let client = s.completed_ops_all_phases + s.total.errors;
        println!(
            "server counted {calls} calls on the table; the client issued {client} operations (all phases)"
        );
    } else {
        println!(
            "server-side figures:\n{}",
            serde_json::to_string_pretty(figures).unwrap_or_else(|_| figures.to_string())
        );
    }
}

/// `export`.
pub fn export(args: ExportArgs) -> ExitCode {
    run_command(export_run(&args))
}

async fn export_run(args: &ExportArgs) -> Result<(), Error> {
    let run_id = parse_run_id(&args.run_id)?;
    if let Some(path) = &args.output {
        check_writable(path)?;
    }
    let store = Reader::open(&args.store).await?;
    let summary = store.summary(run_id).await?;
    let snapshots = store.reader.snapshots(run_id).await?;
    let text = match args.format {
        ExportFormat::Json => {
            let workers = store.workers(run_id, &snapshots).await?;
            let doc = serde_json::json!({ "summary": summary, "workers": workers, "snapshots": snapshots });
            serde_json::to_string_pretty(&doc)
                .map_err(|e| Error::invalid(format!("cannot write JSON: {e}")))?
                + "\n"
        }
        ExportFormat::Csv => unistore_core::analysis::snapshots_csv(&snapshots),
    };
    match &args.output {
        Some(path) => {
            write_whole(path, text.as_bytes())?;
            eprintln!("wrote {} ({} snapshots of run {run_id})", path.display(), snapshots.len());
        }
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = out.write_all(text.as_bytes());
        }
    }
    Ok(())
}

/// Fails early, before reading anything, when `path`'s directory cannot take the file.
pub fn check_writable(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::invalid(format!(
            "cannot write {}: the directory {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    if path.is_dir() {
        return Err(Error::invalid(format!(
            "cannot write {}: it is a directory; give a file name",
            path.display()
        )));
    }
    Ok(())
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it, then a rename.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    check_writable(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let cannot = |e: std::io::Error| Error::invalid(format!("cannot write {}: {e}", path.display()));
    let mut tmp =
        tempfile::Builder::new().prefix(".unistore-").suffix(".tmp").tempfile_in(dir).map_err(cannot)?;
    tmp.write_all(bytes).map_err(cannot)?;
    tmp.as_file().sync_all().map_err(cannot)?;
    #[cfg(unix)]
    {
        // A temporary file is private (0600); a report or an export is a document like any other.
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(cannot)?;
    }
    tmp.persist(path).map_err(|e| cannot(e.error))?;
    Ok(())
}

/// `compare`: two or more runs, the first the baseline.
#[derive(Debug, Args)]
pub struct CompareArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The runs: the first is the baseline.
    #[arg(num_args = 2.., required = true, value_name = "RUN_ID")]
    runs: Vec<String>,
    /// Confidence level of the intervals (0.5 to 0.999).
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// Print the comparison as JSON.
    #[arg(long)]
    json: bool,
}

/// `compare`.
pub fn compare(args: CompareArgs) -> ExitCode {
    run_command(compare_runs(&args))
}

/// Reads finished runs, in the order given. Unknown or unfinished runs are errors; a run named
/// twice is an error too.
pub async fn load_finished(store: &Reader, ids: &[String]) -> Result<Vec<RunData>, Error> {
    let mut seen = BTreeSet::new();
    let mut runs = Vec::new();
    for text in ids {
        let id = parse_run_id(text)?;
        if !seen.insert(id) {
            return Err(Error::invalid(format!("run {id} is named twice: name each run once")));
        }
        runs.push(store.finished(id).await?);
    }
    Ok(runs)
}

async fn compare_runs(args: &CompareArgs) -> Result<(), Error> {
    if !(0.5..=0.999).contains(&args.confidence) {
        return Err(Error::invalid(format!(
            "--confidence {} is outside 0.5 to 0.999: write e.g. 0.95",
            args.confidence
        )));
    }
    let store = Reader::open(&args.store).await?;
    let runs = load_finished(&store, &args.runs).await?;
    let options =
        unistore_core::analysis::CompareOptions { confidence: args.confidence, ..Default::default() };
    let comparison = unistore_core::analysis::compare(&runs, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&comparison).unwrap_or_default());
        return Ok(());
    }
    print_comparison(&comparison, &runs);
    Ok(())
}

fn short(id: &RunId) -> String {
    id.to_string().chars().take(8).collect()
}

/// The comparison as a table: warnings first, then per metric (totals, then each kind) the
/// baseline and each run with its difference, interval and whether it is significant.
pub fn print_comparison(c: &unistore_core::analysis::Comparison, runs: &[RunData]) {
    use unistore_core::analysis::Significance;
    for w in &c.warnings {
        println!("warning: {w}");
    }
    if !c.warnings.is_empty() {
        println!();
    }
    for (i, r) in runs.iter().enumerate() {
        let s = &r.summary;
        println!(
            "{} {}  {}  {} on {}  {}",
            if i == 0 { "baseline" } else { "run     " },
            s.run_id,
            s.started_at.format("%Y-%m-%d %H:%M"),
            load_text(s),
            s.table,
            s.verdict()
        );
    }
    println!();
    let mut header = format!("{:<14} {:<11} {:>12}", "kind", "figure", short(&c.runs[0]));
    for id in &c.runs[1..] {
        header.push_str(&format!(
            " {:>12} {:>9} {:>25} {:<5}",
            short(id),
            "change",
            "interval of the difference",
            ""
        ));
    }
    println!("{header}");
    for row in &c.rows {
        let kind = row.kind.map_or("TOTAL", |k| k.as_str());
        let fmt = |v: Option<f64>| match (v, row.metric) {
            (None, _) => "-".to_string(),
            (Some(v), unistore_core::analysis::Metric::ErrorRate) => format!("{:.4}%", v * 100.0),
            (Some(v), unistore_core::analysis::Metric::Throughput) => format!("{v:.1}"),
            (Some(v), _) => format!("{v:.3}"),
        };
        let mut line = format!("{kind:<14} {:<11} {:>12}", row.metric.label(), fmt(row.values[0]));
        for (i, d) in row.differences.iter().enumerate() {
            let value = fmt(row.values.get(i + 1).copied().flatten());
            match d {
                None => line.push_str(&format!(" {value:>12} {:>9} {:>25} {:<5}", "-", "", "")),
                Some(d) => {
                    let change =
                        d.ratio.map_or_else(|| "-".into(), |r| format!("{:+.1}%", (r - 1.0) * 100.0));
                    let interval = d.interval.map_or_else(String::new, |(lo, hi)| match row.metric {
                        unistore_core::analysis::Metric::ErrorRate => {
                            format!("[{:+.4}%, {:+.4}%]", lo * 100.0, hi * 100.0)
                        }
                        _ => format!("[{lo:+.3}, {hi:+.3}]"),
                    });
                    let mark = match (d.significance, d.better) {
                        (Significance::Significant, Some(true)) => "better",
                        (Significance::Significant, _) => "WORSE",
                        (Significance::NotSignificant, _) => "same",
                        (Significance::NotEnoughData, _) => "n/a",
                        (Significance::NotTested, _) => "",
                    };
                    line.push_str(&format!(" {value:>12} {change:>9} {interval:>25} {mark:<5}"));
                }
            }
        }
        println!("{}", line.trim_end());
    }
    println!();
    println!(
        "better / WORSE: the difference is significant at {:.0} % (its interval excludes 0); same: it is not; n/a: \
         not enough data to tell",
        c.confidence * 100.0
    );
    println!("method: {}", c.method);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_file_is_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.html");
        write_whole(&path, b"<p>hi</p>").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "<p>hi</p>");
        assert!(write_whole(dir.path(), b"x").unwrap_err().to_string().contains("is a directory"));
        assert!(write_whole(&dir.path().join("missing/r.html"), b"x")
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("r.html")], "no temporary file is left behind");
    }

    #[test]
    fn run_ids_and_tables() {
        assert!(parse_run_id("nope").unwrap_err().to_string().contains("is not a run id"));
        assert!(parse_run_id(&RunId::new().to_string()).is_ok());
        assert!(
            unistore_core::analysis::same_table("orders", "public.orders")
                && unistore_core::analysis::same_table("Public.Orders", "public.orders")
        );
        assert!(!unistore_core::analysis::same_table("order", "public.orders"));
    }
}
