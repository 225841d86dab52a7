//! Verifies, profiles and samples tables of a Postgres-family server, from `pg_catalog`.
//!
//! Names are always bound as parameters (`$1`) in catalog queries and quoted as identifiers in
//! the statements against the table, never spliced in as SQL. Servers that speak the protocol
//! but have a thinner catalog (CockroachDB, YugabyteDB, ...) get simpler fallbacks instead of
//! a crash: the profile loses detail (identity columns, index names), not correctness.
//!
//! Every query here is bounded in time: the catalog connection runs with a server-side
//! `statement_timeout` (a table locked by a migration makes `count(*)` wait), and a client-side
//! deadline a little longer covers a server that stops answering altogether.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::Client;
use unistore_core::sql::SqlDialect;
use unistore_core::table::{ColumnInfo, RenderRequest};
use unistore_core::{
    ColumnType, Error, ErrorKind, Generated, Result, StatementSpec, TableManager, TableProfile, TableRef,
    TableType, Value,
};

use super::config::PostgresConfig;
use super::connect::human;
use super::map_error;
use super::pool::statement_timeout_sql;

/// Tables up to this size are counted exactly; larger ones use the planner's estimate.
const EXACT_COUNT_MAX_BYTES: i64 = 16 * 1024 * 1024;

/// How long one catalog, profiling or sampling query may run by default.
pub const DEFAULT_CATALOG_TIMEOUT: Duration = Duration::from_secs(60);

/// Added to the catalog timeout on the client side, so that the server's own cancel (with its
/// clear message) normally comes first.
const CLIENT_GRACE: Duration = Duration::from_secs(3);

/// The table manager for tables in a Postgres-family database (`TableType::Postgres`).
pub struct PostgresTableManager {
    config: PostgresConfig,
    declared: Option<TableType>,
    client: Mutex<Option<Arc<Client>>>,
    catalog_timeout: Duration,
}

impl std::fmt::Debug for PostgresTableManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTableManager")
            .field("config", &self.config)
            .field("declared", &self.declared)
            .field("catalog_timeout", &self.catalog_timeout)
            .finish()
    }
}

struct Relation {
    oid: u32,
    schema: String,
    name: String,
    kind: String,
}

impl PostgresTableManager {
    /// Connects (one connection, used for catalog queries and sampling only), with the
    /// default catalog timeout. A declared table type other than `postgres` makes `profile`
    /// fail with the fix.
    pub async fn connect(config: &PostgresConfig, declared: Option<TableType>) -> Result<Self> {
        Self::connect_with_catalog_timeout(config, declared, DEFAULT_CATALOG_TIMEOUT).await
    }

    /// Like [`connect`](Self::connect), with each catalog, profiling and sampling query
    /// limited to `catalog_timeout`.
    pub async fn connect_with_catalog_timeout(
        config: &PostgresConfig,
        declared: Option<TableType>,
        catalog_timeout: Duration,
    ) -> Result<Self> {
        let manager = PostgresTableManager {
            config: config.clone(),
            declared,
            client: Mutex::new(None),
            catalog_timeout: catalog_timeout.max(Duration::from_millis(1)),
        };
        manager.client().await?;
        Ok(manager)
    }

    /// The catalog connection, reopened if it was lost (or given up on after a timeout).
    async fn client(&self) -> Result<Arc<Client>> {
        let current = self.client.lock().ok().and_then(|c| c.clone());
        if let Some(c) = current {
            if !c.is_closed() {
                return Ok(c);
            }
        }
        let setup = statement_timeout_sql(self.catalog_timeout);
        let fresh = Arc::new(self.config.connect_with_setup("unistore-profile", Some(&setup)).await?);
        if let Ok(mut slot) = self.client.lock() {
            *slot = Some(fresh.clone());
        }
        Ok(fresh)
    }

