//! The database under test: pools open sessions, sessions execute prepared statements.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::{QueryKind, RunPhase};
use crate::value::{ColumnType, Value};

/// What a parameter of a rendered statement stands for; the workload plan turns each role into
/// a generator.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamRole {
    /// A key of the table (from the pool or the key range).
    Key,
    /// The exclusive upper bound of a range scan: the key drawn for the previous `Key`
    /// parameter plus `width`.
    KeyUpperBound {
        /// Keys per scan.
        width: u32,
    },
    /// A key that is not in the table yet (for `INSERT`).
    NewKey,
    /// A value for a non-key column, generated from the column's type.
    ColumnValue,
    /// The custom-SQL generator at this index of `CustomSql::params`.
    Custom(usize),
}

/// One bound parameter of a statement.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// The column the parameter is compared with or written to (empty for custom SQL).
    pub column: String,
    /// That column's type: the type to bind.
    pub column_type: ColumnType,
    /// How the value is generated.
    pub role: ParamRole,
}

/// A statement rendered by a table manager in its backend's dialect, ready to prepare.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementSpec {
    /// The query kind it implements.
    pub kind: QueryKind,
    /// SQL text with the dialect's placeholders.
    pub sql: String,
    /// Parameters, in placeholder order.
    pub params: Vec<ParamSpec>,
    /// The column whose value the statement returns (`INSERT ... RETURNING key`): the engine
    /// then calls [`TargetSession::execute_returning`] and adds the value to the key pool
    /// (read-your-writes). `None` for every other statement.
    pub returning: Option<String>,
}

impl StatementSpec {
    /// A statement that returns nothing the engine keeps.
    pub fn new(kind: QueryKind, sql: impl Into<String>, params: Vec<ParamSpec>) -> Self {
        StatementSpec { kind, sql: sql.into(), params, returning: None }
    }
}

/// What a pool can do, so a caller gets a clear "unsupported" before the run rather than a
/// surprise during it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetCapabilities {
    /// Whether in-flight statements can be cancelled server-side.
    pub cancel: bool,
    /// Whether statements are prepared server-side (otherwise the client caches them).
    pub server_side_prepare: bool,
}

/// Opens sessions to the database under test. One session per benchmark connection.
#[async_trait]
pub trait TargetPool: Send + Sync + 'static {
    /// Short name of the backend, e.g. `sqlite`, `postgres`, `snowflake`.
    fn kind(&self) -> &'static str;

    /// What the backend supports.
    fn capabilities(&self) -> TargetCapabilities;

    /// Opens a new session. Called once per connection task, and again after a lost connection.
    async fn connect(&self) -> Result<Box<dyn TargetSession>>;

    /// The most sessions this backend serves sensibly from one worker process, with the
    /// reason, or `None` for no limit beyond the engine's own. A run that asks for more is
    /// refused before it starts. Default: `None`.
    fn max_sessions(&self) -> Option<(u32, &'static str)> {
        None
    }

    /// Tells the pool that the load entered `phase`, so backends that tag their sessions
    /// (Snowflake's `QUERY_TAG`) can attribute server-side figures to phases. Called by the
    /// engine off the hot path. Default: nothing.
    fn set_phase(&self, _phase: RunPhase) {}

    /// Cancels every statement still running on this pool's sessions, server-side where the
    /// backend allows it. The engine calls it when in-flight operations outlive the stop
    /// deadline, before it abandons them, so that a stopped benchmark leaves no query running
    /// on the server. Returns how many cancel requests were sent. Default: none.
    async fn cancel_in_flight(&self) -> Result<u64> {
        Ok(0)
    }

    /// Takes the server-side baseline (e.g. `pg_stat_statements`) once the run's connections
    /// are open, before the run's start instant is set. Default: nothing.
    async fn begin_server_stats(&self) -> Result<()> {
        Ok(())
    }

    /// The server's own figures for the load since `begin_server_stats` (or since `since`, for
    /// backends that query history by time and tag), stored with the run next to the
    /// client-side figures. `None`: the backend has none. Default: `None`.
    async fn finish_server_stats(
        &self,
        _since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<serde_json::Value>> {
        Ok(None)
    }
}

/// One connection to the database under test.
///
/// `execute` is the hot path: arguments are borrowed, and implementations should not allocate
/// beyond what the driver needs.
#[async_trait]
pub trait TargetSession: Send {
    /// Prepares the statements once; later `execute` calls refer to them by index.
    async fn prepare(&mut self, statements: &[StatementSpec]) -> Result<()>;

    /// Executes prepared statement `statement` with `params`, reads every row it returns, and
    /// returns the number of rows read (queries) or affected (writes).
    async fn execute(&mut self, statement: usize, params: &[Value]) -> Result<u64>;

    /// Executes a statement that returns a key (`INSERT ... RETURNING key`, see
    /// [`StatementSpec::returning`]): the rows affected and the first row's first column.
    /// Default: [`TargetSession::execute`] and no value (a backend without RETURNING).
    async fn execute_returning(
        &mut self,
        statement: usize,
        params: &[Value],
    ) -> Result<(u64, Option<Value>)> {
        self.execute(statement, params).await.map(|n| (n, None))
    }

    /// Cancels the statement in flight, if the backend supports it. Default: nothing.
    async fn cancel(&mut self) -> Result<()> {
        Ok(())
    }
}
