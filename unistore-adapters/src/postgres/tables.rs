//! Verifies, profiles and samples tables of a Postgres-family server, from `pg_catalog`.
//!
//! Names are always bound as parameters (`$1`) in catalog queries and quoted as identifiers in
//! the statements against the table, never spliced in as SQL. Servers that speak the protocol
//! but have a thinner catalog (CockroachDB, YugabyteDB, ...) get simpler fallbacks instead of
//! a crash: the profile loses detail (identity columns, index names), not correctness.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio_postgres::Client;
use unistore_core::sql::SqlDialect;
use unistore_core::table::{ColumnInfo, RenderRequest};
use unistore_core::{
    ColumnType, Error, ErrorKind, Result, StatementSpec, TableManager, TableProfile, TableRef, TableType,
    Value,
};

use super::config::PostgresConfig;
use super::map_error;

/// Tables up to this size are counted exactly; larger ones use the planner's estimate.
const EXACT_COUNT_MAX_BYTES: i64 = 16 * 1024 * 1024;

/// The table manager for tables in a Postgres-family database (`TableType::Postgres`).
pub struct PostgresTableManager {
    config: PostgresConfig,
    declared: Option<TableType>,
    client: Mutex<Arc<Client>>,
}

impl std::fmt::Debug for PostgresTableManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTableManager")
            .field("config", &self.config)
            .field("declared", &self.declared)
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
    /// Connects (one connection, used for catalog queries and sampling only). A declared
    /// table type other than `postgres` makes `profile` fail with the fix.
    pub async fn connect(config: &PostgresConfig, declared: Option<TableType>) -> Result<Self> {
        let client = config.connect("unistore-profile").await?;
        Ok(PostgresTableManager { config: config.clone(), declared, client: Mutex::new(Arc::new(client)) })
    }

    /// The catalog connection, reopened if it was lost.
    async fn client(&self) -> Result<Arc<Client>> {
        let current = self.client.lock().map(|c| c.clone()).ok();
        if let Some(c) = current {
            if !c.is_closed() {
                return Ok(c);
            }
        }
        let fresh = Arc::new(self.config.connect("unistore-profile").await?);
        if let Ok(mut slot) = self.client.lock() {
            *slot = fresh.clone();
        }
        Ok(fresh)
    }

    async fn find_relation(&self, client: &Client, table: &TableRef) -> Result<Relation> {
        let dbname: String = client
            .query_one("SELECT current_database()::text", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| map_error(&e, "reading current_database()"))?;
        if let Some(db) = &table.database {
            if db != &dbname {
                return Err(Error::invalid(format!(
                    "table {table} is in database `{db}`, but the URL connects to `{dbname}`: put `{db}` in the URL's path and name the table as schema.table"
                )));
            }
        }
        let rows = client
            .query(
                "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text \
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relname = $1::text AND n.nspname = COALESCE($2::text, current_schema()::text)",
                &[&table.name, &table.schema],
            )
            .await
            .map_err(|e| map_error(&e, &format!("looking up {table}")))?;
        if let Some(row) = rows.first() {
            let get = |i| row.try_get::<_, String>(i).map_err(|e| map_error(&e, "reading pg_class"));
            return Ok(Relation {
                oid: row.try_get(0).map_err(|e| map_error(&e, "reading pg_class"))?,
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
            let exists = client
                .query_opt("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1::text", &[schema])
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
        let similar: Vec<String> = client
            .query(
                "SELECT n.nspname::text || '.' || c.relname::text FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE lower(c.relname) = lower($1::text) AND c.relkind IN ('r','p','v','m','f') \
                 AND n.nspname NOT IN ('pg_catalog','information_schema') ORDER BY 1 LIMIT 5",
                &[&table.name],
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

    async fn columns(&self, client: &Client, oid: u32) -> Result<Vec<ColumnInfo>> {
        let full = "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                    COALESCE(bt.typname, t.typname)::text, a.attnotnull, \
                    (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''), a.atttypmod \
                    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                    LEFT JOIN pg_catalog.pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype \
                    WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";
        // Without identity / generated columns (PostgreSQL < 12 and some compatible servers).
        let simple = "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
                      t.typname::text, a.attnotnull, a.atthasdef, a.atttypmod \
                      FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";
        let rows = match client.query(full, &[&oid]).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!("full column query failed ({e}); using the simpler one");
                client.query(simple, &[&oid]).await.map_err(|e| map_error(&e, "reading columns"))?
            }
        };
        rows.iter()
            .map(|r| {
                let err = |e: tokio_postgres::Error| map_error(&e, "reading columns");
                let name: String = r.try_get(0).map_err(err)?;
                let native: String = r.try_get(1).map_err(err)?;
                let typname: String = r.try_get(2).map_err(err)?;
                let not_null: bool = r.try_get(3).map_err(err)?;
                let has_default: bool = r.try_get(4).map_err(err)?;
                let typmod: i32 = r.try_get(5).map_err(err)?;
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
                    generated: None,
                    indexed: None,
                })
            })
            .collect()
    }

    async fn primary_key(&self, client: &Client, oid: u32, table: &TableRef) -> Result<Vec<String>> {
        let catalog = "SELECT a.attname::text FROM pg_catalog.pg_index i \
                       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
                       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                       WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord";
        match client.query(catalog, &[&oid]).await {
            Ok(rows) => Ok(rows.iter().filter_map(|r| r.try_get(0).ok()).collect()),
            Err(e) => {
                tracing::debug!("pg_index primary key query failed ({e}); using information_schema");
                let rows = client
                    .query(
                        "SELECT k.column_name::text FROM information_schema.table_constraints c \
                         JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name \
                         AND k.table_schema = c.table_schema AND k.table_name = c.table_name \
                         WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = $1::text \
                         AND c.table_name = $2::text ORDER BY k.ordinal_position",
                        &[&table.schema, &table.name],
                    )
                    .await
                    .map_err(|e| map_error(&e, &format!("reading the primary key of {table}")))?;
                Ok(rows.iter().filter_map(|r| r.try_get(0).ok()).collect())
            }
        }
    }

    async fn row_estimate(&self, client: &Client, rel: &Relation, quoted: &str) -> Result<u64> {
        let stats = client
            .query_one(
                "SELECT c.reltuples::float8, pg_catalog.pg_relation_size(c.oid)::int8 \
                 FROM pg_catalog.pg_class c WHERE c.oid = $1",
                &[&rel.oid],
            )
            .await
            .and_then(|r| Ok((r.try_get::<_, f64>(0)?, r.try_get::<_, i64>(1)?)));
        let (reltuples, size) = match stats {
            Ok(s) => s,
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
            client
                .query_one(
                    "SELECT COALESCE(sum(GREATEST(c.reltuples, 0)), 0)::float8 FROM pg_partition_tree($1::oid::regclass) t \
                     JOIN pg_catalog.pg_class c ON c.oid = t.relid WHERE t.isleaf",
                    &[&rel.oid],
                )
                .await
                .and_then(|r| r.try_get::<_, f64>(0))
                .unwrap_or(reltuples)
        } else {
            reltuples
        };
        if (has_heap && size <= EXACT_COUNT_MAX_BYTES) || reltuples <= 0.0 {
            let n: i64 = client
                .query_one(&format!("SELECT count(*) FROM {quoted}"), &[])
                .await
                .and_then(|r| r.try_get(0))
                .map_err(|e| map_error(&e, &format!("counting the rows of {quoted}")))?;
            return Ok(u64::try_from(n).unwrap_or(0));
        }
        Ok(reltuples as u64)
    }

    async fn key_range(&self, client: &Client, quoted: &str, key: &ColumnInfo) -> Option<(i64, i64)> {
        if !key.column_type.is_integer() {
            return None;
        }
        let k = SqlDialect::POSTGRES.quote_ident(&key.name);
        let row = client
            .query_one(&format!("SELECT min({k})::text, max({k})::text FROM {quoted}"), &[])
            .await
            .map_err(|e| tracing::debug!("key range of {quoted} unavailable: {e}"))
            .ok()?;
        let min: Option<String> = row.try_get(0).ok()?;
        let max: Option<String> = row.try_get(1).ok()?;
        Some((min?.parse().ok()?, max?.parse().ok()?))
    }

    async fn indexes(&self, client: &Client, oid: u32) -> Vec<String> {
        client
            .query(
                "SELECT ic.relname::text FROM pg_catalog.pg_index i \
                 JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
                 WHERE i.indrelid = $1 AND NOT i.indisprimary ORDER BY 1",
                &[&oid],
            )
            .await
            .map(|rows| rows.iter().filter_map(|r| r.try_get(0).ok()).collect())
            .unwrap_or_else(|e| {
                tracing::debug!("index names unavailable: {e}");
                Vec::new()
            })
    }
}

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
        if let Some(declared) = self.declared {
            if declared != TableType::Postgres {
                return Err(Error::invalid(format!(
                    "table {table} is declared as a {declared} table, but {} is a Postgres-family server: declare table_type = \"postgres\" (or leave it out)",
                    self.config.redacted_url()
                )));
            }
        }
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
        let columns = self.columns(&client, rel.oid).await?;
        let primary_key = self.primary_key(&client, rel.oid, &resolved).await?;
        let row_estimate = self.row_estimate(&client, &rel, &quoted).await?;
        let key_range = match primary_key.first().and_then(|k| columns.iter().find(|c| &c.name == k)) {
            Some(key) => self.key_range(&client, &quoted, key).await,
            None => None,
        };
        let is_time = |c: &&ColumnInfo| matches!(c.column_type, ColumnType::Timestamp | ColumnType::Date);
        let time_column = columns
            .iter()
            .filter(is_time)
            .find(|c| !c.nullable)
            .or_else(|| columns.iter().find(is_time))
            .map(|c| c.name.clone());
        let indexes = self.indexes(&client, rel.oid).await;
        Ok(TableProfile {
            table: resolved,
            table_type: TableType::Postgres,
            columns,
            primary_key,
            row_estimate,
            key_range,
            time_column,
            indexes,
            triggers: Vec::new(),
            foreign_keys: Vec::new(),
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
        let run = |sql: String| {
            let client = client.clone();
            async move { client.query(&sql, &[&limit_i64]).await }
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
                Err(e) => tracing::debug!("TABLESAMPLE unavailable ({e}); sampling with random()"),
            }
        }
        let sql = format!(
            "SELECT v FROM (SELECT DISTINCT {expr} AS v FROM {table} WHERE {c} IS NOT NULL) s ORDER BY random() LIMIT $1"
        );
        let rows =
            run(sql).await.map_err(|e| map_error(&e, &format!("sampling {column} of {}", profile.table)))?;
        Ok(rows.iter().filter_map(decode).collect())
    }

    fn render(&self, profile: &TableProfile, request: &RenderRequest<'_>) -> Result<StatementSpec> {
        SqlDialect::POSTGRES.render(profile, request)
    }
}
