//! The demo database and the tool's default locations.
//!
//! [`ensure_demo_database`] creates the table `demo_orders`, in a file of its own, so that a
//! newcomer can run a benchmark without any database at hand. **It is the only table the tool
//! ever creates**: every other table is the user's, and the tool issues no DDL against it.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use unistore_core::{Error, ErrorKind, Result};

use super::map_error;

/// Name of the demo table.
pub const DEMO_TABLE: &str = "demo_orders";
/// Rows the demo table is created with.
pub const DEMO_ROWS: u64 = 100_000;

/// The demo database, as found or created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoDatabase {
    /// The database file.
    pub path: PathBuf,
    /// The demo table (`demo_orders`).
    pub table: &'static str,
    /// Rows in the table.
    pub rows: u64,
    /// Whether this call created the file.
    pub created: bool,
}

impl DemoDatabase {
    /// The `sqlite://` URL of the demo database.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}

/// Directory for the tool's own files: `UNISTORE_DATA_DIR`, else
/// `$XDG_DATA_HOME/unistore-bench`, else `$HOME/.local/share/unistore-bench`, else `./.unistore`.
pub fn default_data_dir() -> PathBuf {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("UNISTORE_DATA_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = non_empty("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("unistore-bench");
    }
    if let Some(home) = non_empty("HOME") {
        return PathBuf::from(home).join(".local").join("share").join("unistore-bench");
    }
    PathBuf::from(".").join(".unistore")
}

/// `<data dir>/demo.db`.
pub fn default_demo_path() -> PathBuf {
    default_data_dir().join("demo.db")
}

/// `sqlite://<data dir>/results.db`: the default results and control store.
pub fn default_results_url() -> String {
    format!("sqlite://{}", default_data_dir().join("results.db").display())
}

/// Makes sure the demo database exists at `path` and returns what is in it.
///
/// A missing file is created (with its directory) holding `demo_orders` with
/// [`DEMO_ROWS`] deterministic rows and an index on `customer_id`; the file is built under a
/// temporary name and renamed into place, so an interrupted creation never leaves a half-filled
/// demo behind. An existing file is only checked: it must hold `demo_orders`, whose row count is
/// returned.
///
/// This is blocking file and database work (well under a second for the 100,000 rows in a
/// release build): from async code, call it through `tokio::task::spawn_blocking`.
pub fn ensure_demo_database(path: &Path) -> Result<DemoDatabase> {
    if path.exists() {
        let rows = count_demo_rows(path)?;
        return Ok(DemoDatabase { path: path.to_path_buf(), table: DEMO_TABLE, rows, created: false });
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io_error(parent, "create the directory", &e))?;
    }
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).ok_or_else(|| {
        Error::invalid(format!("{} is not a file path: name a file for the demo database", path.display()))
    })?;
    // A temporary file of this call's own (threads of one process, the controller's pages, may
    // create the demo at once), removed when dropped unless it is moved into place.
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        // What SQLite gives a database it creates (a temporary file is otherwise 0600).
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| io_error(dir, "create a temporary file in", &e))?;
    build_demo(temp.path())?;
    match temp.persist_noclobber(path) {
        Ok(_) => {}
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another process or thread created it meanwhile: keep theirs, it has the same content.
            let rows = count_demo_rows(path)?;
            return Ok(DemoDatabase { path: path.to_path_buf(), table: DEMO_TABLE, rows, created: false });
        }
        Err(e) => return Err(io_error(path, "move the demo database into", &e.error)),
    }
    Ok(DemoDatabase { path: path.to_path_buf(), table: DEMO_TABLE, rows: DEMO_ROWS, created: true })
}

fn io_error(path: &Path, action: &str, e: &std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::PermissionDenied => ErrorKind::Permission,
        _ => ErrorKind::Other,
    };
    Error::backend(
        kind,
        format!("cannot {action} {}: {e}; set UNISTORE_DATA_DIR to a writable directory", path.display()),
    )
}

fn count_demo_rows(path: &Path) -> Result<u64> {
    let context = format!("checking the demo database {}", path.display());
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| map_error(e, &context))?;
    let exists: Option<String> = conn
        .query_row("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1", [DEMO_TABLE], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| map_error(e, &context))?;
    if exists.is_none() {
        return Err(Error::backend(
            ErrorKind::NotFound,
            format!(
                "{} exists but has no {DEMO_TABLE} table, so it is not the demo database: move \
                 the file away or choose another demo path",
                path.display()
            ),
        ));
    }
    let rows: i64 = conn
        .query_row(&format!("SELECT count(*) FROM \"{DEMO_TABLE}\""), [], |r| r.get(0))
        .map_err(|e| map_error(e, &context))?;
    Ok(u64::try_from(rows).unwrap_or(0))
}

const STATUSES: [&str; 5] = ["NEW", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"];
/// 2024-01-01 00:00:00 UTC.
const DEMO_EPOCH_S: i64 = 1_704_067_200;

/// SplitMix64: a fixed, dependency-free mixer, so the demo rows are the same on every machine.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn build_demo(path: &Path) -> Result<()> {
    let context = format!("creating the demo database {}", path.display());
    let err = |e: rusqlite::Error| map_error(e, &context);
    let mut conn = Connection::open(path).map_err(err)?;
    conn.execute_batch(&format!(
        "CREATE TABLE \"{DEMO_TABLE}\" (
             id INTEGER PRIMARY KEY,
             customer_id INTEGER NOT NULL,
             status TEXT NOT NULL,
             amount REAL NOT NULL,
             created_at TIMESTAMP NOT NULL
         );"
    ))
    .map_err(err)?;
    let tx = conn.transaction().map_err(err)?;
    {
        let mut stmt = tx
            .prepare(&format!(
                "INSERT INTO \"{DEMO_TABLE}\" (id, customer_id, status, amount, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)"
            ))
            .map_err(err)?;
        for id in 1..=DEMO_ROWS {
            let h = mix(id);
            let customer_id = (h % 5_000) as i64 + 1;
            let status = STATUSES[((h >> 16) % STATUSES.len() as u64) as usize];
            let amount = ((h >> 24) % 100_000) as f64 / 100.0 + 1.0;
            // One order a minute from the epoch, so time-range scans have an even spread.
            let at = DEMO_EPOCH_S + id as i64 * 60;
            let created_at = chrono::DateTime::from_timestamp(at, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
                .ok_or_else(|| Error::invalid(format!("demo timestamp {at} is out of range")))?;
            stmt.execute(params![id as i64, customer_id, status, amount, created_at]).map_err(err)?;
        }
    }
    tx.commit().map_err(err)?;
    // The index is built after the load: one sort instead of 100,000 index insertions.
    conn.execute_batch(&format!(
        "CREATE INDEX \"{DEMO_TABLE}_customer_id\" ON \"{DEMO_TABLE}\" (customer_id); ANALYZE;"
    ))
    .map_err(err)?;
    Ok(())
}
