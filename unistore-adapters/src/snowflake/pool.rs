//! Sessions: the benchmark's target pool, a small pool of sessions for the tool's own stores,
//! statement binding and error classification.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use snowflake_connector_rs::bind::{BindType, RawBind, TimestampNtz};
use snowflake_connector_rs::{
    CellValue, Client, DynamicRow, ErrorKind as DriverErrorKind, PositionalBinds, QueryCanceller, Session,
    Statement,
};
use tokio::sync::Semaphore;
use unistore_core::target::TargetCapabilities;
use unistore_core::{
    Error, ErrorKind, Result, RunId, RunPhase, StatementSpec, TargetPool, TargetSession, Value,
};

use super::config::SnowflakeConfig;
use super::http::{ConnectionFigures, HttpCounters};

/// Logs in, at most `login_parallelism` at a time, with a given query tag. Every client it makes
/// sends its API requests through one kept-alive HTTP client ([`super::http`]), so all sessions of
/// a target share one pool of connections and one set of [`ConnectionFigures`].
pub(crate) struct Connector {
    pub(crate) config: SnowflakeConfig,
    logins: Semaphore,
    clients: Mutex<Clients>,
    counters: Arc<HttpCounters>,
}

#[derive(Default)]
struct Clients {
    api_http: Option<reqwest::Client>,
    /// By query tag and whether the sessions run the load (statement timeout).
    by_tag: Vec<(String, bool, Client)>,
}

impl Connector {
    pub(crate) fn new(config: SnowflakeConfig) -> Arc<Self> {
        let permits = config.login_parallelism.max(1);
        Arc::new(Connector {
            config,
            logins: Semaphore::new(permits),
            clients: Mutex::new(Clients::default()),
            counters: Arc::default(),
        })
    }

    fn client(&self, query_tag: &str, load: bool) -> Result<Client> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, _, c)) = clients.by_tag.iter().find(|(t, l, _)| t == query_tag && *l == load) {
            return Ok(c.clone());
        }
        let api_http = match &clients.api_http {
            Some(http) => http.clone(),
            None => {
                let http = super::http::api_client(&self.config, self.counters.clone())?;
                clients.api_http = Some(http.clone());
                http
            }
        };
        let client = self.config.client(query_tag, load, api_http)?;
        clients.by_tag.push((query_tag.to_string(), load, client.clone()));
        Ok(client)
    }

    /// How this connector's clients used the network so far.
    pub(crate) fn figures(&self) -> ConnectionFigures {
        self.counters.figures()
    }

    /// Opens a new session whose `QUERY_TAG` is `query_tag`; `load` sessions also carry the
    /// statement timeout. The login as a whole is bounded by the connect timeout (waiting for
    /// a login slot is not).
    pub(crate) async fn login(&self, query_tag: &str, load: bool) -> Result<Session> {
        let client = self.client(query_tag, load)?;
        let _permit = self
            .logins
            .acquire()
            .await
            .map_err(|_| Error::backend(ErrorKind::Other, "the Snowflake login limiter was closed"))?;
        let limit = self.config.connect_timeout;
        let endpoint = self.config.endpoint();
        let timed_out = || {
            Error::backend(
                ErrorKind::Timeout,
                format!(
                    "logging in to {endpoint} timed out after {}: the server did not accept the \
                     connection or never answered; check host= and the network, or raise the connect \
                     timeout (connect_timeout_s= in the URL) [target {}]",
                    human_duration(limit),
                    self.config.redacted
                ),
            )
        };
        match tokio::time::timeout(limit, client.create_session()).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(e)) if e.kind() == DriverErrorKind::Timeout => Err(timed_out()),
            Ok(Err(e)) => {
                Err(map_error(e, &format!("login to {endpoint} failed [target {}]", self.config.redacted)))
            }
            Err(_) => Err(timed_out()),
        }
    }
}

/// `2 s`, `1.5 s`, `250 ms`: durations in messages.
pub(crate) fn human_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A handful of sessions shared by the tool's own stores and the table managers. Statements on
/// one Snowflake session must not overlap, so each caller takes a session for the duration of
/// its statements and gives it back.
pub(crate) struct SessionPool {
    connector: Arc<Connector>,
    query_tag: String,
    idle: Mutex<Vec<Session>>,
    limit: Semaphore,
}

