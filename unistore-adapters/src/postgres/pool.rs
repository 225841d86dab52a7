//! Sessions to the database under test, and a small connection pool for the stores.
//!
//! The hot path: one dedicated connection per benchmark connection (no pool in between), every
//! statement prepared once per connection, and parameters bound through [`PgParam`], a borrowed
//! view of the core `Value` that encodes itself in the binary format of the parameter type the
//! server inferred at prepare time. Nothing is boxed or copied per call. Over TCP (TLS or plain)
//! a plain `execute` does not go through the driver at all (see the `lean` module): the session writes
//! Bind/Execute/Sync into a reused buffer and counts the answer from a reused read buffer.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Format, IsNull, Kind, ToSql, Type};
use tokio_postgres::{Client, Statement};
use unistore_core::target::TargetCapabilities;
use unistore_core::{Error, ErrorKind, Result, RunId, StatementSpec, TargetPool, TargetSession, Value};

use super::config::PostgresConfig;
use super::connect::human;
use super::lean::{LeanConnection, LeanError};
use super::owned::OwnedConnection;
use super::stats::ServerStatsBaseline;
use super::{connection_lost, map_error, map_server_error, ServerFields};

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;
/// Days between the Unix epoch and PostgreSQL's epoch.
const PG_EPOCH_OFFSET_DAYS: i64 = 10_957;
const US_PER_DAY: i64 = 86_400_000_000;

/// A session's cancel token, and the flag that tells a cancel the run asked for from a
/// statement timeout (both are SQLSTATE 57014).
#[derive(Clone)]
struct CancelHandle {
    token: tokio_postgres::CancelToken,
    requested: Arc<AtomicBool>,
}

type SessionRegistry = Arc<Mutex<std::collections::HashMap<u64, CancelHandle>>>;

/// Opens sessions to a Postgres-family server, each tagged `application_name = unistore-<run>`
/// so that `pg_stat_activity` attributes the load to the run.
///
/// Opening a session (TCP, TLS, login, `SET statement_timeout`) and preparing its statements
/// each finish within the configuration's connect timeout. A statement timeout, when set, is
/// the session's server-side `statement_timeout`: the server cancels a longer statement, and
/// the operation counts as a `Timeout` error.
#[derive(Clone)]
pub struct PostgresTargetPool {
    config: Arc<PostgresConfig>,
    application_name: String,
    statement_timeout: Option<Duration>,
    /// `pg_stat_statements` before the load, for `finish_server_stats`.
    server_baseline: Arc<Mutex<Option<ServerStatsBaseline>>>,
    /// Cancel handles of the open sessions, by session number, for `cancel_in_flight`.
    sessions: SessionRegistry,
    next_session: Arc<std::sync::atomic::AtomicU64>,
    /// Whether sessions run plain executes on their own hot path where they can (`false`: on
    /// the driver's, for tests comparing the two).
    own_hot_path: bool,
}

impl std::fmt::Debug for PostgresTargetPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The configuration's own Debug redacts the password.
        f.debug_struct("PostgresTargetPool")
            .field("config", &self.config)
            .field("application_name", &self.application_name)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

impl PostgresTargetPool {
    /// A pool for `config`, tagging sessions with the run id.
    pub fn new(config: PostgresConfig, run_id: RunId) -> Self {
        PostgresTargetPool {
            config: Arc::new(config),
            application_name: application_name(run_id),
            statement_timeout: None,
            server_baseline: Arc::new(Mutex::new(None)),
            sessions: Arc::default(),
            next_session: Arc::default(),
            own_hot_path: true,
        }
    }

    /// Keeps every session on the driver's hot path (with `false`), as over a Unix socket: for
    /// tests that compare the session's own path with the driver's on the same server.
    #[doc(hidden)]
    pub fn with_own_hot_path(mut self, on: bool) -> Self {
        self.own_hot_path = on;
        self
    }

    /// Sets the load's statement timeout (`None`: the server's own setting stays).
    pub fn with_statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// The load's statement timeout.
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.statement_timeout
    }

    /// The `application_name` every session of this pool carries.
    pub fn application_name(&self) -> &str {
        &self.application_name
    }

    /// The parsed configuration.
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// Opens a connection outside the benchmark (for statistics or checks), tagged
    /// `<application_name>-admin` so it is not mistaken for load.
    pub async fn admin_client(&self) -> Result<Client> {
        self.config.connect(&format!("{}-admin", self.application_name)).await
    }
}

