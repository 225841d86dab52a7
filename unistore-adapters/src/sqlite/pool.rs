//! Sessions on the SQLite database under test.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{CachedStatement, Connection, InterruptHandle, OpenFlags};
use unistore_core::target::TargetCapabilities;
use unistore_core::{Error, ErrorKind, Result, StatementSpec, TargetPool, TargetSession, Value};

use super::config::SqliteConfig;
use super::{map_error, run_blocking, BUSY_TIMEOUT};

/// Opens the user's database file: read-write, never created, no persistent setting changed.
///
/// The schema is read once so that a file that is not an SQLite database fails here, with a
/// clear message, rather than on the first measured operation.
pub(crate) fn open_user_database(path: &Path) -> Result<Connection> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(Error::invalid(format!(
                "{} is a directory, not an SQLite database file: point the sqlite:// URL at the \
                 database file",
                path.display()
            )))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::backend(
                ErrorKind::NotFound,
                format!(
                    "SQLite database file {} does not exist: check the path in the sqlite:// URL \
                     (the tool never creates a database to benchmark; the demo command creates a \
                     demo database)",
                    path.display()
                ),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Error::backend(
                ErrorKind::Permission,
                format!("cannot access SQLite database file {}: {e}", path.display()),
            ))
        }
        Err(e) => {
            return Err(Error::backend(
                ErrorKind::Connect,
                format!("cannot access SQLite database file {}: {e}", path.display()),
            ))
        }
    }
    let context = format!("opening {}", path.display());
    // No SQLITE_OPEN_CREATE: if the file disappeared since the check above, opening fails
    // instead of creating an empty database in the user's name.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| map_error(e, &context))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| map_error(e, &context))?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get::<_, i64>(0))
        .map_err(|e| map_error(e, &format!("reading the schema of {}", path.display())))?;
    Ok(conn)
}

/// Most SQLite sessions in one run: beyond this the blocking-thread pool (512 threads) and the
/// connections' page caches, not the database, decide what is measured.
pub const MAX_SQLITE_SESSIONS: u32 = 256;

/// Opens one SQLite connection per benchmark session.
#[derive(Debug, Clone)]
pub struct SqliteTargetPool {
    config: SqliteConfig,
    statement_timeout: Option<Duration>,
}

impl SqliteTargetPool {
    /// A pool on the database file of `config`. Nothing is opened until [`TargetPool::connect`].
    pub fn new(config: SqliteConfig) -> Self {
        SqliteTargetPool { config, statement_timeout: None }
    }

    /// Statements running longer than `timeout` are interrupted and counted as `TIMEOUT`
    /// errors (SQLite has no server to do it, so a progress handler checks the deadline).
    pub fn with_statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.statement_timeout = timeout;
        self
    }
}

/// The deadline of the statement running on a session, for its progress handler: nanoseconds
/// after `base`, 0 when no statement is timed.
#[derive(Debug)]
struct Deadline {
    base: Instant,
    at_ns: AtomicU64,
    expired: AtomicBool,
}

