//! `report RUN_ID [RUN_ID ...] --html FILE`: stored runs as one self-contained HTML file (the
//! summary, per-kind tables, the server's figures beside the client's, charts over time and,
//! for several runs, their comparison with overlaid charts).
//!
//! Exit codes: `0` written (the path is printed), `2` bad input (an unknown or unfinished run,
//! a store that cannot be read, a file that cannot be written); nothing is written then.

mod render;
mod series;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use unistore_core::analysis::{Comparison, RunData};
use unistore_core::{ResultsReader, RunId};

use crate::results;

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

/// A problem that stops the report, said in one line.
type Refusal = String;

/// Reads one finished run back from the store: its summary, how it was configured and every
/// snapshot.
pub async fn load_run(reader: &dyn ResultsReader, run_id: RunId, store: &str) -> Result<RunData, Refusal> {
    let summary = reader
        .summary(run_id, None)
        .await
        .map_err(|e| format!("cannot read run {run_id} from {store}: {e}"))?
        .ok_or_else(|| format!("no run {run_id} in {store}"))?;
    if !summary.status.is_terminal() {
        return Err(format!("run {run_id} is still {}: report it when it has finished", summary.status));
    }
    let record = reader
        .run_record(run_id, None)
        .await
        .map_err(|e| format!("cannot read run {run_id}'s record: {e}"))?;
    let snapshots =
        reader.snapshots(run_id).await.map_err(|e| format!("cannot read run {run_id}'s snapshots: {e}"))?;
    Ok(RunData { summary, record, snapshots })
}

fn parse_ids(ids: &[String]) -> Result<Vec<RunId>, Refusal> {
    let mut parsed: Vec<RunId> = Vec::with_capacity(ids.len());
    for id in ids {
        let run_id: RunId = id.parse().map_err(|e: unistore_core::Error| e.to_string())?;
        if parsed.contains(&run_id) {
            return Err(format!("run {run_id} is given twice"));
        }
        parsed.push(run_id);
    }
    Ok(parsed)
}

/// A temporary file beside `path`, so that the final rename stays on one file system and a
/// reader never sees a partial report.
fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile, Refusal> {
    if path.is_dir() {
        return Err(format!("cannot write the report to {}: it is a directory", path.display()));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".unistore-report-")
        .suffix(".html.tmp")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot write the report to {}: {e}", path.display()))
}

fn write_report(mut file: tempfile::NamedTempFile, path: &Path, html: &str) -> Result<(), Refusal> {
    let cannot = |e: &dyn std::fmt::Display| format!("cannot write the report to {}: {e}", path.display());
    file.write_all(html.as_bytes()).map_err(|e| cannot(&e))?;
    file.as_file().sync_all().map_err(|e| cannot(&e))?;
    #[cfg(unix)]
    {
        // A temporary file is private (0600); a report is a document like any other.
        use std::os::unix::fs::PermissionsExt as _;
        file.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(|e| cannot(&e))?;
    }
    file.persist(path).map_err(|e| cannot(&e.error))?;
    Ok(())
}

async fn run(args: &ReportArgs) -> Result<(), Refusal> {
    let ids = parse_ids(&args.runs)?;
    // Checked before anything is read, so that a bad path fails at once.
    let file = temp_beside(&args.html)?;
    let store = results::open(args.results.as_deref()).await.map_err(|e| e.to_string())?;
    let mut runs = Vec::with_capacity(ids.len());
    for id in ids {
        runs.push(load_run(store.reader.as_ref(), id, &store.redacted).await?);
    }
    // The lead replaces this line with `analysis::compare(&runs, &CompareOptions::default())`
    // (for two or more runs) once the analysis branch is merged.
    let comparison: Option<Comparison> = None;
    let html = render(&runs, comparison.as_ref());
    write_report(file, &args.html, &html)
}

/// `unistore-worker report`.
pub fn main(args: ReportArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => {
            println!("{}", args.html.display());
            ExitCode::SUCCESS
        }
        Err(refusal) => {
            eprintln!("error: {refusal}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn run_ids_must_be_uuids_and_given_once() {
        let id = RunId::new().to_string();
        assert_eq!(parse_ids(std::slice::from_ref(&id)).unwrap().len(), 1);
        assert!(parse_ids(&["nope".into()]).unwrap_err().contains("invalid run id `nope`"));
        assert!(parse_ids(&[id.clone(), id]).unwrap_err().contains("given twice"));
    }

    #[test]
    fn a_report_is_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.html");
        write_report(temp_beside(&path).unwrap(), &path, "<p>hi</p>").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "<p>hi</p>");
        // A directory, and a directory that does not exist, are refused before any writing.
        assert!(temp_beside(dir.path()).unwrap_err().contains("is a directory"));
        assert!(temp_beside(&dir.path().join("missing/r.html")).is_err());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("r.html")], "no temporary file is left behind");
    }
}