/// The `application_name` of a run's sessions. PostgreSQL keeps 63 bytes: a UUID fits.
pub fn application_name(run_id: RunId) -> String {
    format!("unistore-{run_id}")
}

#[async_trait]
impl TargetPool for PostgresTargetPool {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn capabilities(&self) -> TargetCapabilities {
        TargetCapabilities { cancel: true, server_side_prepare: true }
    }

    async fn connect(&self) -> Result<Box<dyn TargetSession>> {
        let setup = self.statement_timeout.map(statement_timeout_sql);
        let (client, connection, lean) = if self.own_hot_path {
            self.config.open_session(&self.application_name, setup.as_deref()).await?
        } else {
            let (client, connection) = self.config.open(&self.application_name, setup.as_deref()).await?;
            (client, connection, None)
        };
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let cancel =
            CancelHandle { token: client.cancel_token(), requested: Arc::new(AtomicBool::new(false)) };
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.insert(id, cancel.clone());
        }
        Ok(Box::new(PostgresSession {
            client,
            connection,
            lean,
            lean_statements: 0,
            config: self.config.clone(),
            statements: Vec::new(),
            id,
            registry: self.sessions.clone(),
            cancel_requested: cancel.requested,
            statement_timeout: self.statement_timeout,
        }))
    }

    async fn cancel_in_flight(&self) -> Result<u64> {
        // A cancel request for a session with nothing running is ignored by the server, so
        // every open session gets one.
        let handles: Vec<CancelHandle> =
            self.sessions.lock().map(|s| s.values().cloned().collect()).unwrap_or_default();
        let mut sent = 0;
        for handle in &handles {
            handle.requested.store(true, Ordering::Relaxed);
            self.config.cancel(&handle.token).await?;
            sent += 1;
        }
        Ok(sent)
    }

    async fn begin_server_stats(&self) -> Result<()> {
        let baseline = self.server_stats_before().await?;
        if let Ok(mut slot) = self.server_baseline.lock() {
            *slot = baseline;
        }
        Ok(())
    }

    async fn finish_server_stats(&self, _since: DateTime<Utc>) -> Result<Option<serde_json::Value>> {
        let baseline = self.server_baseline.lock().ok().and_then(|mut slot| slot.take());
        let Some(stats) = self.server_stats_after(baseline).await? else {
            return Ok(None);
        };
        serde_json::to_value(&stats).map(Some).map_err(|e| {
            Error::backend(ErrorKind::Other, format!("cannot serialize pg_stat_statements figures: {e}"))
        })
    }
}

struct Prepared {
    statement: Statement,
    /// The statement's name on the session's own hot path (prepared there a second time),
    /// `None` where that path is not available.
    lean_name: Option<String>,
    /// The parameters' types as the session's own path encodes for them (domains resolved to
    /// their base types, once).
    lean_types: Vec<Type>,
    /// Whether the server's completion tag carries the statement's row count (`SELECT 3`,
    /// `UPDATE 1`): such statements are executed, not queried, so the driver skips the rows
    /// instead of building a row object for each (the count is the server's own). Others
    /// (`SHOW`, `EXPLAIN`, `CALL`, ... whose tag has no count) have their rows counted.
    counts_in_tag: bool,
}

