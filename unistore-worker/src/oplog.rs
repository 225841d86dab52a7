//! `--log FILE`: every operation as a CSV line, like `pgbench -l`, for people who analyse runs
//! in other tools. Written by its own thread, so the file's pace never reaches the runtime's
//! threads (only the channel's bound does).

use std::io::Write;
use std::path::PathBuf;

use tokio::sync::mpsc;
use unistore_core::QueryExecution;

const HEADER: &str =
    "connection,kind,phase,intended_start_us,start_us,end_us,response_us,service_us,rows,ok,error_kind";

fn line(r: &QueryExecution) -> String {
    let intended = r.started_at.timestamp_micros();
    // Response time runs from the intended start, service time from the actual start.
    let start = intended + i64::try_from(r.response_us.saturating_sub(r.service_us)).unwrap_or(i64::MAX);
    let end = intended.saturating_add(i64::try_from(r.response_us).unwrap_or(i64::MAX));
    format!(
        "{},{},{},{intended},{start},{end},{},{},{},{},{}",
        r.connection,
        r.kind,
        r.phase,
        r.response_us,
        r.service_us,
        r.rows,
        u8::from(r.ok),
        r.error_kind.map(|k| k.as_str()).unwrap_or("")
    )
}

/// Writes every operation received to `path`; returns how many were written.
pub fn spawn_writer(
    path: PathBuf,
    mut rx: mpsc::Receiver<QueryExecution>,
) -> std::thread::JoinHandle<std::io::Result<u64>> {
    std::thread::spawn(move || {
        let file = std::fs::File::create(&path);
        let mut out = match file {
            Ok(f) => std::io::BufWriter::with_capacity(1 << 20, f),
            Err(e) => {
                // Keep draining, so the load does not wait on a log that cannot be written.
                while rx.blocking_recv().is_some() {}
                return Err(e);
            }
        };
        let mut n = 0u64;
        let mut failed = None;
        writeln!(out, "{HEADER}")?;
        while let Some(r) = rx.blocking_recv() {
            if failed.is_none() {
                if let Err(e) = writeln!(out, "{}", line(&r)) {
                    failed = Some(e);
                } else {
                    n += 1;
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        out.flush()?;
        Ok(n)
    })
}