impl Deadline {
    fn arm(&self, timeout: Duration) {
        let at = self.base.elapsed().saturating_add(timeout).as_nanos();
        self.expired.store(false, Ordering::Relaxed);
        self.at_ns.store(u64::try_from(at).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn disarm(&self) -> bool {
        self.at_ns.store(0, Ordering::Relaxed);
        self.expired.load(Ordering::Relaxed)
    }

    /// Called by SQLite every few thousand virtual-machine steps: true interrupts the statement.
    fn passed(&self) -> bool {
        let at = self.at_ns.load(Ordering::Relaxed);
        if at == 0 || (self.base.elapsed().as_nanos() as u64) < at {
            return false;
        }
        self.expired.store(true, Ordering::Relaxed);
        true
    }
}

/// SQLite virtual-machine steps between two deadline checks (a few microseconds of work).
const PROGRESS_STEPS: std::os::raw::c_int = 1_000;

#[async_trait]
impl TargetPool for SqliteTargetPool {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn capabilities(&self) -> TargetCapabilities {
        // Statements are compiled once into sqlite3_stmt handles inside the database engine
        // (which here lives in-process), and a running statement can be interrupted.
        TargetCapabilities { cancel: true, server_side_prepare: true }
    }

    fn max_sessions(&self) -> Option<(u32, &'static str)> {
        Some((
            MAX_SQLITE_SESSIONS,
            "SQLite runs inside this process, each connection keeps its own page cache (up to 2 MB) \
             and runs on a shared pool of blocking threads, so more connections measure thread \
             scheduling and memory, not the database; use fewer connections",
        ))
    }

    async fn connect(&self) -> Result<Box<dyn TargetSession>> {
        let path = self.config.path.clone();
        let timeout = self.statement_timeout;
        let session = run_blocking("connect", move || {
            let conn = open_user_database(&path)?;
            let interrupt = conn.get_interrupt_handle();
            let deadline = timeout.map(|_| {
                let d = Arc::new(Deadline {
                    base: Instant::now(),
                    at_ns: AtomicU64::new(0),
                    expired: AtomicBool::new(false),
                });
                let check = d.clone();
                conn.progress_handler(PROGRESS_STEPS, Some(move || check.passed()));
                d
            });
            Ok(SqliteTargetSession {
                state: Some(SessionState {
                    conn,
                    statements: Vec::new(),
                    param_counts: Vec::new(),
                    params: Vec::with_capacity(8),
                    timeout: timeout.zip(deadline),
                }),
                interrupt,
                path,
            })
        })
        .await?;
        Ok(Box::new(session))
    }
}

/// What moves to the blocking pool and back on every call: the connection, the statements'
/// SQL (the key of rusqlite's statement cache) and a reusable parameter buffer.
struct SessionState {
    conn: Connection,
    statements: Vec<String>,
    param_counts: Vec<usize>,
    params: Vec<Value>,
    timeout: Option<(Duration, Arc<Deadline>)>,
}

/// One connection to the database under test.
pub struct SqliteTargetSession {
    /// `None` only after a blocking call panicked: the connection went with it.
    state: Option<SessionState>,
    interrupt: InterruptHandle,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteTargetSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTargetSession")
            .field("path", &self.path)
            .field("statements", &self.state.as_ref().map(|s| s.statements.len()))
            .finish()
    }
}

impl SqliteTargetSession {
    fn take_state(&mut self) -> Result<SessionState> {
        self.state.take().ok_or_else(|| {
            Error::backend(
                ErrorKind::Connect,
                format!(
                    "the SQLite connection to {} was lost after an internal failure: open a new \
                     session",
                    self.path.display()
                ),
            )
        })
    }

    /// Runs `f` on the blocking pool with the session state, and puts the state back.
    async fn with_state<T, F>(&mut self, what: &'static str, f: F) -> Result<T>
    where
        F: FnOnce(&mut SessionState) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let mut state = self.take_state()?;
        let joined = tokio::task::spawn_blocking(move || {
            let result = f(&mut state);
            (state, result)
        })
        .await;
        match joined {
            Ok((state, result)) => {
                self.state = Some(state);
                result
            }
            Err(e) => Err(Error::backend(
                ErrorKind::Connect,
                format!("SQLite {what} on {} failed internally: {e}", self.path.display()),
            )),
        }
    }
}

#[async_trait]
impl TargetSession for SqliteTargetSession {
    async fn prepare(&mut self, statements: &[StatementSpec]) -> Result<()> {
        let specs: Vec<(String, String, usize)> =
            statements.iter().map(|s| (s.kind.to_string(), s.sql.clone(), s.params.len())).collect();
        self.with_state("prepare", move |state| {
            // Keep every statement of the plan compiled, plus room for the few the tool runs
            // itself, so that the cache never evicts one mid-run.
            state.conn.set_prepared_statement_cache_capacity(specs.len() + 16);
            let mut sqls = Vec::with_capacity(specs.len());
            let mut counts = Vec::with_capacity(specs.len());
            for (kind, sql, expected) in specs {
                let stmt = state
                    .conn
                    .prepare_cached(&sql)
                    .map_err(|e| map_error(e, &format!("preparing the {kind} statement `{sql}`")))?;
                let actual = stmt.parameter_count();
                if actual != expected {
                    return Err(Error::invalid(format!(
                        "the {kind} statement `{sql}` has {actual} parameters but {expected} \
                         values are generated for it: make the number of `?` match the params"
                    )));
                }
                drop(stmt);
                sqls.push(sql);
                counts.push(expected);
            }
            state.statements = sqls;
            state.param_counts = counts;
            Ok(())
        })
        .await
    }