/// Whether the completion tag of `sql` carries its row count: a statement without result
/// columns, or one that starts with a keyword whose tag is `SELECT n`, `INSERT 0 n`,
/// `UPDATE n`, `DELETE n` or `MERGE n`. Anything unsure (a leading comment) counts rows.
fn counts_in_tag(sql: &str, returns_rows: bool) -> bool {
    if !returns_rows {
        return true;
    }
    let start = sql.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
    let word: String = start.chars().take_while(char::is_ascii_alphabetic).collect();
    ["SELECT", "WITH", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE", "MERGE"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

/// `SET statement_timeout` for a session: whole milliseconds, at least 1 (0 would disable it).
pub(crate) fn statement_timeout_sql(timeout: Duration) -> String {
    format!("SET statement_timeout = {}", timeout.as_millis().clamp(1, i32::MAX as u128))
}

/// One dedicated connection with its prepared statements. The session polls its connection
/// itself while a statement is in flight (see the `owned` module): no task of its own. Over
/// TLS, plain `execute`s bypass the driver: the session writes and reads the prepared
/// statement's messages itself (see the `lean` module).
pub struct PostgresSession {
    client: Client,
    connection: OwnedConnection,
    /// The session's own hot path; `None` where the driver opened the socket (see the `lean`
    /// module).
    lean: Option<LeanConnection>,
    /// Statements prepared on the hot path so far (their names' numbers).
    lean_statements: u64,
    config: Arc<PostgresConfig>,
    statements: Vec<Prepared>,
    id: u64,
    registry: SessionRegistry,
    /// Set when a cancel request was sent for this session (run stop, `cancel`).
    cancel_requested: Arc<AtomicBool>,
    statement_timeout: Option<Duration>,
}

impl Drop for PostgresSession {
    fn drop(&mut self) {
        if let Ok(mut sessions) = self.registry.lock() {
            sessions.remove(&self.id);
        }
    }
}

impl std::fmt::Debug for PostgresSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSession").field("statements", &self.statements.len()).finish()
    }
}

#[async_trait]
impl TargetSession for PostgresSession {
    async fn prepare(&mut self, statements: &[StatementSpec]) -> Result<()> {
        // Preparing is the last step of opening a session: it gets the connect timeout too.
        // Parse analysis takes a lock on each table, so a table locked by a migration would
        // otherwise hang the run before it starts.
        let Some(timeout) = self.config.connect_timeout() else {
            return self.prepare_all(statements).await;
        };
        match tokio::time::timeout(timeout, self.prepare_all(statements)).await {
            Ok(result) => result,
            Err(_) => {
                // The server is still waiting (on a lock, say): cancel it there too.
                if let Err(e) = self.config.cancel(&self.client.cancel_token()).await {
                    tracing::debug!("cancelling the stalled prepare failed: {e}");
                }
                Err(Error::backend(
                    ErrorKind::Timeout,
                    format!(
                        "preparing the statements on {} did not finish within {} (the connect \
                         timeout): a table may be locked by another session (see pg_locks), or \
                         the server is overloaded",
                        self.config.endpoint(),
                        human(timeout)
                    ),
                ))
            }
        }
    }

    async fn execute(&mut self, statement: usize, params: &[Value]) -> Result<u64> {
        let Some(p) = self.statements.get(statement) else {
            return Err(Error::invalid(format!("statement {statement} was not prepared")));
        };
        if let (Some(lean), Some(name)) = (self.lean.as_mut().filter(|lean| lean.usable()), &p.lean_name) {
            let outcome = lean.execute(name, &p.lean_types, params, p.counts_in_tag).await;
            return outcome.map_err(|e| self.lean_error(e));
        }
        self.execute_via_driver(statement, params).await
    }

    async fn execute_returning(
        &mut self,
        statement: usize,
        params: &[Value],
    ) -> Result<(u64, Option<Value>)> {
        let Some(p) = self.statements.get(statement) else {
            return Err(Error::invalid(format!("statement {statement} was not prepared")));
        };
        let client = &self.client;
        let outcome = self
            .connection
            .run(async {
                let stream = client.query_raw(&p.statement, params.iter().map(PgParam)).await?;
                let mut stream = std::pin::pin!(stream);
                let mut rows = 0u64;
                let mut first = None;
                while let Some(row) = stream.next().await {
                    let row = row?;
                    if rows == 0 {
                        first = returned_value(&row);
                    }
                    rows += 1;
                }
                Ok((rows, first))
            })
            .await;
        outcome.map_err(|e| self.execute_error(e))
    }

    async fn cancel(&mut self) -> Result<()> {
        self.cancel_requested.store(true, Ordering::Relaxed);
        self.config.cancel(&self.client.cancel_token()).await
    }
}

