//! `bench`: one process, one template, printed results.
//!
//! Exit codes (the README's table; tests check each):
//! - `0`: the run completed and passed (SLOs held, an open-loop target was reached);
//! - `1`: the run failed its verdict: an SLO failed, the target rate was not reached, or the
//!   run FAILED (nothing measured, too many errors, a panic);
//! - `2`: bad input (flags, template, target, table): nothing was run or written;
//! - `3`: the run finished, but some of its results are not in the store yet (spooled);
//! - `130` / `143`: stopped by SIGINT (Ctrl-C) / SIGTERM; the summary is still stored as
//!   CANCELLED and written to `--json`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use unistore_adapters::{open_target, redact_url, TargetOptions};
use unistore_core::runner::PreparedRun;
use unistore_core::template::{limits, Overrides};
use unistore_core::{ClientThreads, Error, ResultsSink, RunId, TableType, Template, Verdict, WorkerIdentity};

use crate::oplog;
use crate::prometheus;
use crate::report;
use crate::results::{self, OpenedStore};
use crate::signals::Interrupts;

/// Exit code when the run failed its verdict (SLO, target rate, run FAILED).
const EXIT_FAILED: u8 = 1;
/// Exit code for bad input (flags, template, table, target): nothing run or written.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code when the run finished but some results are only in the spool.
const EXIT_RESULTS_NOT_STORED: u8 = 3;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Database under test: sqlite:///path/file.db, postgres://user@host:port/db, snowflake://...
    /// Default: the embedded demo SQLite database (created on first use).
    #[arg(long, env = "UNISTORE_TARGET", hide_env_values = true)]
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
    /// Connections (closed loop), or connections available to sustain --qps (default: 8).
    #[arg(long, short = 'c')]
    connections: Option<u32>,
    /// Target rate in operations per second: switches to open loop.
    #[arg(long)]
    qps: Option<f64>,
    /// Measurement duration, e.g. 30s, 2m (default: 30s).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Warmup duration (excluded from the results), e.g. 5s; 0s for none (default: 5s).
    #[arg(long, value_parser = parse_zero_ok)]
    warmup: Option<Duration>,
    /// Cooldown after the measurement (load runs, not measured); default 0s.
    #[arg(long, value_parser = parse_zero_ok)]
    cooldown: Option<Duration>,
    /// Seed for reproducible key sequences (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Key column (default: the primary key).
    #[arg(long)]
    key_column: Option<String>,
    /// Longest time to open one connection (TCP, TLS, login), e.g. 10s (default: 10s).
    #[arg(long, value_parser = parse_duration)]
    connect_timeout: Option<Duration>,
    /// Longest a statement may run before the server cancels it (a TIMEOUT error); default none.
    #[arg(long, value_parser = parse_duration)]
    statement_timeout: Option<Duration>,
    /// Results store URL (default: embedded SQLite file in the data directory).
    #[arg(long, env = "UNISTORE_RESULTS", hide_env_values = true)]
    results: Option<String>,
    /// Store nothing (wins over --results and UNISTORE_RESULTS).
    #[arg(long)]
    no_results: bool,
    /// Write the machine-readable summary to this file (checked before the run).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Allow INSERT and UPDATE in the mix (they modify the table).
    #[arg(long)]
    allow_writes: bool,
    /// Client threads, like pgbench -j: each runs its own single-threaded runtime and a share of
    /// the connections; at most 4 per core. With 2 or more, thread i is pinned to the i-th CPU
    /// the process may use, when there are that many (see --no-pin).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Leave the client threads of --threads to the scheduler instead of one CPU each (for a
    /// machine whose CPUs something else needs at times).
    #[arg(long)]
    no_pin: bool,
    /// A progress line every N seconds (like pgbench -P); 0 for none.
    #[arg(long, default_value_t = 1, value_name = "SECONDS")]
    progress: u64,
    /// Write every operation to this CSV file (like pgbench -l): connection, kind, phase,
    /// intended start, start and end (µs since the epoch), response and service time (µs),
    /// rows, ok, error kind. The load waits for the file rather than drop a line.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Spread the run over N worker processes on this host, coordinated through the control
    /// store (the connections and the rate are split between them; the summary merges their
    /// histograms). Default: the template's scaling; without one, this process runs the load.
    #[arg(long, value_name = "N")]
    workers: Option<u32>,
    /// Control store for --workers (default: the results store when it is SQLite, else the
    /// embedded SQLite file).
    #[arg(long, env = "UNISTORE_CONTROL", hide_env_values = true)]
    control: Option<String>,
    /// With --workers: what happens when a worker stops responding: fail (the run FAILS),
    /// replace (a new worker takes its share, up to 3 times) or replace:N.
    #[arg(long, value_name = "POLICY")]
    on_worker_loss: Option<unistore_core::orchestrator::LossPolicy>,
    #[command(flatten)]
    gate: crate::gate::GateArgs,
    /// Serve the live figures for Prometheus on this address, as OpenMetrics text on
    /// GET /metrics (e.g. 127.0.0.1:9464; see the README's Prometheus section). The final
    /// figures are served until the process exits.
    #[arg(long, value_name = "IP:PORT", value_parser = crate::prometheus::parse_listen_address)]
    metrics_listen: Option<SocketAddr>,
    /// With --metrics-listen: keep serving the final figures this long after the summary, so
    /// that a scrape takes them, e.g. 15s (default: 0s, exit at once).
    #[arg(long, value_name = "DURATION", value_parser = parse_zero_ok, requires = "metrics_listen")]
    metrics_linger: Option<Duration>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = parse_zero_ok(s)?;
    if d.is_zero() {
        return Err(format!("`{s}` is zero: give a positive duration such as 10s"));
    }
    Ok(d)
}