pub(crate) struct PooledSession<'a> {
    pool: &'a SessionPool,
    session: Option<Session>,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl std::ops::Deref for PooledSession<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        // Present from construction until drop.
        self.session.as_ref().unwrap_or_else(|| unreachable!("a pooled session is present until dropped"))
    }
}

impl Drop for PooledSession<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            self.pool.idle.lock().unwrap_or_else(|p| p.into_inner()).push(s);
        }
    }
}

impl PooledSession<'_> {
    /// Drops the session instead of returning it (after a connection-level failure).
    pub(crate) fn discard(mut self) {
        self.session = None;
    }
}

impl SessionPool {
    pub(crate) fn new(connector: Arc<Connector>, query_tag: impl Into<String>, size: usize) -> Self {
        SessionPool {
            connector,
            query_tag: query_tag.into(),
            idle: Mutex::new(Vec::new()),
            limit: Semaphore::new(size.max(1)),
        }
    }

    pub(crate) fn config(&self) -> &SnowflakeConfig {
        &self.connector.config
    }

    pub(crate) async fn acquire(&self) -> Result<PooledSession<'_>> {
        let permit = self
            .limit
            .acquire()
            .await
            .map_err(|_| Error::backend(ErrorKind::Other, "the Snowflake session pool was closed"))?;
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let session = match idle {
            Some(s) => s,
            None => self.connector.login(&self.query_tag, false).await?,
        };
        Ok(PooledSession { pool: self, session: Some(session), _permit: permit })
    }

    /// Runs a query and returns its rows.
    pub(crate) async fn rows(&self, sql: &str, params: &[Value]) -> Result<Vec<DynamicRow>> {
        let session = self.acquire().await?;
        let result = query_rows(&session, sql, params).await;
        self.finish(session, result)
    }

    /// Runs a statement and returns the rows it affected (DML) or returned (queries).
    pub(crate) async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let session = self.acquire().await?;
        let result = execute_counting(&session, sql, params).await;
        self.finish(session, result)
    }

    /// A session whose connection failed, or whose statement may still be running after a
    /// client-side timeout, is not reused.
    fn finish<T>(&self, session: PooledSession<'_>, result: Result<T>) -> Result<T> {
        match result {
            Err(e) if e.kind() == ErrorKind::Timeout => {
                session.discard();
                let config = self.config();
                let message = format!(
                    "{e} (a statement of the tool's own on {} timed out after {}: query_timeout_s= in the \
                     URL raises it)",
                    config.endpoint(),
                    human_duration(config.query_timeout)
                );
                Err(e.with_message(message))
            }
            Err(e) => {
                if e.kind() == ErrorKind::Connect {
                    session.discard();
                }
                Err(e)
            }
            ok => ok,
        }
    }
}

/// Builds a statement with positional binds.
pub(crate) fn bound(
    sql: impl Into<Cow<'static, str>>,
    params: &[Value],
) -> Result<Statement<PositionalBinds>> {
    let mut statement = Statement::new_positional(sql);
    for v in params {
        statement = match v {
            // Real Snowflake accepts typed NULLs; the emulator layer rebinds them as ANY.
            Value::Null => statement.bind(RawBind::null(BindType::Text)),
            Value::Bool(b) => statement.bind(*b),
            Value::Int(i) => statement.bind(*i),
            Value::Float(f) => statement.bind(*f),
            Value::Text(s) => statement.bind(s.to_string()),
            Value::Timestamp(us) => {
                let ts = chrono::DateTime::from_timestamp_micros(*us).ok_or_else(|| {
                    Error::invalid(format!("timestamp {us} µs since the epoch is out of range"))
                })?;
                let ntz = TimestampNtz::try_from(ts.naive_utc())
                    .map_err(|e| Error::invalid(format!("cannot bind timestamp {ts}: {e}")))?;
                statement.bind(ntz)
            }
        };
    }
    Ok(statement)
}

pub(crate) async fn query_rows(session: &Session, sql: &str, params: &[Value]) -> Result<Vec<DynamicRow>> {
    let statement = bound(sql.to_string(), params)?;
    let cursor = session.query(statement).await.map_err(|e| map_error(e, "query"))?;
    cursor.collect::<Vec<DynamicRow>>().await.map_err(|e| map_error(e, "reading query results"))
}