/// The first column of a `RETURNING` row as a value the engine can bind again: integers as
/// integers, uuids and text as text (sent back in text format, which every type parses).
fn returned_value(row: &tokio_postgres::Row) -> Option<Value> {
    let ty = row.columns().first()?.type_().clone();
    match ty {
        Type::INT2 => row.try_get::<_, i16>(0).ok().map(|v| Value::Int(i64::from(v))),
        Type::INT4 => row.try_get::<_, i32>(0).ok().map(|v| Value::Int(i64::from(v))),
        Type::INT8 => row.try_get::<_, i64>(0).ok().map(Value::Int),
        Type::UUID => row.try_get::<_, uuid::Uuid>(0).ok().map(|u| Value::text(u.to_string())),
        _ => row.try_get::<_, String>(0).ok().map(Value::text),
    }
}

impl PostgresSession {
    /// `execute` through the driver. Boxed: `execute`'s own future stays the size the session's
    /// own path needs (it is allocated and moved for every statement).
    fn execute_via_driver<'a>(
        &'a mut self,
        statement: usize,
        params: &'a [Value],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64>> + Send + 'a>> {
        Box::pin(async move {
            let Some(p) = self.statements.get(statement) else {
                return Err(Error::invalid(format!("statement {statement} was not prepared")));
            };
            let args = params.iter().map(PgParam);
            let client = &self.client;
            let outcome = self
                .connection
                .run(async {
                    if p.counts_in_tag {
                        return client.execute_raw(&p.statement, args).await;
                    }
                    let stream = client.query_raw(&p.statement, args).await?;
                    let mut stream = std::pin::pin!(stream);
                    let mut rows = 0u64;
                    while let Some(row) = stream.next().await {
                        row?;
                        rows += 1;
                    }
                    Ok(rows)
                })
                .await;
            outcome.map_err(|e| self.execute_error(e))
        })
    }

    async fn prepare_all(&mut self, statements: &[StatementSpec]) -> Result<()> {
        let mut prepared = Vec::with_capacity(statements.len());
        for spec in statements {
            // The server infers each parameter's type from the column it is compared with or
            // assigned to: exactly the column's own type, width included (INT4 vs INT8,
            // VARCHAR vs TEXT). PgParam then encodes each value for that type.
            let statement = self
                .connection
                .run(self.client.prepare_typed(&spec.sql, &[]))
                .await
                .map_err(|e| map_error(e, &format!("preparing {} `{}`", spec.kind, spec.sql)))?;
            if statement.params().len() != spec.params.len() {
                return Err(Error::invalid(format!(
                    "{} `{}` has {} parameters on the server but {} were rendered",
                    spec.kind,
                    spec.sql,
                    statement.params().len(),
                    spec.params.len()
                )));
            }
            let counts_in_tag = counts_in_tag(&spec.sql, !statement.columns().is_empty());
            let lean_name = match self.lean.as_mut().filter(|lean| lean.usable()) {
                Some(lean) => {
                    // Unique on the connection even if the session prepares again.
                    let name = format!("unistore_lean_{}", self.lean_statements);
                    self.lean_statements += 1;
                    if let Err(e) = lean.prepare(&name, &spec.sql, statement.params()).await {
                        let e = self.lean_error(e);
                        let message =
                            format!("preparing {} `{}` (session's own path): {e}", spec.kind, spec.sql);
                        return Err(e.with_message(message));
                    }
                    Some(name)
                }
                None => None,
            };
            let lean_types = statement.params().iter().map(|ty| base_type(ty).clone()).collect();
            prepared.push(Prepared { statement, lean_name, lean_types, counts_in_tag });
        }
        self.statements = prepared;
        Ok(())
    }

    /// Maps an execution error of the driver.
    #[cold]
    fn execute_error(&self, e: tokio_postgres::Error) -> Error {
        let Some(db) = e.as_db_error() else {
            return map_error(e, "executing");
        };
        let fields = ServerFields {
            code: db.code().code(),
            message: db.message(),
            detail: db.detail(),
            hint: db.hint(),
        };
        self.server_error(&fields).with_source(e)
    }

