//! `bench`: one process, one template, printed results.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use unistore_adapters::{open_results, open_target, redact_url, TargetOptions};
use unistore_core::runner::PreparedRun;
use unistore_core::template::{parse_mix, LoadMode};
use unistore_core::{Error, ResultsSink, RunId, TableRef, TableType, Template, WorkerIdentity};

use crate::report;

/// Exit code for bad input (flags, template, table, target).
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code when an SLO failed.
const EXIT_SLO_FAILED: u8 = 1;
/// Exit code after Ctrl-C (the summary is still written).
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Database under test: sqlite:///path/file.db, postgres://user@host:port/db, snowflake://...
    /// Default: the embedded demo SQLite database (created on first use).
    #[arg(long, env = "UNISTORE_TARGET")]
    target: Option<String>,
    /// Table to benchmark: [database.][schema.]NAME (default with the demo target: demo_orders).
    #[arg(long)]
    table: Option<String>,
    /// Declared table type: standard, hybrid, interactive, postgres, sqlite (default: detected).
    #[arg(long)]
    table_type: Option<TableType>,
    /// Template file (TOML or JSON); flags given here override it.
    #[arg(long)]
    template: Option<PathBuf>,
    /// Query mix, e.g. point_lookup=80,range_scan=10,update=10 (default: point_lookup=100).
    #[arg(long)]
    mix: Option<String>,
    /// Connections (closed loop), or connections available to sustain --qps.
    #[arg(long, short = 'c')]
    connections: Option<u32>,
    /// Target rate in operations per second: switches to open loop.
    #[arg(long)]
    qps: Option<f64>,
    /// Measurement duration, e.g. 30s, 2m.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Warmup duration (excluded from the results), e.g. 5s; 0s for none.
    #[arg(long, value_parser = parse_warmup)]
    warmup: Option<Duration>,
    /// Seed for reproducible key sequences.
    #[arg(long)]
    seed: Option<u64>,
    /// Key column (default: the primary key).
    #[arg(long)]
    key_column: Option<String>,
    /// Results store URL (default: embedded SQLite file in the data directory).
    #[arg(long, env = "UNISTORE_RESULTS")]
    results: Option<String>,
    /// Do not store results anywhere.
    #[arg(long, conflicts_with = "results")]
    no_results: bool,
    /// Write the machine-readable summary to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Allow INSERT and UPDATE in the mix (they modify the table).
    #[arg(long)]
    allow_writes: bool,
    /// Client threads (1: a single-threaded runtime, like pgbench -j 1).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}): write e.g. 30s, 500ms, 2m"))?;
    if d.is_zero() {
        return Err(format!("`{s}` is zero: give a positive duration such as 10s"));
    }
    Ok(d)
}

fn parse_warmup(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}): write e.g. 5s or 0s"))
}

pub fn main(args: BenchArgs) -> ExitCode {
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

/// Failures before any load ran: bad flags, template, target or table. Exit code 2.
fn bad_input(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_BAD_INPUT)
}

async fn run(args: BenchArgs) -> ExitCode {
    let (template, target_url) = match build_template(&args) {
        Ok(t) => t,
        Err(e) => return bad_input(e),
    };
    let run_id = RunId::new();
    let table = match template.table_ref() {
        Ok(t) => t,
        Err(e) => return bad_input(e),
    };
    let results: Option<Arc<dyn ResultsSink>> = if args.no_results {
        None
    } else {
        let url = args.results.clone().unwrap_or_else(unistore_adapters::sqlite::demo::default_results_url);
        match open_results(&url).await {
            Ok(store) => Some(store.sink),
            Err(e) => return bad_input(format!("results store {}: {e}", redact_url(&url))),
        }
    };
    let options = TargetOptions::new(run_id, table.clone(), template.table_type);
    let target = match open_target(&target_url, &options).await {
        Ok(t) => t,
        Err(e) => return bad_input(e),
    };
    let prepared = match PreparedRun::prepare(
        template,
        run_id,
        WorkerIdentity::solo(),
        target.pool.clone(),
        target.manager.as_ref(),
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return bad_input(e),
    };
    report::print_header(&prepared, &redact_url(&target_url));
    let active = match prepared.start().await {
        Ok(a) => a,
        Err(e) => return bad_input(e),
    };
    let control = active.control();
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
                eprintln!("\ninterrupted: stopping, in-flight operations get 5 s to finish");
                control.stop("interrupted by Ctrl-C");
            }
        });
    }
    let finished = match active.finish(results, report::print_progress).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: the run failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    for w in &finished.persistence_warnings {
        eprintln!("warning: {w}");
    }
    let summary = &finished.summary;
    report::print_summary(summary);
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(summary)
            .map_err(|e| e.to_string())
            .and_then(|text| std::fs::write(path, text + "\n").map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if !summary.slo.passed {
        ExitCode::from(EXIT_SLO_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Builds the template from the file (if any) and the flags, and resolves the target URL.
/// With no target anywhere, the embedded demo database is used (and created on first use).
fn build_template(args: &BenchArgs) -> Result<(Template, String), Error> {
    let mut template = match &args.template {
        Some(path) => Template::from_file(path)?,
        None => Template::new(String::new(), BTreeMap::new()),
    };
    let target = match args.target.clone().or_else(|| template.target.clone()) {
        Some(t) => t,
        None => {
            let path = unistore_adapters::sqlite::demo::default_demo_path();
            let demo = unistore_adapters::sqlite::demo::ensure_demo_database(&path)?;
            if demo.created {
                eprintln!(
                    "created the demo database {} with table {} ({} rows); it is the only table this tool ever creates",
                    demo.path.display(),
                    demo.table,
                    demo.rows
                );
            }
            if args.table.is_none() && template.table.is_empty() {
                template.table = demo.table.to_string();
            }
            format!("sqlite://{}", demo.path.display())
        }
    };
    if let Some(t) = &args.table {
        TableRef::parse(t)?;
        template.table = t.clone();
    }
    if template.table.is_empty() {
        return Err(Error::invalid("no table given: pass --table [database.][schema.]NAME"));
    }
    if template.name.is_empty() || (args.template.is_none() && template.name == "unnamed") {
        template.name = format!("bench-{}", template.table);
    }
    if args.table_type.is_some() {
        template.table_type = args.table_type;
    }
    if let Some(mix) = &args.mix {
        template.mix = parse_mix(mix)?;
    }
    if template.mix.is_empty() {
        template.mix.insert(unistore_core::QueryKind::PointLookup, 100);
    }
    let connections = args.connections.unwrap_or_else(|| template.load.initial_connections());
    if let Some(qps) = args.qps {
        template.load = LoadMode::Qps { target_qps: qps, connections };
    } else if let Some(c) = args.connections {
        template.load = match &template.load {
            LoadMode::Qps { target_qps, .. } => LoadMode::Qps { target_qps: *target_qps, connections: c },
            _ => LoadMode::Concurrency { connections: c },
        };
    }
    if let Some(d) = args.duration {
        template.phases.measurement = d;
    }
    if let Some(w) = args.warmup {
        template.phases.warmup = w;
    }
    if args.seed.is_some() {
        template.seed = args.seed;
    }
    if args.key_column.is_some() {
        template.values.key_column = args.key_column.clone();
    }
    template.allow_writes |= args.allow_writes;
    template.validate()?;
    Ok((template, target))
}