/// Runs a statement; DML reports the rows it changed (Snowflake returns them as a one-row result
/// whose columns are named `number of rows inserted/updated/deleted`), queries the rows read.
pub(crate) async fn execute_counting(session: &Session, sql: &str, params: &[Value]) -> Result<u64> {
    let statement = bound(sql.to_string(), params)?;
    let cursor = session.query(statement).await.map_err(|e| map_error(e, "statement"))?;
    count_rows(cursor).await
}

async fn count_rows(mut cursor: snowflake_connector_rs::ResultCursor) -> Result<u64> {
    let dml_columns: Vec<usize> = cursor
        .schema()
        .columns()
        .iter()
        .filter(|c| {
            let n = c.name().to_ascii_lowercase();
            n.starts_with("number of rows") && !n.contains("multi-joined")
        })
        .map(|c| c.index())
        .collect();
    if dml_columns.is_empty() {
        let mut rows = 0u64;
        while let Some(table) = cursor.next_table().await.map_err(|e| map_error(e, "reading results"))? {
            rows += table.row_count() as u64;
        }
        return Ok(rows);
    }
    let rows: Vec<DynamicRow> = cursor.collect().await.map_err(|e| map_error(e, "reading results"))?;
    let mut changed = 0u64;
    if let Some(row) = rows.first() {
        for i in dml_columns {
            if let Ok(v) = row.value_at(i) {
                changed += cell_i64(v).unwrap_or(0).max(0) as u64;
            }
        }
    }
    Ok(changed)
}

