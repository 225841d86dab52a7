//! Opening the results store the way every command does: replay what earlier runs spooled,
//! mark abandoned runs as failed, and wrap the store so that this run's writes are retried and
//! spooled rather than lost.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use unistore_adapters::{open_results, redact_url};
use unistore_core::spool::{DurableSink, Spool};
use unistore_core::{Error, ResultsSink};

/// Default grace after a run's planned end before a `RUNNING` run without snapshots is marked
/// `FAILED` ("worker stopped without finishing"). `UNISTORE_STALE_RUN_GRACE` overrides it.
const DEFAULT_STALE_GRACE: Duration = Duration::from_secs(120);

/// A results store opened for a command.
pub struct OpenedStore {
    /// The write side with retries and the spool.
    pub durable: Arc<DurableSink>,
    /// The read side (the orchestrator reads the workers' rows back).
    pub reader: Arc<dyn unistore_core::ResultsReader>,
    /// The store's URL without secrets.
    pub redacted: String,
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore").field("url", &self.redacted).finish()
    }
}

impl OpenedStore {
    /// The write side as the runner takes it.
    pub fn sink(&self) -> Arc<dyn ResultsSink> {
        self.durable.clone()
    }

    /// The last line of a run: where its results are, said plainly.
    pub fn final_line(&self) -> String {
        let pending = self.durable.pending();
        match self.durable.spool() {
            Some(spool) if pending > 0 => format!(
                "results: NOT all stored: {pending} write(s) are waiting in {}; they are written the next time \
                 a command opens {} (or run `unistore-worker flush --results URL`)",
                spool.path().display(),
                self.redacted
            ),
            _ => format!("results: stored in {}", self.redacted),
        }
    }

    /// Whether some of this process's results are only in the spool.
    pub fn incomplete(&self) -> bool {
        self.durable.pending() > 0
    }
}

/// The directory of spool files: `<data dir>/spool`.
pub fn spool_dir() -> PathBuf {
    unistore_adapters::sqlite::demo::default_data_dir().join("spool")
}

fn stale_grace() -> Result<Duration, Error> {
    match std::env::var("UNISTORE_STALE_RUN_GRACE") {
        Ok(v) => humantime::parse_duration(v.trim()).map_err(|e| {
            Error::invalid(format!("UNISTORE_STALE_RUN_GRACE `{v}` is not a duration ({e}): write e.g. 2m"))
        }),
        Err(_) => Ok(DEFAULT_STALE_GRACE),
    }
}

/// Opens the store at `url` (default: the embedded SQLite file), replays its spool and fails
/// runs abandoned by processes that died. Problems past opening are printed as warnings: the
/// command can still run.
pub async fn open(url: Option<&str>) -> Result<OpenedStore, Error> {
    let url = url.map_or_else(unistore_adapters::sqlite::demo::default_results_url, str::to_string);
    let redacted = redact_url(&url);
    let grace = stale_grace()?;
    let store =
        open_results(&url).await.map_err(|e| Error::invalid(format!("results store {redacted}: {e}")))?;
    let spool = Spool::new(&spool_dir(), &redacted);
    if spool.pending() > 0 {
        match spool.replay(store.sink.as_ref()).await {
            Ok(r) if r.remaining == 0 && r.rejected == 0 => {
                eprintln!("wrote {} result write(s) that an earlier run had spooled to {redacted}", r.written)
            }
            Ok(r) => eprintln!(
                "warning: the spool {} still holds {} write(s) ({} written now, {} refused by the store and kept \
                 in the .rejected file): {}",
                spool.path().display(),
                r.remaining,
                r.written,
                r.rejected,
                r.last_error.unwrap_or_default()
            ),
            Err(e) => eprintln!("warning: could not replay the spool {}: {e}", spool.path().display()),
        }
    }
    match store.sink.fail_stale_runs(chrono::Utc::now(), grace).await {
        Ok(runs) if !runs.is_empty() => eprintln!(
            "marked {} abandoned run(s) as FAILED (RUNNING past their planned end without a sign of life): {}",
            runs.len(),
            runs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ),
        Ok(_) => {}
        Err(e) => eprintln!("warning: could not check for abandoned runs: {e}"),
    }
    let durable = Arc::new(DurableSink::new(store.sink.clone(), Some(spool)));
    Ok(OpenedStore { durable, reader: store.reader.clone(), redacted })
}