    /// Maps an execution error of the session's own hot path, in the words the driver's error of
    /// the same cause gets from [`execute_error`](Self::execute_error).
    #[cold]
    fn lean_error(&self, e: LeanError) -> Error {
        match e {
            LeanError::Server(server) => {
                let fields = ServerFields {
                    code: &server.code,
                    message: &server.message,
                    detail: server.detail.as_deref(),
                    hint: server.hint.as_deref(),
                };
                self.server_error(&fields).with_source(server)
            }
            LeanError::Encode { index, cause } => Error::backend(
                ErrorKind::InvalidInput,
                format!("executing: error serializing parameter {index}: {cause}"),
            )
            .with_source(cause),
            LeanError::Parameters { expected, got } => Error::backend(
                ErrorKind::Other,
                format!("executing: expected {expected} parameters but got {got}"),
            ),
            LeanError::Lost(cause) => {
                tracing::debug!("postgres connection ended: {cause:?}");
                let lost = connection_lost("executing", "connection closed");
                match cause {
                    Some(cause) => lost.with_source(cause),
                    None => lost,
                }
            }
            LeanError::Unexpected => {
                Error::backend(ErrorKind::Other, "executing: unexpected message from server")
            }
        }
    }

    /// Maps the server's error to a statement. SQLSTATE 57014 is both a statement timeout and a
    /// cancel the run asked for (stop deadline): the message tells them apart in English, the
    /// flag set when this side sent a cancel does in any server language.
    #[cold]
    fn server_error(&self, db: &ServerFields<'_>) -> Error {
        if db.code != SqlState::QUERY_CANCELED.code() {
            return map_server_error(db, "executing");
        }
        let requested = self.cancel_requested.swap(false, Ordering::Relaxed);
        // 57014 has no typed reason: the server's English message is all that tells a timeout
        // from a cancel (the flag covers our own cancels in any language).
        let timed_out = db.message.contains("statement timeout");
        let cancelled = !timed_out && (requested || db.message.contains("user request"));
        let message = match self.statement_timeout {
            _ if cancelled => format!(
                "cancelled: the run stopped while the statement was still running ({} (SQLSTATE 57014))",
                db.message
            ),
            Some(t) => format!(
                "the statement ran longer than the statement timeout ({}) and the server cancelled it: {} (SQLSTATE 57014)",
                human(t),
                db.message
            ),
            None => return map_server_error(db, "executing"),
        };
        let kind = if cancelled { ErrorKind::Other } else { ErrorKind::Timeout };
        Error::backend(kind, message).with_code(SqlState::QUERY_CANCELED.code())
    }
}

/// A borrowed core value, bound in the binary format of the parameter's type where the value
/// maps onto it natively, else sent as text for the server to parse (NUMERIC, UUID, ...).
#[derive(Debug, Clone, Copy)]
pub struct PgParam<'a>(pub &'a Value);

/// The type to encode for: a domain is encoded as its base type.
pub(crate) fn base_type(ty: &Type) -> &Type {
    match ty.kind() {
        Kind::Domain(base) => base_type(base),
        _ => ty,
    }
}

fn is_text_type(ty: &Type) -> bool {
    matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN)
}

impl PgParam<'_> {
    /// Whether the value has a native binary encoding for `ty`.
    fn binary(&self, ty: &Type) -> bool {
        self.binary_for_base(base_type(ty))
    }

    /// [`binary`](Self::binary) for a type already resolved by [`base_type`] (a session's own
    /// path resolves each statement's parameter types once, at prepare).
    pub(crate) fn binary_for_base(&self, ty: &Type) -> bool {
        match self.0 {
            Value::Null => true,
            Value::Int(_) => {
                matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8 | Type::OID | Type::FLOAT4 | Type::FLOAT8)
            }
            Value::Float(_) => matches!(*ty, Type::FLOAT4 | Type::FLOAT8),
            Value::Bool(_) => *ty == Type::BOOL,
            Value::Text(_) => is_text_type(ty) || matches!(*ty, Type::JSON | Type::JSONB),
            Value::Timestamp(_) => matches!(*ty, Type::TIMESTAMP | Type::TIMESTAMPTZ | Type::DATE),
        }
    }
}

