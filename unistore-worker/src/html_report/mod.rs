//! `report RUN_ID [RUN_ID ...] --html FILE`: stored runs as one self-contained HTML file (the
//! summary, per-kind tables, the server's figures beside the client's, charts over time and,
//! for several runs, their comparison with overlaid charts).
//!
//! Exit codes: `0` written (the path is printed), `2` bad input (an unknown or unfinished run,
//! a store that cannot be read, a file that cannot be written); nothing is written then.

mod render;
mod series;

use std::path::PathBuf;
use std::process::ExitCode;

use unistore_core::analysis::{self, CompareOptions};
use unistore_core::Error;

use crate::history;

pub use render::render;

/// `report` flags.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Runs to report; with several, the first is the baseline of the comparison.
    #[arg(required = true, value_name = "RUN_ID")]
    runs: Vec<String>,
    /// The HTML file to write (replaced whole, never left half written).
    #[arg(long, value_name = "FILE")]
    html: PathBuf,
    /// Results store URL (default: the embedded SQLite file in the data directory).
    #[arg(long, env = "UNISTORE_RESULTS", hide_env_values = true)]
    results: Option<String>,
}

async fn run(args: &ReportArgs) -> Result<(), Error> {
    // Checked before anything is read, so that a bad path fails at once.
    history::check_writable(&args.html)?;
    let store = history::Reader::open(&history::StoreArgs { results: args.results.clone() }).await?;
    let runs = history::load_finished(&store, &args.runs).await?;
    let comparison =
        if runs.len() > 1 { Some(analysis::compare(&runs, &CompareOptions::default())?) } else { None };
    let html = render(&runs, comparison.as_ref());
    history::write_whole(&args.html, html.as_bytes())
}

/// `unistore-worker report`.
pub fn main(args: ReportArgs) -> ExitCode {
    history::run_command(async {
        run(&args).await?;
        println!("{}", args.html.display());
        Ok(())
    })
}