    /// Runs one catalog query within the catalog timeout; `what` says what it was for.
    async fn bounded<T>(
        &self,
        what: &str,
        query: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.catalog_timeout + CLIENT_GRACE, query).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                let mapped = map_error(e, what);
                if mapped.kind() != ErrorKind::Timeout {
                    return Err(mapped);
                }
                let message = format!("{mapped}; {}", self.timeout_fix());
                Err(mapped.with_message(message))
            }
            Err(_) => {
                // The connection is stuck behind the unanswered query: start afresh next time.
                if let Ok(mut slot) = self.client.lock() {
                    *slot = None;
                }
                Err(Error::backend(
                    ErrorKind::Timeout,
                    format!(
                        "{what}: {} did not answer within {}; {}",
                        self.config.endpoint(),
                        human(self.catalog_timeout + CLIENT_GRACE),
                        self.timeout_fix()
                    ),
                ))
            }
        }
    }

    fn timeout_fix(&self) -> String {
        format!(
            "catalog, profiling and sampling queries may take {} each: the table may be locked by \
             another session (see pg_locks), or too large to count or sample in that time (ANALYZE it, so that the \
             planner's row estimate replaces an exact count)",
            human(self.catalog_timeout)
        )
    }

    async fn find_relation(&self, client: &Client, table: &TableRef) -> Result<Relation> {
        let dbname: String = self
            .bounded("reading current_database()", async {
                client.query_one("SELECT current_database()::text", &[]).await?.try_get(0)
            })
            .await?;
        if let Some(db) = &table.database {
            if db != &dbname {
                return Err(Error::invalid(format!(
                    "table {table} is in database `{db}`, but the URL connects to `{dbname}`: put `{db}` in the URL's path and name the table as schema.table"
                )));
            }
        }
        let rows = self
            .bounded(
                &format!("looking up {table}"),
                client.query(
                    "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text \
                     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relname = $1::text AND n.nspname = COALESCE($2::text, current_schema()::text)",
                    &[&table.name, &table.schema],
                ),
            )
            .await?;
        if let Some(row) = rows.first() {
            let get = |i| row.try_get::<_, String>(i).map_err(|e| map_error(e, "reading pg_class"));
            return Ok(Relation {
                oid: row.try_get(0).map_err(|e| map_error(e, "reading pg_class"))?,
                schema: get(1)?,
                name: get(2)?,
                kind: get(3)?,
            });
        }
        Err(self.not_found(client, table, &dbname).await)
    }

    /// A not-found error that says whether the schema or the table is missing, and names
    /// tables that differ only in letter case.
    async fn not_found(&self, client: &Client, table: &TableRef, dbname: &str) -> Error {
        if let Some(schema) = &table.schema {
            let exists = self
                .bounded(
                    "looking up the schema",
                    client.query_opt(
                        "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1::text",
                        &[schema],
                    ),
                )
                .await
                .map(|r| r.is_some())
                .unwrap_or(true);
            if !exists {
                return Error::backend(
                    ErrorKind::NotFound,
                    format!(
                        "schema `{schema}` does not exist in database `{dbname}` (looking for table {table})"
                    ),
                );
            }
        }
        let similar: Vec<String> = self
            .bounded(
                "looking for similar table names",
                client.query(
                    "SELECT n.nspname::text || '.' || c.relname::text FROM pg_catalog.pg_class c \
                     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE lower(c.relname) = lower($1::text) AND c.relkind IN ('r','p','v','m','f') \
                     AND n.nspname NOT IN ('pg_catalog','information_schema') ORDER BY 1 LIMIT 5",
                    &[&table.name],
                ),
            )
            .await
            .map(|rows| rows.iter().filter_map(|r| r.try_get(0).ok()).collect())
            .unwrap_or_default();
        let where_ = match &table.schema {
            Some(s) => format!("schema `{s}`"),
            None => "the current schema".to_string(),
        };
        let hint = if similar.is_empty() {
            "check the name (names are case-sensitive when created with quotes) and the schema".to_string()
        } else {
            format!("did you mean {}?", similar.join(", "))
        };
        Error::backend(
            ErrorKind::NotFound,
            format!("table `{}` not found in {where_} of database `{dbname}`: {hint}", table.name),
        )
    }

    async fn columns(&self, client: &Client, rel: &Relation) -> Result<Vec<ColumnInfo>> {
        // How each column is generated (identity, sequence default, other default, generated
        // column), and whether a valid, non-partial index starts with it.
        let full = "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                    COALESCE(bt.typname, t.typname)::text, a.attnotnull, \
                    (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''), a.atttypmod, \
                    a.attidentity::text, a.attgenerated::text, pg_catalog.pg_get_expr(d.adbin, d.adrelid), \
                    EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid \
                            AND i.indisvalid AND i.indpred IS NULL AND i.indkey[0] = a.attnum) \
                    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                    LEFT JOIN pg_catalog.pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype \
                    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                    WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";
        // Without identity / generated columns (PostgreSQL < 12 and some compatible servers).
        let simple = "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                      t.typname::text, a.attnotnull, a.atthasdef, a.atttypmod \
                      FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";
        let (rows, detailed) = match self.bounded("reading columns", client.query(full, &[&rel.oid])).await {
            Ok(rows) => (rows, true),
            Err(e) if e.kind() == ErrorKind::Timeout => return Err(e),
            Err(e) => {
                tracing::debug!("full column query failed ({e}); using the simpler one");
                (self.bounded("reading columns", client.query(simple, &[&rel.oid])).await?, false)
            }
        };
        // Only tables (plain, partitioned, materialized views) have indexes of their own.
        let has_indexes = matches!(rel.kind.as_str(), "r" | "p" | "m");
        rows.iter()
            .map(|r| {
                let err = |e: tokio_postgres::Error| map_error(e, "reading columns");
                let name: String = r.try_get(0).map_err(err)?;
                let native: String = r.try_get(1).map_err(err)?;
                let typname: String = r.try_get(2).map_err(err)?;
                let not_null: bool = r.try_get(3).map_err(err)?;
                let has_default: bool = r.try_get(4).map_err(err)?;
                let typmod: i32 = r.try_get(5).map_err(err)?;
                let (generated, indexed) = if detailed {
                    let identity: String = r.try_get(6).map_err(err)?;
                    let generated_column: String = r.try_get(7).map_err(err)?;
                    let default: Option<String> = r.try_get(8).map_err(err)?;
                    let indexed: bool = r.try_get(9).map_err(err)?;
                    (
                        generated_by(&identity, &generated_column, default.as_deref()),
                        Some(indexed && has_indexes),
                    )
                } else {
                    (None, None)
                };
                let max_length = match typname.as_str() {
                    "varchar" | "bpchar" if typmod > 4 => u32::try_from(typmod - 4).ok(),
                    _ => None,
                };
                Ok(ColumnInfo {
                    column_type: column_type(&typname, typmod),
                    name,
                    native_type: native,
                    nullable: !not_null,
                    has_default,
                    max_length,
                    generated,
                    indexed: if has_indexes { indexed } else { None },
                })
            })
            .collect()
    }

    async fn primary_key(&self, client: &Client, oid: u32, table: &TableRef) -> Result<Vec<String>> {
        let catalog = "SELECT a.attname::text FROM pg_catalog.pg_index i \
                       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
                       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                       WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord";
        match self.bounded("reading the primary key", client.query(catalog, &[&oid])).await {
            Ok(rows) => Ok(rows.iter().filter_map(|r| r.try_get(0).ok()).collect()),
            Err(e) if e.kind() == ErrorKind::Timeout => Err(e),
            Err(e) => {
                tracing::debug!("pg_index primary key query failed ({e}); using information_schema");
                let rows = self
                    .bounded(
                        &format!("reading the primary key of {table}"),
                        client.query(
                            "SELECT k.column_name::text FROM information_schema.table_constraints c \
                             JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name \
                             AND k.table_schema = c.table_schema AND k.table_name = c.table_name \
                             WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = $1::text \
                             AND c.table_name = $2::text ORDER BY k.ordinal_position",
                            &[&table.schema, &table.name],
                        ),
                    )
                    .await?;
                Ok(rows.iter().filter_map(|r| r.try_get(0).ok()).collect())
            }
        }
    }

    async fn row_estimate(&self, client: &Client, rel: &Relation, quoted: &str) -> Result<u64> {
        let stats = self
            .bounded("reading the table's size", async {
                let r = client
                    .query_one(
                        "SELECT c.reltuples::float8, pg_catalog.pg_relation_size(c.oid)::int8 \
                         FROM pg_catalog.pg_class c WHERE c.oid = $1",
                        &[&rel.oid],
                    )
                    .await?;
                Ok((r.try_get::<_, f64>(0)?, r.try_get::<_, i64>(1)?))
            })
            .await;
        let (reltuples, size) = match stats {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::Timeout => return Err(e),
            Err(e) => {
                tracing::debug!("pg_relation_size unavailable ({e}); counting rows");
                (-1.0, 0)
            }
        };
        // Small heap: an exact count is cheap. Partitioned tables and views have no heap of
        // their own (size 0), so they are counted only when the planner knows nothing.
        let has_heap = matches!(rel.kind.as_str(), "r" | "m");
        let reltuples = if rel.kind == "p" && reltuples <= 0.0 {
            // A partitioned parent has no statistics of its own: add up its leaf partitions'.
            match self
                .bounded("adding up the partitions' statistics", async {
                    client
                        .query_one(
                            "SELECT COALESCE(sum(GREATEST(c.reltuples, 0)), 0)::float8 FROM pg_partition_tree($1::oid::regclass) t \
                             JOIN pg_catalog.pg_class c ON c.oid = t.relid WHERE t.isleaf",
                            &[&rel.oid],
                        )
                        .await?
                        .try_get::<_, f64>(0)
                })
                .await
            {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Timeout => return Err(e),
                Err(_) => reltuples,
            }
        } else {
            reltuples
        };
        if (has_heap && size <= EXACT_COUNT_MAX_BYTES) || reltuples <= 0.0 {
            let n: i64 = self
                .bounded(&format!("counting the rows of {quoted}"), async {
                    client.query_one(&format!("SELECT count(*) FROM {quoted}"), &[]).await?.try_get(0)
                })
                .await?;
            return Ok(u64::try_from(n).unwrap_or(0));
        }
        Ok(reltuples as u64)
    }

    async fn key_range(&self, client: &Client, quoted: &str, key: &ColumnInfo) -> Result<Option<(i64, i64)>> {
        if !key.column_type.is_integer() {
            return Ok(None);
        }
        let k = SqlDialect::POSTGRES.quote_ident(&key.name);
        let sql = format!("SELECT min({k})::text, max({k})::text FROM {quoted}");
        let row = match self
            .bounded(&format!("reading the key range of {quoted}"), client.query_one(&sql, &[]))
            .await
        {
            Ok(row) => row,
            Err(e) if e.kind() == ErrorKind::Timeout => return Err(e),
            Err(e) => {
                tracing::debug!("key range of {quoted} unavailable: {e}");
                return Ok(None);
            }
        };
        let bound =
            |i| row.try_get::<_, Option<String>>(i).ok().flatten().and_then(|s| s.parse::<i64>().ok());
        Ok(bound(0).zip(bound(1)))
    }

    /// Names from a catalog query of one text column; empty (with a trace) where the server's
    /// catalog lacks what the query reads, an error only on a timeout.
    async fn names(&self, client: &Client, what: &str, sql: &str, oid: u32) -> Result<Vec<String>> {
        match self.bounded(what, client.query(sql, &[&oid])).await {
            Ok(rows) => Ok(rows.iter().filter_map(|r| r.try_get(0).ok()).collect()),
            Err(e) if e.kind() == ErrorKind::Timeout => Err(e),
            Err(e) => {
                tracing::debug!("{what} unavailable: {e}");
                Ok(Vec::new())
            }
        }
    }
}