impl PgParam<'_> {
    /// [`ToSql::to_sql`] for a type already resolved by [`base_type`].
    pub(crate) fn encode_for_base(
        &self,
        base: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if self.0.is_null() {
            return Ok(IsNull::Yes);
        }
        if !self.binary_for_base(base) {
            // Text format: the server parses the value as the parameter's type, exactly as it
            // would parse a literal (NUMERIC, UUID, INET, ...).
            write!(out, "{}", self.0)?;
            return Ok(IsNull::No);
        }
        match (self.0, base) {
            (Value::Int(i), &Type::INT2) => {
                out.put_i16(i16::try_from(*i).map_err(|_| out_of_range(*i, "smallint"))?)
            }
            (Value::Int(i), &Type::INT4) => {
                out.put_i32(i32::try_from(*i).map_err(|_| out_of_range(*i, "integer"))?)
            }
            (Value::Int(i), &Type::INT8) => out.put_i64(*i),
            (Value::Int(i), &Type::OID) => {
                out.put_u32(u32::try_from(*i).map_err(|_| out_of_range(*i, "oid"))?)
            }
            (Value::Int(i), &Type::FLOAT4) => out.put_f32(*i as f32),
            (Value::Int(i), &Type::FLOAT8) => out.put_f64(*i as f64),
            (Value::Float(x), &Type::FLOAT4) => out.put_f32(*x as f32),
            (Value::Float(x), &Type::FLOAT8) => out.put_f64(*x),
            (Value::Bool(b), _) => out.put_u8(u8::from(*b)),
            (Value::Text(s), &Type::JSONB) => {
                out.put_u8(1);
                out.put_slice(s.as_bytes());
            }
            (Value::Text(s), _) => out.put_slice(s.as_bytes()),
            (Value::Timestamp(us), &Type::DATE) => {
                let days = us.div_euclid(US_PER_DAY) - PG_EPOCH_OFFSET_DAYS;
                out.put_i32(i32::try_from(days).map_err(|_| out_of_range(*us, "date"))?);
            }
            (Value::Timestamp(us), _) => out.put_i64(us.saturating_sub(PG_EPOCH_OFFSET_US)),
            (v, t) => return Err(format!("cannot bind {v:?} as {t}").into()),
        }
        Ok(IsNull::No)
    }
}

impl ToSql for PgParam<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.encode_for_base(base_type(ty), out)
    }

    fn accepts(_ty: &Type) -> bool {
        // Every type: what has no binary encoding is sent as text for the server to parse.
        true
    }

    fn encode_format(&self, ty: &Type) -> Format {
        if self.binary(ty) {
            Format::Binary
        } else {
            Format::Text
        }
    }

    tokio_postgres::types::to_sql_checked!();
}

fn out_of_range(v: i64, ty: &str) -> Box<dyn std::error::Error + Sync + Send> {
    format!("value {v} is out of range for {ty}").into()
}

/// A few connections shared by a results or control store. Transactions need a connection of
/// their own, so concurrent callers in one process take separate connections and meet in the
/// database's row locks, exactly as callers on other hosts do.
pub(crate) struct StorePool {
    config: PostgresConfig,
    application_name: String,
    idle: Arc<Mutex<Vec<Client>>>,
    permits: Arc<Semaphore>,
}

/// A connection taken from a [`StorePool`], returned when dropped (unless it broke).
pub(crate) struct PooledClient {
    client: Option<Client>,
    idle: Arc<Mutex<Vec<Client>>>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for PooledClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        // Present from creation until drop.
        self.client.as_ref().expect("pooled client present until drop")
    }
}

impl std::ops::DerefMut for PooledClient {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("pooled client present until drop")
    }
}

impl Drop for PooledClient {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if client.is_closed() {
                return;
            }
            if let Ok(mut idle) = self.idle.lock() {
                idle.push(client);
            }
        }
    }
}

impl StorePool {
    /// A pool of at most `max` connections; one is opened now, so a bad URL fails early.
    pub(crate) async fn open(
        config: PostgresConfig,
        application_name: &str,
        max: usize,
    ) -> Result<(Self, PooledClient)> {
        let pool = StorePool {
            config,
            application_name: application_name.to_string(),
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(Semaphore::new(max.max(1))),
        };
        let first = pool.get().await?;
        Ok((pool, first))
    }

