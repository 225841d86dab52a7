//! `unistore-worker`: the headless, pgbench-style `bench` command (and, with the controller, a
//! run worker). Thin: parse flags, build adapters through the registry, hand them to core.

// Doc comments here are command-line help text, not rustdoc: `[schema.]NAME` is not a link.
#![allow(rustdoc::broken_intra_doc_links)]

mod bench;
mod report;
mod results;
mod signals;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "unistore-worker", version, about = "Unistore Bench worker: benchmark a database table")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workload against a table and print per-second progress and a summary.
    Bench(Box<bench::BenchArgs>),
    /// Create the results and control tables of a store (the files in sql/schema/BACKEND/). Idempotent.
    Setup {
        /// Store URL: postgres://...?schema=unistore, snowflake://..., sqlite:///path.db
        #[arg(long, env = "UNISTORE_RESULTS", hide_env_values = true)]
        results: String,
    },
    /// Write results that earlier runs spooled (their store was unreachable) to the store.
    Flush {
        /// Store URL (default: the embedded SQLite file in the data directory).
        #[arg(long, env = "UNISTORE_RESULTS", hide_env_values = true)]
        results: Option<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("UNISTORE_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench::main(*args),
        Command::Setup { results } => setup(&results),
        Command::Flush { results } => flush(results.as_deref()),
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