/// How the database fills a column, from `pg_attribute.attidentity`, `attgenerated` and the
/// column's default expression.
fn generated_by(identity: &str, generated_column: &str, default: Option<&str>) -> Option<Generated> {
    match identity {
        "a" => return Some(Generated::IdentityAlways),
        "d" => return Some(Generated::Sequence),
        _ => {}
    }
    if !generated_column.is_empty() {
        // GENERATED ALWAYS AS (expr) STORED: computed from other columns, never supplied.
        return Some(Generated::Expression);
    }
    let default = default?.trim_start();
    // serial / bigserial and hand-made sequence defaults: `nextval('t_id_seq'::regclass)`.
    if default.starts_with("nextval(") {
        Some(Generated::Sequence)
    } else {
        Some(Generated::Expression)
    }
}

const INDEXES_SQL: &str = "SELECT ic.relname::text FROM pg_catalog.pg_index i \
                           JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
                           WHERE i.indrelid = $1 AND NOT i.indisprimary ORDER BY 1";

/// Triggers a write fires: user triggers, enabled (not the internal ones behind foreign keys).
const TRIGGERS_SQL: &str = "SELECT t.tgname::text FROM pg_catalog.pg_trigger t \
                            WHERE t.tgrelid = $1 AND NOT t.tgisinternal AND t.tgenabled <> 'D' ORDER BY 1";

