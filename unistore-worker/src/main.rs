//! `unistore-worker`: the headless, pgbench-style `bench` command (and, with the controller, a
//! run worker). Thin: parse flags, build adapters through the registry, hand them to core.

// Doc comments here are command-line help text, not rustdoc: `[schema.]NAME` is not a link.
#![allow(rustdoc::broken_intra_doc_links)]

mod bench;
mod report;

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
        #[arg(long, env = "UNISTORE_RESULTS")]
        results: String,
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
    }
}

fn setup(url: &str) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
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