    pub(crate) fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// Takes an idle connection or opens one.
    pub(crate) async fn get(&self) -> Result<PooledClient> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::backend(ErrorKind::Other, "store connection pool closed"))?;
        let reused = match self.idle.lock() {
            Ok(mut idle) => {
                let mut found = None;
                while let Some(c) = idle.pop() {
                    if !c.is_closed() {
                        found = Some(c);
                        break;
                    }
                }
                found
            }
            Err(_) => None,
        };
        let client = match reused {
            Some(c) => c,
            None => self.config.connect(&self.application_name).await?,
        };
        Ok(PooledClient { client: Some(client), idle: self.idle.clone(), _permit: permit })
    }
}

impl std::fmt::Debug for StorePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorePool").field("config", &self.config).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BINARY: bool = true;
    const TEXT: bool = false;

    /// (sent in binary format, bytes)
    fn encode(v: &Value, ty: &Type) -> (bool, Vec<u8>) {
        let p = PgParam(v);
        let mut out = BytesMut::new();
        p.to_sql_checked(ty, &mut out).expect("encodes");
        (matches!(p.encode_format(ty), Format::Binary), out.to_vec())
    }

    #[test]
    fn row_counts_come_from_the_tag_only_where_it_has_them() {
        assert!(counts_in_tag("SELECT * FROM t WHERE id = $1", true));
        assert!(counts_in_tag("  select 1", true));
        assert!(counts_in_tag("(SELECT 1) UNION (SELECT 2)", true));
        assert!(counts_in_tag("WITH x AS (SELECT 1) SELECT * FROM x", true));
        assert!(counts_in_tag("INSERT INTO t VALUES ($1) RETURNING id", true));
        assert!(counts_in_tag("UPDATE t SET a = 1", false));
        assert!(counts_in_tag("CALL p()", false), "no result columns: nothing to count");
        assert!(!counts_in_tag("SHOW work_mem", true));
        assert!(!counts_in_tag("EXPLAIN SELECT 1", true));
        assert!(!counts_in_tag("/* hint */ SELECT 1", true));
        assert!(!counts_in_tag("-- c\nSELECT 1", true));
        assert!(!counts_in_tag("SELECTED", true));
    }

    #[test]
    fn integers_follow_the_column_width() {
        assert_eq!(encode(&Value::Int(7), &Type::INT2), (BINARY, vec![0, 7]));
        assert_eq!(encode(&Value::Int(7), &Type::INT4), (BINARY, vec![0, 0, 0, 7]));
        assert_eq!(encode(&Value::Int(-1), &Type::INT8), (BINARY, vec![0xff; 8]));
        let mut out = BytesMut::new();
        assert!(PgParam(&Value::Int(70_000)).to_sql_checked(&Type::INT2, &mut out).is_err());
    }

    #[test]
    fn numeric_and_unknown_types_go_as_text() {
        assert_eq!(encode(&Value::Float(1.5), &Type::NUMERIC), (TEXT, b"1.5".to_vec()));
        assert_eq!(encode(&Value::Int(42), &Type::NUMERIC), (TEXT, b"42".to_vec()));
        assert_eq!(encode(&Value::text("12.30"), &Type::NUMERIC), (TEXT, b"12.30".to_vec()));
        assert_eq!(encode(&Value::Float(2.0), &Type::FLOAT4), (BINARY, 2.0f32.to_be_bytes().to_vec()));
    }

    #[test]
    fn timestamps_use_the_postgres_epoch() {
        let at_pg_epoch = Value::Timestamp(PG_EPOCH_OFFSET_US);
        assert_eq!(encode(&at_pg_epoch, &Type::TIMESTAMP), (BINARY, vec![0; 8]));
        assert_eq!(encode(&at_pg_epoch, &Type::TIMESTAMPTZ), (BINARY, vec![0; 8]));
        let next_day = Value::Timestamp(PG_EPOCH_OFFSET_US + US_PER_DAY + 5);
        assert_eq!(encode(&next_day, &Type::DATE), (BINARY, vec![0, 0, 0, 1]));
        assert_eq!(encode(&Value::text("{}"), &Type::JSONB), (BINARY, vec![1, b'{', b'}']));
    }
}