    async fn execute(&mut self, statement: usize, params: &[Value]) -> Result<u64> {
        let state = self.state.as_mut().ok_or_else(|| {
            Error::backend(ErrorKind::Connect, "the SQLite session was lost: open a new session")
        })?;
        let Some(&expected) = state.param_counts.get(statement) else {
            return Err(Error::invalid(format!(
                "statement {statement} was not prepared on this session ({} are)",
                state.param_counts.len()
            )));
        };
        if params.len() != expected {
            return Err(Error::invalid(format!(
                "statement {statement} takes {expected} parameters, {} were given",
                params.len()
            )));
        }
        // The buffer keeps its capacity across calls: copying a few values (text is
        // reference-counted) allocates nothing in steady state.
        state.params.clear();
        state.params.extend_from_slice(params);
        self.with_state("execute", move |state| state.execute(statement, false).map(|(n, _)| n)).await
    }

    async fn execute_returning(
        &mut self,
        statement: usize,
        params: &[Value],
    ) -> Result<(u64, Option<Value>)> {
        let state = self.state.as_mut().ok_or_else(|| {
            Error::backend(ErrorKind::Connect, "the SQLite session was lost: open a new session")
        })?;
        if state.param_counts.get(statement) != Some(&params.len()) {
            return Err(Error::invalid(format!(
                "statement {statement} was not prepared with {} parameters",
                params.len()
            )));
        }
        state.params.clear();
        state.params.extend_from_slice(params);
        self.with_state("execute", move |state| state.execute(statement, true)).await
    }

    async fn cancel(&mut self) -> Result<()> {
        self.interrupt.interrupt();
        Ok(())
    }
}

impl SessionState {
    /// Runs statement `statement`; with `capture`, also returns the first row's first column
    /// (`INSERT ... RETURNING key`).
    fn execute(&mut self, statement: usize, capture: bool) -> Result<(u64, Option<Value>)> {
        let Some((timeout, deadline)) = self.timeout.clone() else {
            return self.execute_untimed(statement, capture);
        };
        deadline.arm(timeout);
        let result = self.execute_untimed(statement, capture);
        if deadline.disarm() && result.is_err() {
            return Err(Error::backend(
                ErrorKind::Timeout,
                format!(
                    "the statement ran longer than the statement timeout of {} and was interrupted",
                    humantime_ms(timeout)
                ),
            ));
        }
        result
    }

    fn execute_untimed(&mut self, statement: usize, capture: bool) -> Result<(u64, Option<Value>)> {
        let sql = &self.statements[statement];
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| map_error(e, "executing a statement"))?;
        for (i, value) in self.params.iter().enumerate() {
            bind(&mut stmt, i + 1, value)?;
        }
        let outcome = if stmt.column_count() > 0 {
            let mut rows = stmt.raw_query();
            let mut n = 0u64;
            let mut first = None;
            loop {
                match rows.next() {
                    Ok(Some(row)) => {
                        if capture && n == 0 {
                            first = row.get_ref(0).ok().map(value_of);
                        }
                        n += 1;
                    }
                    Ok(None) => break Ok((n, first)),
                    Err(e) => break Err(e),
                }
            }
        } else {
            stmt.raw_execute().map(|changed| (changed as u64, None))
        };
        outcome.map_err(|e| map_error(e, &format!("executing `{sql}`")))
    }
}

/// A returned column as a value the engine can bind again.
fn value_of(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(t) => Value::text(String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => Value::text(String::from_utf8_lossy(b)),
    }
}

fn humantime_ms(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Binds one value. Timestamps become text in SQLite's own date format, which its date
/// functions understand and which sorts in time order.
pub(crate) fn bind(stmt: &mut CachedStatement<'_>, index: usize, value: &Value) -> Result<()> {
    let bound = match value {
        Value::Null => stmt.raw_bind_parameter(index, rusqlite::types::Null),
        Value::Bool(b) => stmt.raw_bind_parameter(index, i64::from(*b)),
        Value::Int(i) => stmt.raw_bind_parameter(index, *i),
        Value::Float(x) => stmt.raw_bind_parameter(index, *x),
        Value::Text(s) => stmt.raw_bind_parameter(index, &**s),
        Value::Timestamp(micros) => {
            let text = format_timestamp_micros(*micros)?;
            stmt.raw_bind_parameter(index, text)
        }
    };
    bound.map_err(|e| map_error(e, &format!("binding parameter {index}")))
}

/// `YYYY-MM-DD HH:MM:SS.ffffff`, UTC.
pub(crate) fn format_timestamp_micros(micros: i64) -> Result<String> {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .ok_or_else(|| Error::invalid(format!("timestamp {micros} µs is out of range")))
}
