//! The worker's command line as a library: the headless, pgbench-style `bench` command, the run
//! worker (`join`) and the history commands. Thin: parse flags, build adapters through the
//! registry, hand them to core.
//!
//! Two programs carry it: `unistore-worker` (a `main` over [`main`]) and the controller,
//! `unistore-server worker …`, so that a controller built alone (`cargo run -p unistore-server`)
//! can start its own run workers, always of its own version.

// Doc comments here are command-line help text, not rustdoc: `[schema.]NAME` is not a link.
#![allow(rustdoc::broken_intra_doc_links)]

mod bench;
mod gate;
mod headless;
mod history;
mod html_report;
mod join;
mod oplog;
mod prometheus;
mod report;
mod results;
mod signals;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "unistore-worker", about = "Unistore Bench worker: benchmark a database table")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workload against a table and print per-second progress and a summary.
    #[command(after_help = BENCH_HELP)]
    Bench(Box<bench::BenchArgs>),
    /// Join a multi-worker run as one of its workers (the controller starts workers this way;
    /// start one by hand on another host with the same arguments to add it to the run).
    Join(Box<join::JoinArgs>),
    /// Write stored runs as one self-contained HTML file: summary, per-kind tables, the
    /// server's figures, charts over time and, for several runs, their comparison.
    Report(Box<html_report::ReportArgs>),
    /// Create the results and control tables of a store (the files in sql/schema/BACKEND/). Idempotent.
    Setup {
        /// Store URL: postgres://...?schema=unistore, snowflake://..., sqlite:///path.db
        #[arg(long, env = "UNISTORE_RESULTS", hide_env_values = true)]
        results: String,
    },
    /// List stored runs, newest first.
    Runs(history::RunsArgs),
    /// Show one stored run: summary, per-kind table, workers, server-side figures.
    Show(history::ShowArgs),
    /// Export a run's snapshots and summaries as CSV or JSON.
    Export(history::ExportArgs),
    /// Compare two or more runs (the first is the baseline): each figure's difference, its
    /// interval and whether it is significant, warnings first.
    Compare(history::CompareArgs),
    /// Write results that earlier runs spooled (their store was unreachable) to the store.
    Flush {
        /// Store URL (default: the embedded SQLite file in the data directory).
        #[arg(long, env = "UNISTORE_RESULTS", hide_env_values = true)]
        results: Option<String>,
    },
}

const BENCH_HELP: &str = "\
Query kinds (--mix): point_lookup, range_scan, insert, update (both need --allow-writes), and
custom_sql (its statement and parameters come from a template; see the README's template format).
Load modes: closed loop (--connections), open loop (--qps RATE), and in a template a step search
for the maximum sustainable concurrency (mode = \"FIND_MAX_CONCURRENCY\").
Data directory (demo database, default results store, spool): $UNISTORE_DATA_DIR, else
$XDG_DATA_HOME/unistore-bench, else ~/.local/share/unistore-bench.
Exit codes: 0 passed, 1 failed (SLO, target rate, run FAILED), 2 bad input, 3 results spooled,
130/143 interrupted (SIGINT/SIGTERM).

Examples:
  unistore-worker bench --duration 10s --json out.json
  unistore-worker bench --target postgres://bench@db:5432/app --table public.orders \\
      --mix point_lookup=80,range_scan=20 --connections 16 --duration 60s";

/// `--version`: the version and the backends compiled in.
fn version() -> &'static str {
    let schemes: Vec<&str> = unistore_adapters::registry::supported_schemes()
        .into_iter()
        .map(|s| s.trim_end_matches("://"))
        .filter(|s| *s != "postgresql")
        .collect();
    Box::leak(format!("{} (backends: {})", env!("CARGO_PKG_VERSION"), schemes.join(", ")).into_boxed_str())
}

/// Logs to stderr (stdout carries what scripts read: results, the controller's address), at
/// the level `UNISTORE_LOG` names, else `default` (e.g. `warn`, `info`).
pub fn init_logging(default: &str) {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("UNISTORE_LOG").unwrap_or_else(|_| default.into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a file or a CI log.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The arguments between this program's path and the worker's command (`["worker"]` in the
/// controller), set once by [`main`].
static LEADING_ARGS: OnceLock<Vec<String>> = OnceLock::new();

/// How to start this same program's worker commands: its path and the arguments that select
/// them (a `bench --workers` run starts its `join` workers this way).
pub(crate) fn this_program() -> std::io::Result<(PathBuf, Vec<String>)> {
    Ok((std::env::current_exe()?, LEADING_ARGS.get().cloned().unwrap_or_default()))
}

/// Runs the worker's command line from this process's arguments. `leading_args` are the
/// arguments after the program's path that select the worker's commands: none for
/// `unistore-worker`, `["worker"]` for `unistore-server worker …`. Returns the exit code.
pub fn main(leading_args: &[&str]) -> ExitCode {
    init_logging("warn");
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let program = if args.is_empty() { OsString::from("unistore-worker") } else { args.remove(0) };
    let skip = leading_args.len().min(args.len());
    let rest = args.split_off(skip);
    let _ = LEADING_ARGS.set(leading_args.iter().map(|s| (*s).to_string()).collect());
    let mut command = <Cli as clap::CommandFactory>::command().version(version());
    if !leading_args.is_empty() {
        let name = std::path::Path::new(&program)
            .file_name()
            .map_or_else(|| "unistore-server".into(), |n| n.to_string_lossy().into_owned());
        command = command.bin_name(format!("{name} {}", leading_args.join(" ")));
    }
    let matches = command.get_matches_from(std::iter::once(program).chain(rest));
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Bench(args) => bench::main(*args),
        Command::Join(args) => join::main(*args),
        Command::Report(args) => html_report::main(*args),
        Command::Setup { results } => setup(&results),
        Command::Flush { results } => flush(results.as_deref()),
        Command::Runs(args) => history::runs(args),
        Command::Show(args) => history::show(args),
        Command::Export(args) => history::export(args),
        Command::Compare(args) => history::compare(args),
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            None
        }
    }
}

/// Opening the store replays its spool; then say what is left.
fn flush(url: Option<&str>) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(results::open(url)) {
        Ok(store) => {
            let pending = store.durable.pending();
            if pending == 0 {
                println!("nothing waiting: every spooled result is in {}", store.redacted);
                ExitCode::SUCCESS
            } else {
                println!("{}", store.final_line());
                ExitCode::from(3)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn setup(url: &str) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(unistore_adapters::apply_schema(url)) {
        Ok(()) => {
            println!("results and control tables ready in {}", unistore_adapters::redact_url(url));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