fn parse_zero_ok(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}): write e.g. 30s, 500ms, 2m"))?;
    if d > limits::MAX_DURATION {
        return Err(format!("`{s}` is longer than the limit of 30 days"));
    }
    Ok(d)
}

pub fn main(args: BenchArgs) -> ExitCode {
    let max_threads = limits::max_threads();
    if args.threads == 0 || args.threads > max_threads {
        return bad_input(format!(
            "--threads {} is outside 1..={max_threads} ({} per CPU core on this machine)",
            args.threads,
            limits::MAX_THREADS_PER_CORE
        ));
    }
    // This thread is client thread 0; `--threads N` adds N - 1 more, each with a runtime of its
    // own and its share of the connections (see `ClientThreads`), like pgbench -j.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
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

/// Stopped by a signal before the load started: nothing was run or written.
fn interrupted_early(sig: crate::signals::Signal) -> ExitCode {
    eprintln!("{}: stopped before the load started; nothing was run or stored", sig.reason());
    ExitCode::from(sig.exit_code())
}

/// Runs `f` unless a signal arrives first.
async fn or_signal<T>(
    interrupts: &Interrupts,
    f: impl std::future::Future<Output = T>,
) -> Result<T, ExitCode> {
    tokio::select! {
        r = f => Ok(r),
        sig = interrupts.wait() => Err(interrupted_early(sig)),
    }
}

async fn run(args: BenchArgs) -> ExitCode {
    let interrupts = match Interrupts::install() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: cannot install the signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut template, target_url) = match build_template(&args) {
        Ok(t) => t,
        Err(e) => return bad_input(e),
    };
    for (flag, path) in [("--json", &args.json), ("--log", &args.log)] {
        if let Some(path) = path {
            if let Err(e) = check_writable(flag, path) {
                return bad_input(e);
            }
        }
    }
    if let Err(e) = crate::gate::apply_flags(&mut template, &args.gate) {
        return bad_input(e);
    }
    if template.gate.is_some() && args.no_results {
        return bad_input("a regression gate compares stored runs: drop --no-results (or the gate)");
    }
    // Bound before any load starts: a port in use is bad input, not a run without metrics.
    let exporter = match args.metrics_listen {
        Some(addr) => match prometheus::start(addr).await {
            Ok(e) => Some(e),
            Err(e) => return bad_input(e),
        },
        None => None,
    };
    let linger = args.metrics_linger.unwrap_or_default();
    if let Some(n) = args.workers {
        template.scaling = unistore_core::template::Scaling::Fixed { workers: n };
    }
    // `--workers N` (even 1) or a template that scales: the orchestrator runs worker processes.
    let multi = args.workers.is_some()
        || !matches!(template.scaling, unistore_core::template::Scaling::Fixed { workers: 1 });
    if multi {
        if args.log.is_some() {
            return bad_input(
                "--log writes one process's operations: it cannot be used with several workers",
            );
        }
        template.target = Some(target_url);
        let headless = crate::headless::Headless {
            template,
            results: args.results.clone(),
            control: args.control.clone(),
            no_results: args.no_results,
            on_worker_loss: args.on_worker_loss,
            json: args.json.clone(),
            exporter,
            metrics_linger: linger,
        };
        return crate::headless::run(headless, &interrupts).await;
    }
    let run_id = RunId::new();
    let table = match template.table_ref() {
        Ok(t) => t,
        Err(e) => return bad_input(e),
    };
    let store: Option<OpenedStore> = if args.no_results {
        None
    } else {
        match or_signal(&interrupts, results::open(args.results.as_deref())).await {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => return bad_input(e),
            Err(code) => return code,
        }
    };
    // The baseline is read before the load: a gate that cannot judge fails before it costs a run.
    let baseline = match (&template.gate, &store) {
        (Some(gate), Some(s)) => match crate::gate::baseline(s.reader.as_ref(), gate, &s.redacted).await {
            Ok(b) => Some((b, gate.clone())),
            Err(e) => return bad_input(e),
        },
        _ => None,
    };
    let mut options = TargetOptions::new(run_id, table, template.table_type);
    options.connect_timeout = template.timeouts.connect;
    options.statement_timeout = template.timeouts.statement;
    let redacted_target = redact_url(&target_url);
    let target = match or_signal(&interrupts, open_target(&target_url, &options)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return bad_input(e),
        Err(code) => return code,
    };
    let preparing = PreparedRun::prepare(
        template,
        run_id,
        WorkerIdentity::solo(),
        target.pool.clone(),
        target.manager.as_ref(),
    );
    let mut prepared = match or_signal(&interrupts, preparing).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return bad_input(e),
        Err(code) => return code,
    };
    prepared.target = redacted_target.clone();
    if let Some(e) = &exporter {
        e.start_run(
            run_id,
            &prepared.template.table,
            prepared.template.load.name(),
            mix_kinds(&prepared.template),
        );
    }
    prepared.config.log_operations = args.log.is_some();
    if args.threads > 1 {
        let started = if args.no_pin {
            ClientThreads::start(args.threads)
        } else {
            ClientThreads::start_pinned(args.threads)
        };
        match started {
            Ok(threads) => {
                match threads.cpus() {
                    Some(cpus) => eprintln!(
                        "client threads: {}, pinned to CPUs {}",
                        args.threads,
                        cpus.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                    ),
                    None => eprintln!("client threads: {}, unpinned", args.threads),
                }
                prepared.config.client_threads = Some(threads);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    report::print_header(&prepared, &redacted_target);
    let mut progress = report::Progress::new(args.progress, &prepared);
    let ready = match or_signal(&interrupts, prepared.connect()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return bad_input(format!("{e} (target {redacted_target})")),
        Err(code) => return code,
    };
    let sink: Option<Arc<dyn ResultsSink>> = store.as_ref().map(OpenedStore::sink);
    let mut active = ready.start(sink).await;
    interrupts.attach(active.control());
    let log_writer = match (&args.log, active.take_operation_log()) {
        (Some(path), Some(rx)) => Some(oplog::spawn_writer(path.clone(), rx)),
        _ => None,
    };
    // The engine hands over every snapshot, the last partial second included, before `finish`
    // returns: from then on the exporter's counters are the summary's totals.
    let finished = active
        .finish(|s| {
            progress.observe(s);
            if let Some(e) = &exporter {
                e.observe(s);
            }
        })
        .await;
    progress.finish();
    if let Some(e) = &exporter {
        e.finish();
    }
    let log_failed = match log_writer.map(std::thread::JoinHandle::join) {
        Some(Ok(Ok(n))) => {
            eprintln!(
                "operation log: {n} operations in {}",
                args.log.as_deref().unwrap_or(Path::new("")).display()
            );
            false
        }
        Some(Ok(Err(e))) => {
            eprintln!("error: the operation log is incomplete: {e}");
            true
        }
        Some(Err(_)) => {
            eprintln!("error: the operation log writer failed");
            true
        }
        None => false,
    };
    for w in &finished.persistence_warnings {
        eprintln!("warning: {w}");
    }
    let mut summary = finished.summary.clone();
    let gate_report = match (baseline, &store) {
        (Some((baseline, gate)), Some(s)) => Some(
            crate::gate::judge(s.reader.as_ref(), &s.sink(), &mut summary, baseline, &gate, !s.incomplete())
                .await,
        ),
        _ => None,
    };
    let summary = &summary;
    report::print_summary(summary, store.is_some());
    if let Some(r) = &gate_report {
        crate::gate::print(r);
    }
    let json_failed = args.json.as_deref().is_some_and(|path| !report::write_json(path, summary));
    let incomplete = match &store {
        Some(s) => {
            eprintln!("{}", s.final_line());
            s.incomplete()
        }
        None => {
            eprintln!("results: not stored (--no-results)");
            false
        }
    };
    let code = match (interrupts.first(), summary.verdict()) {
        (Some(sig), _) => ExitCode::from(sig.exit_code()),
        (None, Verdict::Failed | Verdict::SloFailed | Verdict::TargetNotReached | Verdict::Regressed) => {
            ExitCode::from(EXIT_FAILED)
        }
        _ if incomplete || json_failed || log_failed => ExitCode::from(EXIT_RESULTS_NOT_STORED),
        _ => ExitCode::SUCCESS,
    };
    // A signal while lingering ends the wait, not the run's exit code: the run is over.
    if exporter.is_some() {
        prometheus::linger(linger, &interrupts).await;
    }
    code
}

/// The query kinds that the template's mix runs.
pub(crate) fn mix_kinds(template: &Template) -> Vec<unistore_core::QueryKind> {
    template.mix.iter().filter(|(_, weight)| **weight > 0).map(|(kind, _)| *kind).collect()
}

/// Checks before the run that `path` can be written, so a typo does not cost the run. An
/// existing file is left as it is until the run ends; a new one is created and removed again.
fn check_writable(flag: &str, path: &Path) -> Result<(), Error> {
    let fail = |e: std::io::Error| {
        Error::invalid(format!("{flag} {} cannot be written: {e}; choose another path", path.display()))
    };
    if path.is_dir() {
        return Err(Error::invalid(format!("{flag} {} is a directory: give a file path", path.display())));
    }
    if path.exists() {
        std::fs::OpenOptions::new().append(true).open(path).map(|_| ()).map_err(fail)
    } else {
        std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(fail)?;
        std::fs::remove_file(path).map_err(fail)
    }
}

/// Builds the template from the file (if any) and the flags, and resolves the target URL.
/// With no target anywhere, the embedded demo database is used (and created on first use).
fn build_template(args: &BenchArgs) -> Result<(Template, String), Error> {
    let mut template = match &args.template {
        Some(path) => Template::from_file(path)?,
        None => Template::new(String::new(), Default::default()),
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
    let overrides = Overrides {
        table: args.table.clone(),
        table_type: args.table_type,
        mix: args.mix.clone(),
        connections: args.connections,
        qps: args.qps,
        duration: args.duration,
        warmup: args.warmup,
        cooldown: args.cooldown,
        seed: args.seed,
        key_column: args.key_column.clone(),
        allow_writes: args.allow_writes,
        connect_timeout: args.connect_timeout,
        statement_timeout: args.statement_timeout,
    };
    let template = overrides.apply(template)?;
    Ok((template, target))
}