/// Foreign keys of the table as `col -> other_table(col)` (columns in key order).
const FOREIGN_KEYS_SQL: &str = "SELECT (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) \
       FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) \
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) \
    || ' -> ' || c.confrelid::regclass::text || '(' || \
    (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) \
       FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord) \
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum) || ')' \
    FROM pg_catalog.pg_constraint c WHERE c.conrelid = $1 AND c.contype = 'f' ORDER BY c.conname";

/// Maps a catalog type name (of the base type, for domains) onto the core's column types.
fn column_type(typname: &str, typmod: i32) -> ColumnType {
    match typname {
        "int2" | "int4" | "int8" | "oid" => ColumnType::Integer,
        // NUMERIC(p, 0) holds integers: keys of that type can come from a key range.
        "numeric" if typmod >= 4 && ((typmod - 4) & 0xffff) == 0 => ColumnType::Integer,
        "numeric" => ColumnType::Decimal,
        "float4" | "float8" => ColumnType::Float,
        "text" | "varchar" | "bpchar" | "name" | "citext" => ColumnType::Text,
        "bool" => ColumnType::Boolean,
        "timestamp" | "timestamptz" => ColumnType::Timestamp,
        "date" => ColumnType::Date,
        "json" | "jsonb" => ColumnType::Json,
        other => ColumnType::Other(other.to_string()),
    }
}