/// An integer from a cell (numbers may arrive as integers, decimals or text).
pub(crate) fn cell_i64(v: &CellValue) -> Option<i64> {
    match v {
        CellValue::Integer(i) => i64::try_from(*i).ok(),
        CellValue::Float(f) => Some(*f as i64),
        CellValue::Decimal(d) => d.raw().split('.').next().and_then(|s| s.parse().ok()),
        CellValue::String(s) => s.trim().parse().ok(),
        CellValue::Boolean(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A string from a cell (any scalar rendered as text; NULL is `None`).
pub(crate) fn cell_text(v: &CellValue) -> Option<String> {
    match v {
        CellValue::Null => None,
        CellValue::String(s) => Some(s.clone()),
        CellValue::Integer(i) => Some(i.to_string()),
        CellValue::Float(f) => Some(f.to_string()),
        CellValue::Decimal(d) => Some(d.raw().to_string()),
        CellValue::Boolean(b) => Some(b.to_string()),
        CellValue::Json(j) => Some(j.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// Maps a connector error to a core error, classifying Snowflake's error codes first.
///
/// The connector's error is kept as the source only when it is Snowflake's answer (a server
/// error, an expired session, a cancelled statement): its text is then the code, Snowflake's
/// message and the query id, all in our message already. Other connector errors may carry a
/// request URL (a pre-signed result-chunk URL holds a signature) or login details in their
/// source chain, so they are not attached.
pub(crate) fn map_error(e: snowflake_connector_rs::Error, context: &str) -> Error {
    let code = e.snowflake_code().unwrap_or("").to_string();
    let message = e.snowflake_message().map(str::to_string).unwrap_or_else(|| e.to_string());
    let lower = message.to_ascii_lowercase();
    let kind = code_kind(&code, &lower).unwrap_or_else(|| match e.kind() {
        DriverErrorKind::Auth => ErrorKind::Permission,
        DriverErrorKind::Network | DriverErrorKind::SessionExpired => ErrorKind::Connect,
        DriverErrorKind::Timeout => ErrorKind::Timeout,
        DriverErrorKind::Config | DriverErrorKind::BindEncode => ErrorKind::InvalidInput,
        _ => message_kind(&lower),
    });
    let code_part = if code.is_empty() { String::new() } else { format!(" [{code}]") };
    let mut error = Error::backend(kind, format!("Snowflake {context}{code_part}: {message}"));
    if !code.is_empty() {
        error = error.with_code(code);
    }
    if matches!(
        e.kind(),
        DriverErrorKind::Server | DriverErrorKind::SessionExpired | DriverErrorKind::Cancelled
    ) {
        error = error.with_source(e);
    }
    error
}

/// Classifies a Snowflake error code (and, where codes are shared, the message), as
/// [`map_error`] does for an error the connector puts in no category of its own.
#[cfg(test)]
pub(crate) fn classify(code: &str, lower_message: &str) -> ErrorKind {
    code_kind(code, lower_message).unwrap_or_else(|| message_kind(lower_message))
}

/// The kind a Snowflake error code says, if this table knows the code.
fn code_kind(code: &str, lower_message: &str) -> Option<ErrorKind> {
    Some(match code {
        // Login: incorrect user/password, JWT invalid, user locked/disabled, MFA, role/IP.
        "390100" | "390101" | "390102" | "390144" | "390186" | "390189" | "390422" | "390197" => {
            ErrorKind::Permission
        }
        // Session gone: log in again.
        "390104" | "390111" | "390112" | "390114" => ErrorKind::Connect,
        // Object does not exist or not authorized; invalid identifier; column not found.
        "002003" | "002043" | "000904" | "002140" => ErrorKind::NotFound,
        // No active warehouse / warehouse missing.
        "000606" => ErrorKind::InvalidInput,
        // Insufficient privileges.
        "003001" | "003011" => ErrorKind::Permission,
        // Syntax / compilation.
        "001003" | "001007" | "002001" | "002262" => ErrorKind::Syntax,
        // Lock wait timeout / lock conflict / deadlock on hybrid tables.
        "000625" | "000626" | "000629" | "200000" => ErrorKind::Conflict,
        // 000604 is any cancelled statement: only the message says it was the timeout.
        "000604" if lower_message.contains("timeout") => ErrorKind::Timeout,
        "000630" | "000631" => ErrorKind::Timeout,
        // Duplicate key in an enforced (hybrid) key, NOT NULL violations.
        "200001" | "100072" | "100071" => ErrorKind::Constraint,
        // Too many requests / queued statements.
        "000610" | "000611" | "000612" | "390400" => ErrorKind::Throttled,
        _ => return None,
    })
}

/// The kind of an error whose code this table does not know (or that has none, as some of the
/// emulator's): Snowflake's message is then all there is to go by.
fn message_kind(lower_message: &str) -> ErrorKind {
    match lower_message {
        m if m.contains("throttl") || m.contains("too many requests") => ErrorKind::Throttled,
        m if m.contains("duplicate key") || m.contains("unique constraint") => ErrorKind::Constraint,
        m if m.contains("does not exist") => ErrorKind::NotFound,
        m if m.contains("lock") && m.contains("conflict") => ErrorKind::Conflict,
        _ => ErrorKind::Other,
    }
}

/// The query tag of a benchmark session.
pub fn query_tag(run_id: RunId, phase: RunPhase) -> String {
    format!("unistore:run={run_id}:phase={}", phase.as_str())
}

fn phase_index(phase: RunPhase) -> u8 {
    RunPhase::ALL.iter().position(|p| *p == phase).unwrap_or(0) as u8
}

/// Sessions to the database under test: one Snowflake session per benchmark connection.
pub struct SnowflakeTargetPool {
    connector: Arc<Connector>,
    run_id: RunId,
    phase: Arc<AtomicU8>,
    /// Cancellers of the statements running now, by session number, for `cancel_in_flight`.
    in_flight: InFlight,
    next_session: Arc<std::sync::atomic::AtomicU64>,
    /// How a statement that ran out of time is described: budget, endpoint, which setting.
    timeout_note: Arc<str>,
}

type InFlight = Arc<Mutex<std::collections::HashMap<u64, QueryCanceller>>>;

impl std::fmt::Debug for SnowflakeTargetPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeTargetPool")
            .field("target", &self.connector.config.redacted)
            .field("run_id", &self.run_id)
            .finish()
    }
}

impl SnowflakeTargetPool {
    /// A pool for `config`, tagging sessions with `run_id` and the phase (initially WARMUP).
    pub fn new(config: SnowflakeConfig, run_id: RunId) -> Self {
        Self::with_connector(Connector::new(config), run_id)
    }

    pub(crate) fn with_connector(connector: Arc<Connector>, run_id: RunId) -> Self {
        let config = &connector.config;
        let budget = human_duration(config.statement_budget());
        let timeout_note = match config.statement_timeout {
            Some(limit) => format!(
                "timed out after {budget} on {} (statement timeout {}, sent as STATEMENT_TIMEOUT_IN_SECONDS, \
                 plus time for the server's answer)",
                config.endpoint(),
                human_duration(limit)
            ),
            None => format!(
                "timed out after {budget} on {} (query_timeout_s; a statement timeout makes the server cancel \
                 long statements itself)",
                config.endpoint()
            ),
        };
        SnowflakeTargetPool {
            connector,
            run_id,
            phase: Arc::new(AtomicU8::new(phase_index(RunPhase::Warmup))),
            in_flight: Arc::default(),
            next_session: Arc::default(),
            timeout_note: Arc::from(timeout_note),
        }
    }

    /// How the pool's sessions (and the table manager's, when opened together by
    /// [`crate::open_target`]) used the network so far: connections opened, requests, retries.
    pub fn connection_figures(&self) -> ConnectionFigures {
        self.connector.figures()
    }

    /// Moves the sessions' `QUERY_TAG` to `phase`: new sessions log in with it, open sessions
    /// switch (`ALTER SESSION SET QUERY_TAG`) before their next statement, so that server-side
    /// history can be split by phase.
    pub fn set_phase(&self, phase: RunPhase) {
        self.phase.store(phase_index(phase), Ordering::Relaxed);
    }

    fn current_phase(&self) -> RunPhase {
        RunPhase::ALL.get(self.phase.load(Ordering::Relaxed) as usize).copied().unwrap_or(RunPhase::Warmup)
    }
}

#[async_trait]
impl TargetPool for SnowflakeTargetPool {
    fn kind(&self) -> &'static str {
        "snowflake"
    }

    fn set_phase(&self, phase: RunPhase) {
        SnowflakeTargetPool::set_phase(self, phase);
    }

    async fn finish_server_stats(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<serde_json::Value>> {
        let client = self.connector.figures();
        tracing::info!(
            "Snowflake client: {} HTTP requests over {} connections, {} retried after the server closed a \
             kept-alive connection",
            client.requests,
            client.connections_opened,
            client.reconnect_retries
        );
        if client.reconnect_retries > 0 {
            tracing::warn!(
                "{} Snowflake requests were sent twice because the server had closed their kept-alive \
                 connection; their latency includes a new connection",
                client.reconnect_retries
            );
        }
        let mut history =
            super::history::collect_with_config(self.connector.config.clone(), self.run_id, since).await;
        history.client = Some(client);
        serde_json::to_value(&history).map(Some).map_err(|e| {
            Error::backend(ErrorKind::Other, format!("cannot serialize the server-side figures: {e}"))
        })
    }

    fn capabilities(&self) -> TargetCapabilities {
        TargetCapabilities { cancel: true, server_side_prepare: false }
    }

    async fn connect(&self) -> Result<Box<dyn TargetSession>> {
        let phase = self.current_phase();
        let session = self.connector.login(&query_tag(self.run_id, phase), true).await?;
        Ok(Box::new(SnowflakeTargetSession {
            session,
            timeout_note: self.timeout_note.clone(),
            statements: Vec::new(),
            run_id: self.run_id,
            tagged_phase: phase_index(phase),
            pool_phase: self.phase.clone(),
            canceller: None,
            id: self.next_session.fetch_add(1, Ordering::Relaxed),
            in_flight: self.in_flight.clone(),
        }))
    }

    async fn cancel_in_flight(&self) -> Result<u64> {
        let running: Vec<QueryCanceller> =
            self.in_flight.lock().map(|mut m| m.drain().map(|(_, c)| c).collect()).unwrap_or_default();
        let mut sent = 0;
        for canceller in running {
            canceller.cancel().await.map_err(|e| map_error(e, "cancel"))?;
            sent += 1;
        }
        Ok(sent)
    }
}

struct PreparedStatement {
    sql: Arc<str>,
    params: usize,
}

/// One benchmark connection: a Snowflake session executing bound statements.
///
/// Snowflake has no client-visible prepared statements; binding parameters (instead of literal
/// SQL) is what lets the server reuse the compiled plan, which matters most for hybrid tables.
pub struct SnowflakeTargetSession {
    session: Session,
    statements: Vec<PreparedStatement>,
    run_id: RunId,
    tagged_phase: u8,
    pool_phase: Arc<AtomicU8>,
    canceller: Option<QueryCanceller>,
    id: u64,
    in_flight: InFlight,
    timeout_note: Arc<str>,
}

impl std::fmt::Debug for SnowflakeTargetSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeTargetSession").field("statements", &self.statements.len()).finish()
    }
}

#[async_trait]
impl TargetSession for SnowflakeTargetSession {
    async fn prepare(&mut self, statements: &[StatementSpec]) -> Result<()> {
        self.statements = statements
            .iter()
            .map(|s| {
                let placeholders = unistore_core::template::count_placeholders(&s.sql);
                if placeholders != s.params.len() {
                    return Err(Error::invalid(format!(
                        "statement `{}` has {placeholders} `?` placeholders but {} parameters",
                        s.sql,
                        s.params.len()
                    )));
                }
                Ok(PreparedStatement { sql: Arc::from(s.sql.as_str()), params: s.params.len() })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(())
    }

    async fn execute(&mut self, statement: usize, params: &[Value]) -> Result<u64> {
        let pool_phase = self.pool_phase.load(Ordering::Relaxed);
        if pool_phase != self.tagged_phase {
            let phase = RunPhase::ALL.get(pool_phase as usize).copied().unwrap_or(RunPhase::Warmup);
            // The tag is built from a UUID and a phase name: nothing to escape.
            let sql = format!("ALTER SESSION SET QUERY_TAG = '{}'", query_tag(self.run_id, phase));
            execute_counting(&self.session, &sql, &[]).await?;
            self.tagged_phase = pool_phase;
        }
        let prepared = self.statements.get(statement).ok_or_else(|| {
            Error::invalid(format!(
                "statement {statement} was not prepared ({} statements are)",
                self.statements.len()
            ))
        })?;
        if params.len() != prepared.params {
            return Err(Error::invalid(format!(
                "statement {statement} takes {} parameters, got {}",
                prepared.params,
                params.len()
            )));
        }
        let bound = bound(prepared.sql.to_string(), params)?;
        let handle = self.session.query_handle(bound).map_err(|e| map_error(e, "statement"))?;
        let canceller = handle.canceller();
        if let Ok(mut running) = self.in_flight.lock() {
            running.insert(self.id, canceller.clone());
        }
        self.canceller = Some(canceller);
        let result = match handle.execute().await {
            Ok(cursor) => count_rows(cursor).await,
            Err(e) if e.kind() == DriverErrorKind::Timeout => {
                // The client stopped waiting; make sure the server stops the statement too.
                if let Some(canceller) = self.canceller.clone() {
                    tokio::spawn(async move {
                        if let Err(e) = canceller.cancel().await {
                            tracing::debug!("aborting a timed-out Snowflake statement failed: {e}");
                        }
                    });
                }
                Err(Error::backend(ErrorKind::Timeout, format!("Snowflake statement {}", self.timeout_note)))
            }
            Err(e) => Err(map_error(e, "statement")),
        };
        if let Ok(mut running) = self.in_flight.lock() {
            running.remove(&self.id);
        }
        result
    }

    async fn cancel(&mut self) -> Result<()> {
        if let Some(c) = self.canceller.take() {
            c.cancel().await.map_err(|e| map_error(e, "cancel"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_codes_map_to_core_kinds() {
        assert_eq!(classify("390100", ""), ErrorKind::Permission);
        assert_eq!(classify("390144", ""), ErrorKind::Permission);
        assert_eq!(classify("002003", ""), ErrorKind::NotFound);
        assert_eq!(classify("000625", ""), ErrorKind::Conflict);
        assert_eq!(classify("001003", ""), ErrorKind::Syntax);
        assert_eq!(classify("200001", ""), ErrorKind::Constraint);
        assert_eq!(classify("999999", "request throttled, retry"), ErrorKind::Throttled);
        assert_eq!(classify("999999", "something else"), ErrorKind::Other);
    }

    #[test]
    fn query_tags_name_the_run_and_phase() {
        let run = RunId::new();
        assert_eq!(query_tag(run, RunPhase::Measurement), format!("unistore:run={run}:phase=MEASUREMENT"));
    }
}