#[async_trait]
impl TableManager for PostgresTableManager {
    fn table_type(&self) -> TableType {
        TableType::Postgres
    }

    async fn profile(&self, table: &TableRef) -> Result<TableProfile> {
        // Checked here rather than when connecting: a manager is opened before the table is named.
        TableType::check_declared(self.declared, TableType::Postgres, table)?;
        let client = self.client().await?;
        let rel = self.find_relation(&client, table).await?;
        if !matches!(rel.kind.as_str(), "r" | "p" | "v" | "m" | "f") {
            let what = match rel.kind.as_str() {
                "i" | "I" => "an index",
                "S" => "a sequence",
                "c" => "a composite type",
                _ => "not a table",
            };
            return Err(Error::invalid(format!(
                "{}.{} is {what}, not a table or view",
                rel.schema, rel.name
            )));
        }
        let resolved = TableRef { database: None, schema: Some(rel.schema.clone()), name: rel.name.clone() };
        let quoted = SqlDialect::POSTGRES.quote_table(&resolved);
        let columns = self.columns(&client, &rel).await?;
        let primary_key = self.primary_key(&client, rel.oid, &resolved).await?;
        let row_estimate = self.row_estimate(&client, &rel, &quoted).await?;
        let key_range = match primary_key.first().and_then(|k| columns.iter().find(|c| &c.name == k)) {
            Some(key) => self.key_range(&client, &quoted, key).await?,
            None => None,
        };
        let is_time = |c: &&ColumnInfo| matches!(c.column_type, ColumnType::Timestamp | ColumnType::Date);
        let time_column = columns
            .iter()
            .filter(is_time)
            .find(|c| !c.nullable)
            .or_else(|| columns.iter().find(is_time))
            .map(|c| c.name.clone());
        let indexes = self.names(&client, "reading index names", INDEXES_SQL, rel.oid).await?;
        let triggers = self.names(&client, "reading triggers", TRIGGERS_SQL, rel.oid).await?;
        let foreign_keys = self.names(&client, "reading foreign keys", FOREIGN_KEYS_SQL, rel.oid).await?;
        Ok(TableProfile {
            table: resolved,
            table_type: TableType::Postgres,
            columns,
            primary_key,
            row_estimate,
            key_range,
            time_column,
            indexes,
            triggers,
            foreign_keys,
        })
    }

    async fn sample_values(&self, profile: &TableProfile, column: &str, limit: usize) -> Result<Vec<Value>> {
        let col = profile.column(column).ok_or_else(|| {
            Error::invalid(format!(
                "column `{column}` does not exist in {}: columns are {}",
                profile.table,
                profile.column_names().join(", ")
            ))
        })?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let d = SqlDialect::POSTGRES;
        let table = d.quote_table(&profile.table);
        let c = d.quote_ident(&col.name);
        let (expr, decode): (String, fn(&tokio_postgres::Row) -> Option<Value>) = match &col.column_type {
            ColumnType::Integer if col.native_type.starts_with("numeric") => (format!("{c}::text"), |r| {
                let s: String = r.try_get(0).ok()?;
                Some(s.parse::<i64>().map(Value::Int).unwrap_or_else(|_| Value::text(&s)))
            }),
            ColumnType::Integer => (format!("{c}::int8"), |r| r.try_get::<_, i64>(0).ok().map(Value::Int)),
            ColumnType::Float => (format!("{c}::float8"), |r| r.try_get::<_, f64>(0).ok().map(Value::Float)),
            ColumnType::Boolean => (format!("{c}::bool"), |r| r.try_get::<_, bool>(0).ok().map(Value::Bool)),
            ColumnType::Timestamp | ColumnType::Date => {
                (format!("floor(extract(epoch from {c}::timestamptz) * 1000000)::int8"), |r| {
                    r.try_get::<_, i64>(0).ok().map(Value::Timestamp)
                })
            }
            _ => (format!("{c}::text"), |r| r.try_get::<_, String>(0).ok().map(Value::text)),
        };
        let limit_i64 = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows_wanted = (limit as u64).min(profile.row_estimate.max(1));
        let what = format!("sampling {column} of {}", profile.table);
        let run = |sql: String| {
            let client = client.clone();
            let what = what.clone();
            async move { self.bounded(&what, async { client.query(&sql, &[&limit_i64]).await }).await }
        };
        // Large tables: sample whole pages (TABLESAMPLE SYSTEM), four times the rows needed so
        // DISTINCT and page skew rarely leave the pool short.
        if profile.row_estimate > (limit as u64).saturating_mul(4) {
            let pct = ((limit as f64 * 4.0 / profile.row_estimate as f64) * 100.0).clamp(0.01, 100.0);
            let sql = format!(
                "SELECT DISTINCT {expr} FROM {table} TABLESAMPLE SYSTEM ({pct:.4}) WHERE {c} IS NOT NULL LIMIT $1"
            );
            match run(sql).await {
                Ok(rows) if rows.len() as u64 >= rows_wanted => {
                    return Ok(rows.iter().filter_map(decode).collect());
                }
                Ok(rows) => tracing::debug!(
                    "TABLESAMPLE gave {} of {limit} values; sampling with random()",
                    rows.len()
                ),
                Err(e) if e.kind() == ErrorKind::Timeout => return Err(e),
                Err(e) => tracing::debug!("TABLESAMPLE unavailable ({e}); sampling with random()"),
            }
        }
        let sql = format!(
            "SELECT v FROM (SELECT DISTINCT {expr} AS v FROM {table} WHERE {c} IS NOT NULL) s ORDER BY random() LIMIT $1"
        );
        let rows = run(sql).await?;
        Ok(rows.iter().filter_map(decode).collect())
    }

    fn render(&self, profile: &TableProfile, request: &RenderRequest<'_>) -> Result<StatementSpec> {
        SqlDialect::POSTGRES.render(profile, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_columns_are_classified_from_the_catalog() {
        assert_eq!(generated_by("a", "", None), Some(Generated::IdentityAlways));
        assert_eq!(generated_by("d", "", None), Some(Generated::Sequence));
        assert_eq!(
            generated_by("", "", Some("nextval('orders_id_seq'::regclass)")),
            Some(Generated::Sequence)
        );
        assert_eq!(generated_by("", "", Some("gen_random_uuid()")), Some(Generated::Expression));
        assert_eq!(generated_by("", "", Some("now()")), Some(Generated::Expression));
        assert_eq!(generated_by("", "s", Some("(a * 2)")), Some(Generated::Expression));
        assert_eq!(generated_by("", "", None), None);
    }
}
